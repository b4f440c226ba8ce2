"""Job images: built from the project, tagged by a hash of what goes in, so an unchanged
project never rebuilds; and a base image bootstrapped with no registry (debootstrap).

The generated Dockerfile installs the same versions of the job's dependencies as the host
has, then Workbench's core and plugins (copied from where they are installed), then the
distribution that provides the project's trainer when another package does (as the host has
it: `plugin_dists`), then the project's code. A project's own Dockerfile is used as it is
when it has one.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.config import DockerSection
from workbench.errors import UsageError, WorkbenchError
from workbench.jobs import docker_engine, pip_settings, plugin_dists
from workbench.project import STORE_DIR, Project

if TYPE_CHECKING:
    import docker

OnLine = Callable[[str], None]
#: Where the job's Python lives in generated images.
VENV = "/opt/workbench"
PROJECT_DIR = "/project"
#: Distributions a job (training or serving) imports; pinned to the host's versions.
JOB_DEPENDENCIES = (
    "mlflow",
    "lightgbm",
    "polars",
    "pyarrow",
    "duckdb",
    "pydantic",
    "scikit-learn",
    "psutil",
    "tomli-w",
    "rich",
    "docker",
    "uvicorn",
    "httptools",
    "uvloop",
    "prometheus-client",
    "orjson",
)
#: What a built-in trainer imports beyond JOB_DEPENDENCIES (pinned the same way).
TRAINER_DEPENDENCIES: dict[str, tuple[str, ...]] = {"xgboost": ("xgboost",)}
#: What a job needs to reach a team's services (a PostgreSQL store, S3 artifacts and logs),
#: when the project uses them and the host has them (the `team` extra).
TEAM_DEPENDENCIES = ("boto3", "psycopg2-binary")
#: Where plugin distributions' files go in the image before they are installed.
PLUGINS_DIR = "/opt/wbplugins"
#: The image `workbench image bootstrap` makes, and the base it is used for when not pulled.
BOOTSTRAPPED = "workbench-base:bookworm"
DEFAULT_BASE = DockerSection().base_image
#: The pip settings of the last context made for each project root (its notes said at build).
_PLANS: dict[str, pip_settings.BuildPip] = {}
SKIP_DIRS = {STORE_DIR, ".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache"}
MAX_PROJECT_FILE = 5 * 2**20


class BuildFailed(WorkbenchError):
    pass


def _extra_dependencies(project: Project) -> tuple[str, ...]:
    extra = TRAINER_DEPENDENCIES.get(project.config.trainer.plugin, ())
    if not project.is_embedded_store or project.config.logs.uri:
        extra += TEAM_DEPENDENCIES
    return extra


def _pins(extra: tuple[str, ...] = ()) -> list[str]:
    pins = []
    for dist in (*JOB_DEPENDENCIES, *extra):
        try:
            pins.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pins.append(dist)
    return pins


def _workbench_sources() -> dict[str, Path]:
    """The installed `workbench` and `workbench_plugins` packages (editable or not)."""
    import importlib.util

    out = {}
    for pkg in ("workbench", "workbench_plugins"):
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            raise WorkbenchError(f"cannot find the installed {pkg!r} package to put in the image")
        out[pkg] = Path(next(iter(spec.submodule_search_locations)))
    return out


def _entry_points() -> str:
    lines = ['[project.entry-points."workbench.plugins"]']
    for ep in metadata.entry_points(group="workbench.plugins"):
        if ep.value.startswith("workbench_plugins."):
            lines.append(f'{ep.name} = "{ep.value}"')
    return "\n".join(lines)


def _data_dirs(project: Project) -> set[Path]:
    data = project.data_path
    return {data.parent if any(c in str(data) for c in "*?[") else data}


def _project_files(project: Project) -> Iterator[tuple[Path, str]]:
    """(file, path inside the project) of the project's code: no store, no data, no VCS."""
    skip = {p.resolve() for p in _data_dirs(project)}
    for dirpath, dirnames, filenames in os.walk(project.root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and (here / d).resolve() not in skip
        )
        for name in sorted(filenames):
            path = here / name
            if path.resolve() in skip or name.endswith((".pyc", ".log")):
                continue
            if path.is_file() and path.stat().st_size <= MAX_PROJECT_FILE:
                yield path, str(path.relative_to(project.root))


def pip_plan(
    project: Project,
    requirements: bytes = b"",
    plugins: list[plugin_dists.PluginDist] | None = None,
) -> pip_settings.BuildPip:
    """The build's pip settings: `[docker]`'s, then the host's (see `pip_settings`), with the
    local find-links files of what the image installs (the host's closure of it)."""

    def wanted() -> list[str]:  # asked only when a find-links folder is local
        text = requirements.decode(errors="replace").splitlines()
        names = [*JOB_DEPENDENCIES, *_extra_dependencies(project)]
        names += pip_settings.requirement_names(text)
        for dist in plugins or []:
            names += pip_settings.requirement_names(dist.requirements)
        return names

    return pip_settings.plan(project.config.docker, project.root, wanted)


