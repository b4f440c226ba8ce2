"""The plugin distributions a job image carries besides Workbench's own: the one that provides
the project's trainer (`[trainer] plugin`) through a `workbench.plugins` entry point, when a
package other than Workbench installed it on the host.

Nothing is fetched by name: the distribution goes in as the host has it, so a plugin that is
on no index (a private package, one installed from a wheel file) works too.

- Installed normally (site-packages with a RECORD): its installed files, `.dist-info` and
  entry points included, are copied into the image's site-packages as they are.
- Installed editable (`pip install -e`; PEP 610's direct_url.json names the folder): its
  source folder goes in and is pip-installed there.

Its own requirements are installed first, pinned to the versions the host has.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.project import Project

GROUP = "workbench.plugins"
WORKBENCH_DIST = "workbench-mlops"
CONTEXT_DIR = "wbplugins"
#: Folders of a source tree that never go in.
SKIP_SOURCE = {".git", ".venv", "venv", "build", "dist", "__pycache__", ".pytest_cache", ".tox"}
MAX_FILE = 20 * 2**20


@dataclass
class PluginDist:
    """One distribution as it goes into the build context (paths under `wbplugins/<name>/`)."""

    name: str
    version: str
    editable: bool
    files: dict[str, bytes] = field(default_factory=dict)
    requirements: list[str] = field(default_factory=list)

    @property
    def folder(self) -> str:
        return f"{CONTEXT_DIR}/{self.name}"


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def trainer_dists(project: Project) -> list[PluginDist]:
    """The distributions that provide the project's trainer, Workbench's own excepted."""
    wanted = project.config.trainer.plugin
    found: dict[str, metadata.Distribution] = {}
    for ep in metadata.entry_points(group=GROUP, name=wanted):
        dist = ep.dist
        if dist is None:
            continue
        name = canonical(dist.metadata["Name"] or "")
        if name and name != WORKBENCH_DIST:
            found.setdefault(name, dist)
    return [_packed(name, dist) for name, dist in sorted(found.items())]


def _source_folder(dist: metadata.Distribution) -> Path | None:
    """The folder of an editable install (PEP 610), None for any other install."""
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        info = json.loads(text)
    except ValueError:
        return None
    url = info.get("url", "") if isinstance(info, dict) else ""
    editable = isinstance(info, dict) and (info.get("dir_info") or {}).get("editable")
    if not editable or not url.startswith("file:"):
        return None
    return Path(unquote(urlparse(url).path))


def _packed(name: str, dist: metadata.Distribution) -> PluginDist:
    version = dist.version
    source = _source_folder(dist)
    plugin = PluginDist(name, version, editable=source is not None)
    plugin.requirements = _requirements(dist)
    if source is not None:
        if not source.is_dir():
            raise WorkbenchError(
                f"plugin distribution {name} is installed editable from {source}, "
                "which is not there any more"
            )
        for path in _source_files(source):
            plugin.files[f"{plugin.folder}/src/{path.relative_to(source).as_posix()}"] = (
                path.read_bytes()
            )
        return plugin
    if not dist.files:
        raise WorkbenchError(
            f"plugin distribution {name} {version} lists no installed files (no RECORD); "
            f"reinstall it with pip, or name it in the project's requirements.txt"
        )
    for rel in dist.files:
        if ".." in rel.parts or "__pycache__" in rel.parts or rel.suffix == ".pyc":
            continue  # scripts outside site-packages; bytecode is rebuilt
        path = Path(str(dist.locate_file(rel)))
        if path.is_file():
            plugin.files[f"{plugin.folder}/site/{rel.as_posix()}"] = path.read_bytes()
    return plugin


def _source_files(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_SOURCE and not d.endswith(".egg-info")
        )
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.endswith(".pyc") or not path.is_file() or path.stat().st_size > MAX_FILE:
                continue
            out.append(path)
    return out


def _requirements(dist: metadata.Distribution) -> list[str]:
    """The distribution's requirements for this platform (no extras), each pinned to the host's
    version when the host has it; Workbench itself is left out (the image has it)."""
    from packaging.requirements import InvalidRequirement, Requirement

    out = []
    for line in dist.requires or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        if canonical(req.name) == WORKBENCH_DIST:
            continue
        try:
            extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            out.append(f"{req.name}{extras}=={metadata.version(req.name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{req.name}{req.specifier}")
    return out


def dockerfile_lines(dists: list[PluginDist], venv: str, where: str) -> list[str]:
    """Installing each distribution in the image, its context folder copied to `where`."""
    if not dists:
        return []
    pip, python = f"{venv}/bin/pip", f"{venv}/bin/python"
    lines = [f"COPY {CONTEXT_DIR} {where}"]
    purelib = f"$({python} -c 'import sysconfig; print(sysconfig.get_path(\"purelib\"))')"
    for dist in dists:
        folder = f"{where}/{dist.name}"
        if dist.requirements:
            lines.append(f"RUN {pip} install {' '.join(repr(r) for r in dist.requirements)}")
        if dist.editable:
            lines.append(
                f"RUN {pip} install --no-deps --no-build-isolation {folder}/src || "
                f"{pip} install --no-deps {folder}/src"
            )
        else:
            lines.append(f'RUN cp -r {folder}/site/. "{purelib}/"')
    return lines
