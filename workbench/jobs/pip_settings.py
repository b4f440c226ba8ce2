"""The host's pip settings, carried into job image builds, and pip's failures inside a build
said in one line.

`host()` reads what `pip config list` shows for `pip install`: the config files in pip's
order (global: $XDG_CONFIG_DIRS/pip/pip.conf, /etc/pip.conf; user: ~/.pip/pip.conf,
~/.config/pip/pip.conf; site: $VIRTUAL_ENV/pip.conf; $PIP_CONFIG_FILE), `[global]` then
`[install]`, then the PIP_* variables; and the CA bundle pip would use. `plan()` turns them,
under `[docker]` (whose settings win; `host_pip = false` carries nothing), into the build's
PIP_* environment, the CA bundle to copy into the context, and the files of local find-links
folders the image installs (pip in a build cannot read the host's folders).
"""

from __future__ import annotations

import configparser
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from workbench.config import DockerSection
from workbench.errors import UsageError

#: pip's settings a build needs, as `pip config` names them.
KEYS = ("index-url", "extra-index-url", "trusted-host", "find-links", "cert")
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")
#: Where the CA bundle and the local find-links files go in the image.
CA_IN_IMAGE = "/etc/ssl/certs/workbench-build-ca.pem"
FILES_IN_IMAGE = "/opt/wbpip"
#: The most bytes of local find-links files copied into one build context.
MAX_LOCAL_FILES = 512 * 2**20


@dataclass(frozen=True)
class HostPip:
    """The host's pip settings; `where` says where each came from (a file or PIP_* name)."""

    values: dict[str, str] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)

    def many(self, key: str) -> list[str]:
        return self.values.get(key, "").split()

    def one(self, key: str) -> str | None:
        return self.values.get(key) or None


def config_files(
    env: Mapping[str, str], home: Path, prefix: str, etc: Path = Path("/etc")
) -> list[Path]:
    """pip's config files in the order it reads them (a later one wins)."""
    if env.get("PIP_CONFIG_FILE") == os.devnull:
        return []
    xdg_dirs = env.get("XDG_CONFIG_DIRS") or str(etc / "xdg")
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(os.pathsep) if d]
    files.append(etc / "pip.conf")
    own = env.get("PIP_CONFIG_FILE")
    if not (own and Path(own).exists()):  # pip skips the user's files when it is set
        user_dir = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        files += [home / ".pip" / "pip.conf", user_dir / "pip" / "pip.conf"]
    files.append(Path(env.get("VIRTUAL_ENV") or prefix) / "pip.conf")
    if own:
        files.append(Path(own))
    return files


def host(
    env: Mapping[str, str] | None = None,
    home: Path | None = None,
    prefix: str | None = None,
    etc: Path = Path("/etc"),
) -> HostPip:
    """What `pip install` on this host would use for KEYS (unreadable files are skipped)."""
    env = os.environ if env is None else env
    values: dict[str, str] = {}
    where: dict[str, str] = {}
    for path in config_files(env, home or Path.home(), prefix or sys.prefix, etc):
        parser = configparser.RawConfigParser()
        try:
            if not parser.read(path, encoding="utf-8"):
                continue
        except (configparser.Error, UnicodeDecodeError, OSError):
            continue
        for section in ("global", "install"):
            if parser.has_section(section):
                for name, value in parser.items(section):
                    key = name.replace("_", "-").lower()
                    if key in KEYS:
                        values[key], where[key] = value.strip(), str(path)
    for key in KEYS:
        var = "PIP_" + key.upper().replace("-", "_")
        if env.get(var):
            values[key], where[key] = env[var].strip(), var
    return HostPip(values, where)


def host_ca(
    settings: HostPip, env: Mapping[str, str] | None = None, system: Path = SYSTEM_CA
) -> tuple[Path, str] | None:
    """The CA bundle pip on the host trusts, and where that was said: pip's `cert`, else
    REQUESTS_CA_BUNDLE, SSL_CERT_FILE, else the system's bundle (None when no such file)."""
    env = os.environ if env is None else env
    candidates = [
        (settings.one("cert"), settings.where.get("cert", "")),
        (env.get("REQUESTS_CA_BUNDLE"), "REQUESTS_CA_BUNDLE"),
        (env.get("SSL_CERT_FILE"), "SSL_CERT_FILE"),
        (str(system), "the system's CA bundle"),
    ]
    for value, why in candidates:
        if value and Path(value).expanduser().is_file():
            return Path(value).expanduser(), why
    return None