def dockerfile(
    project: Project,
    pip: pip_settings.BuildPip,
    has_requirements: bool,
    plugins: list[plugin_dists.PluginDist] | None = None,
    base: str | None = None,
) -> str:
    """The generated Dockerfile: pip's settings (`pip`), the job's dependencies at the host's
    versions (with what the configured built-in trainer needs), the project's requirements,
    Workbench, the plugin distribution that provides the project's trainer (see
    `plugin_dists`), the project."""
    cfg = project.config.docker
    env = ["PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_CACHE_DIR=1", *pip.env]
    lines = [
        "# Generated by workbench from workbench.toml; a project Dockerfile replaces it.",
        f"FROM {base or cfg.base_image}",
    ]
    if pip.ca is not None:
        lines.append(f"COPY ca.pem {pip_settings.CA_IN_IMAGE}")
    if pip.files:
        lines.append(f"COPY pipfiles {pip_settings.FILES_IN_IMAGE}")
    lines += [
        f"ENV {' '.join(env)}",
        # LightGBM needs OpenMP; slim bases lack it (a bootstrapped base has it already).
        "RUN ldconfig -p | grep -q libgomp.so.1 || (apt-get update && apt-get install -y "
        "--no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*)",
        f"RUN python3 -m venv {VENV} && {VENV}/bin/pip install "
        + " ".join(_pins(_extra_dependencies(project))),
    ]
    if has_requirements:
        lines += [
            "COPY requirements.txt /tmp/requirements.txt",
            f"RUN {VENV}/bin/pip install -r /tmp/requirements.txt",
        ]
    lines += [
        "COPY wbsrc /opt/wbsrc",
        f"RUN {VENV}/bin/pip install --no-deps --no-build-isolation /opt/wbsrc || "
        f"{VENV}/bin/pip install --no-deps /opt/wbsrc",
        *plugin_dists.dockerfile_lines(plugins or [], VENV, PLUGINS_DIR),
        f"COPY project {PROJECT_DIR}",
        f"ENV PATH={VENV}/bin:$PATH PYTHONUNBUFFERED=1 HOME=/tmp",
        "WORKDIR /tmp",
    ]
    return "\n".join(lines) + "\n"


def _context(project: Project, base: str | None = None) -> tuple[dict[str, bytes], bool]:
    """The build context as {path: bytes}, and whether it uses the project's own Dockerfile
    (`base`: the generated Dockerfile's base image instead of `[docker].base_image`)."""
    files: dict[str, bytes] = {}
    own = project.config.docker.dockerfile or (
        "Dockerfile" if (project.root / "Dockerfile").is_file() else None
    )
    if own:
        path = project.root / own
        if not path.is_file():
            raise UsageError(f"[docker].dockerfile: no such file: {path}")
        for file, rel in _project_files(project):
            files[rel] = file.read_bytes()
        files["Dockerfile"] = path.read_bytes()
        return files, True
    req_name = project.config.docker.requirements or "requirements.txt"
    req = project.root / req_name
    if project.config.docker.requirements and not req.is_file():
        raise UsageError(f"[docker].requirements: no such file: {req}")
    if req.is_file():
        files["requirements.txt"] = req.read_bytes()
    for pkg, src in _workbench_sources().items():
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".py"):
                    path = Path(dirpath) / name
                    files[f"wbsrc/{pkg}/{path.relative_to(src)}"] = path.read_bytes()
    version = metadata.version("workbench-mlops")
    files["wbsrc/pyproject.toml"] = (
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "workbench-mlops"\nversion = "{version}"\n'
        '[tool.setuptools.packages.find]\ninclude = ["workbench*"]\n' + _entry_points() + "\n"
    ).encode()
    try:
        dists = plugin_dists.trainer_dists(project)
    except WorkbenchError as exc:  # a plugin that cannot go into the image: the build fails
        raise BuildFailed(str(exc)) from None
    for dist in dists:
        files.update(dist.files)
    for file, rel in _project_files(project):
        files[f"project/{rel}"] = file.read_bytes()
    pip = _PLANS[str(project.root)] = pip_plan(project, files.get("requirements.txt", b""), dists)
    if pip.ca is not None:
        files["ca.pem"] = pip.ca.read_bytes()
    for name, path in pip.files.items():
        files[name] = path.read_bytes()
    files["Dockerfile"] = dockerfile(project, pip, req.is_file(), dists, base).encode()
    return files, False