def local_dir(url: str) -> Path | None:
    """The host folder a find-links or index URL names (a path or file://), else None."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # http(s)://; a one-letter scheme is a drive
        return None
    return Path(url).expanduser()


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project_of(filename: str) -> str | None:
    """The project an archive is of: `name-version-...whl`, `name-version.tar.gz`."""
    if filename.endswith(".whl"):
        return normalize(filename.split("-", 1)[0])
    for ext in (".tar.gz", ".zip", ".tar.bz2", ".tgz"):
        if filename.endswith(ext):
            stem = filename[: -len(ext)]
            return normalize(stem.rsplit("-", 1)[0]) if "-" in stem else None
    return None


_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_names(lines: Iterable[str]) -> set[str]:
    """The project names in requirement lines (options, comments and URLs skipped)."""
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        match = _NAME.match(line) if line and not line.startswith("-") else None
        if match and "://" not in line:
            names.add(normalize(match.group(1)))
    return names


def closure(names: Iterable[str]) -> set[str]:
    """`names` and, as the host has them installed, everything they require (extras not)."""
    todo = [normalize(n) for n in names]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += requirement_names(r for r in requires if "extra ==" not in r.split(";", 1)[-1])
    return seen


@dataclass
class BuildPip:
    """What a generated Dockerfile gets of pip's settings."""

    env: list[str] = field(default_factory=list)  # PIP_*=... for the Dockerfile's ENV
    ca: Path | None = None  # copied into the context as ca.pem
    files: dict[str, Path] = field(default_factory=dict)  # context path -> host file
    notes: list[str] = field(default_factory=list)  # said before a build


def plan(
    docker: DockerSection,
    root: Path,
    wanted: Callable[[], Iterable[str]],
    settings: HostPip | None = None,
    env: Mapping[str, str] | None = None,
) -> BuildPip:
    """The build's pip settings: `[docker]`'s first, then the host's (`settings`, default
    `host(env)`; none when `host_pip = false`). Of local find-links folders, the files of
    the projects the image installs (`wanted()` and what they require) are copied; local
    indexes (too big to copy) are left out, and said."""
    out = BuildPip()
    carry = docker.host_pip
    if not carry:
        settings = HostPip()
    elif settings is None:
        settings = host(env)
    if docker.ca_bundle:
        path = (root / docker.ca_bundle).expanduser()
        if not path.is_file():
            raise UsageError(f"[docker].ca_bundle: no such file: {path}")
        out.ca = path
    elif carry and (found := host_ca(settings, env)):
        out.ca = found[0]
        out.notes.append(f"pip in the build trusts the host's CA bundle {found[0]} ({found[1]})")
    index = docker.index_url or settings.one("index-url")
    extra = list(docker.extra_index_urls or settings.many("extra-index-url"))
    local = [u for u in ([index] if index else []) + extra if local_dir(u) is not None]
    if local:
        out.notes.append(
            f"not carried into the build: index {', '.join(local)} (folders on this host, "
            "too big to copy; set [docker].index_url / extra_index_urls to replace them)"
        )
        index = None if index in local else index
        extra = [u for u in extra if u not in local]
    if index:
        out.env.append(f"PIP_INDEX_URL={_quote(index)}")
    if extra:
        out.env.append(f"PIP_EXTRA_INDEX_URL={_quote(' '.join(extra), True)}")
    if settings.many("trusted-host"):
        hosts = " ".join(settings.many("trusted-host"))
        out.env.append(f"PIP_TRUSTED_HOST={_quote(hosts, True)}")
    links = [u for u in settings.many("find-links") if local_dir(u) is None]
    if _copy_local_links(settings.many("find-links"), wanted, out):
        links.append(FILES_IN_IMAGE)
    if links:
        out.env.append(f"PIP_FIND_LINKS={_quote(' '.join(links), True)}")
    if out.ca is not None:
        out.env += [f"PIP_CERT={CA_IN_IMAGE}", f"SSL_CERT_FILE={CA_IN_IMAGE}"]
        out.env.append(f"REQUESTS_CA_BUNDLE={CA_IN_IMAGE}")
    return out


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def needed(candidates: set[str], wanted: Iterable[str]) -> set[str]:
    """Which of `candidates` the image installs: `wanted` and, as the host has them, what they
    require. The closure (100 ms) is walked only when a candidate is wanted or installed."""
    top = {normalize(n) for n in wanted}
    if not candidates & top and not any(_installed(c) for c in candidates - top):
        return set()
    return candidates & closure(top)


def _copy_local_links(links: list[str], wanted: Callable[[], Iterable[str]], out: BuildPip) -> bool:
    """Add the archives in the local find-links folders of the projects the image installs
    to out.files; say what is left out. True when some were added."""
    total = 0
    for url in links:
        folder = local_dir(url)
        if folder is None:
            continue
        try:
            entries = sorted(p for p in folder.iterdir() if p.is_file())
        except OSError as exc:
            out.notes.append(f"find-links {url}: cannot list it ({exc.strerror}); not carried")
            continue
        projects = {path: _project_of(path.name) for path in entries}
        names = needed({n for n in projects.values() if n}, wanted())
        taken, big = 0, 0
        for path in entries:
            if projects[path] not in names:
                continue
            size = path.stat().st_size
            if total + size > MAX_LOCAL_FILES:
                big += 1
                continue
            out.files[f"pipfiles/{path.name}"] = path
            total += size
            taken += 1
        skipped = len(entries) - taken - big
        note = f"find-links {folder}: {taken} file(s) the image installs copied into the build"
        if skipped:
            note += f", {skipped} it does not install left out"
        if big:
            note += f", {big} left out (over {MAX_LOCAL_FILES >> 20} MiB in all)"
        out.notes.append(note)
    return bool(out.files)


def _quote(value: str, always: bool = False) -> str:
    """A Dockerfile ENV value (in double quotes when `always` or it has a space or a quote:
    lists of URLs always are)."""
    if not always and re.fullmatch(r"[^\s\"'\\$]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


# --- pip's failures in a build -----------------------------------------------------------

_UNREACHABLE = re.compile(
    r"No matching distribution found|Could not find a version that satisfies|SSLError|"
    r"CERTIFICATE_VERIFY_FAILED|certificate verify failed|Failed to establish a new connection|"
    r"NewConnectionError|ConnectionError|ProxyError|Temporary failure in name resolution|"
    r"Name or service not known|Network is unreachable|Connection refused|Read timed out|"
    r"ConnectTimeoutError",
    re.IGNORECASE,
)


def unreachable_index(lines: Iterable[str]) -> str | None:
    """What pip said of the index it could not reach (a `Could not fetch URL` line first, then
    the first network error, then the last 'no distribution' line), or None when pip did not
    say so: one line, the connection error pulled out of a retry warning."""
    fetch, network, missing = None, None, None
    for line in lines:
        match = _UNREACHABLE.search(line)
        text = line.strip().removeprefix("ERROR: ").removeprefix("WARNING: ")
        if text.startswith("Could not fetch URL") and fetch is None:
            fetch = text
        elif match is None:
            continue
        elif match.group(0).lower().startswith(("no matching", "could not find")):
            missing = text
        elif network is None:
            network = text.split("connection broken by ", 1)[-1].strip("'\": ")
    found = fetch or network or missing
    return None if found is None else (found if len(found) <= 160 else found[:157] + "...")


def unreachable_message(
    pip_line: str, log: str, settings: BuildPip | None = None, own: bool = False
) -> str:
    """The one-line error of a build whose pip could not reach the index (or found nothing
    there); `own`: the build is the project's Dockerfile, where pip is set up."""
    if own:
        return (
            "image build failed: pip could not reach the package index from inside the build, "
            f"or found no such version there ({pip_line}); the project's Dockerfile sets pip's "
            f"index and CA bundle (PIP_INDEX_URL, PIP_CERT) itself (build log: {log})"
        )
    ca = "[docker].ca_bundle (the CA bundle of your proxy)"
    if settings is not None and settings.ca is not None:
        ca = f"[docker].ca_bundle (the build trusted {settings.ca})"
    return (
        "image build failed: pip could not reach the package index from inside the build, or "
        f"found no such version there ({pip_line}); set {ca}, or [docker].index_url / "
        f"extra_index_urls to an index the build can reach (build log: {log})"
    )