def image_tag(project: Project, files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return f"workbench-job/{project.name.lower()}:{h.hexdigest()[:16]}"


def _tar(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    buf.seek(0)
    return buf


def _has_image(client: docker.DockerClient, name: str) -> bool:
    import docker

    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def ensure_job_image(
    project: Project,
    client: docker.DockerClient | None = None,
    on_line: OnLine = print,
    force: bool = False,
) -> str:
    """The job image's tag, building it (with output streamed to on_line) only when what goes
    into it changed."""
    client = client or docker_engine.connect()
    cfg = project.config.docker
    if cfg.image:
        if not _has_image(client, cfg.image):
            raise BuildFailed(f"[docker].image {cfg.image!r} is not in the local engine")
        return cfg.image
    files, own = _context(project)
    tag = image_tag(project, files)
    if not force and _has_image(client, tag):
        on_line(f"image {tag} is up to date")
        return tag
    if not own and not _has_image(client, cfg.base_image):
        base = _pull_base(client, cfg.base_image, on_line)
        if base != cfg.base_image:  # the bootstrapped base: another Dockerfile, another tag
            files, own = _context(project, base)
            tag = image_tag(project, files)
            if not force and _has_image(client, tag):
                on_line(f"image {tag} is up to date")
                return tag
    on_line(f"building {tag}{' from the project Dockerfile' if own else ''}")
    pip = None if own else _PLANS.get(str(project.root))
    for note in pip.notes if pip else []:
        on_line(note)
    stream = client.api.build(
        fileobj=_tar(files),
        custom_context=True,
        tag=tag,
        rm=True,
        forcerm=True,
        decode=True,
        network_mode=cfg.build_network,
        labels=docker_engine.labels(project=project.name),
    )
    seen: list[str] = []
    for chunk in stream:
        if "error" in chunk:
            raise BuildFailed(_build_error(project, tag, seen, str(chunk["error"]), pip, own))
        text = chunk.get("stream") or chunk.get("status")
        if text:
            for line in str(text).rstrip("\n").splitlines():
                seen.append(line)
                on_line(line)
    return tag


def _build_error(
    project: Project,
    tag: str,
    lines: list[str],
    error: str,
    pip: pip_settings.BuildPip | None,
    own: bool = False,
) -> str:
    """A failed build in one line, its log kept in the store (`builds/<hash>.log`): when pip
    could not reach the index, that and the setting to change (`own`: the project's
    Dockerfile, which sets pip up itself); else the engine's last line."""
    log = project.store / "builds" / f"{tag.rpartition(':')[2]}.log"
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("\n".join([*lines, error.strip()]) + "\n", encoding="utf-8")
        where = str(log)
    except OSError:
        where = "not kept: the store is not writable"
    last = (error.strip().splitlines() or ["(no message)"])[-1]
    steps = [i for i, line in enumerate(lines) if line.startswith("Step ")]
    pip_line = pip_settings.unreachable_index(lines[steps[-1] if steps else 0 :])
    if pip_line is not None and "pip" in last:
        return pip_settings.unreachable_message(pip_line, where, pip, own)
    return f"image build failed: {last} (build log: {where})"


def _pull_base(client: docker.DockerClient, base: str, on_line: OnLine) -> str:
    """The base image to build from when `base` is not in the engine: `base`, pulled; else,
    when `base` is the default and `workbench image bootstrap` made one, the bootstrapped
    image (said on `on_line`); else BuildFailed saying what to do."""
    on_line(f"base image {base} is not here; trying to pull it")
    try:
        client.images.pull(base)
        return base
    except Exception as exc:
        why = docker_engine.describe(exc)
    if base == DEFAULT_BASE and _has_image(client, BOOTSTRAPPED):
        on_line(
            f"cannot pull {base} ({why}); building from {BOOTSTRAPPED}, made by `workbench "
            "image bootstrap` (set [docker].base_image to choose another)"
        )
        return BOOTSTRAPPED
    then = (
        f"its image, {BOOTSTRAPPED}, is used when the default base cannot be pulled"
        if base == DEFAULT_BASE
        else f'then set [docker].base_image = "{BOOTSTRAPPED}"'
    )
    raise BuildFailed(
        f"base image {base!r} is not in the local engine and cannot be pulled ({why}); with no "
        f"registry, run `workbench image bootstrap` (as root): {then}"
    ) from None


def bootstrap_base(
    tag: str = BOOTSTRAPPED,
    suite: str = "bookworm",
    mirror: str | None = None,
    on_line: OnLine = print,
    client: docker.DockerClient | None = None,
) -> str:
    """Make a Debian base image with python3 and venv, no registry needed (root, debootstrap)."""
    if shutil.which("debootstrap") is None:
        raise UsageError("debootstrap is not installed (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise UsageError("`workbench image bootstrap` must run as root (debootstrap needs it)")
    client = client or docker_engine.connect()
    with tempfile.TemporaryDirectory(prefix="workbench-bootstrap-") as tmp:
        root = Path(tmp) / "root"
        cmd = [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            suite,
            str(root),
        ]
        if mirror:
            cmd.append(mirror)
        on_line("$ " + " ".join(cmd))
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        last = ""
        for line in proc.stdout:
            last = line.rstrip()
            on_line(last)
        if proc.wait() != 0:
            raise BuildFailed(f"debootstrap failed: {last}")
        tarball = Path(tmp) / "rootfs.tar"
        on_line(f"importing {root} as {tag}")
        with tarfile.open(tarball, "w") as tar:
            tar.add(root, arcname=".")
        repo, _, version = tag.partition(":")
        client.api.import_image(
            src=str(tarball),
            repository=repo,
            tag=version or "latest",
            changes=['LABEL workbench="1"', 'CMD ["python3"]'],
        )
    on_line(f"base image {tag} is ready")
    return tag
