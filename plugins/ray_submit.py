"""What the ray runner submits: the entrypoint, the runtime environment and the resources of a
job (pure but for packaging Workbench's own folders), and the cluster's answers read back.

The project's folder is the job's `working_dir` (without `.workbench/`, `.git/` and the
`[ray] excludes`), so its data snapshot travels with it; `[ray] project = "shared"` runs the
job on the host's path instead (a cluster that sees the same disk). Workbench's own packages
(`workbench`, `workbench_plugins`) go as `py_modules`: the job runs the code of the Workbench
that submitted it, and the cluster needs only the dependencies installed.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError
from workbench.plugins import JobSpec
from workbench.project import STORE_DIR, Project
from workbench.store import tracking

INSTALL = "pip install 'workbench-mlops[ray]'"
ALWAYS_EXCLUDED = [STORE_DIR, ".git", "__pycache__", ".venv", "*.pyc"]
_UNITS = {"b": 1, "k": 2**10, "m": 2**20, "g": 2**30}


def memory_bytes(text: str) -> int:
    """`[resources] memory` ("512m", "2g", "1024") in bytes."""
    unit = text[-1].lower()
    if unit in _UNITS:
        return int(float(text[:-1]) * _UNITS[unit])
    return int(float(text))


def handle_of(submission_id: str, address: str) -> str:
    """The job's handle: its Ray submission id and the cluster it runs on."""
    return f"{submission_id}@{address}"


def parse_handle(handle: str) -> tuple[str, str]:
    submission_id, _, address = handle.partition("@")
    if not submission_id or not address:
        raise ValueError(f"not a ray job handle: {handle!r}")
    return submission_id, address


def resources(project: Project) -> dict[str, Any]:
    """The entrypoint's resources from `[resources]` (cpus, memory, gpus)."""
    res = project.config.resources
    out: dict[str, Any] = {}
    if res.cpus:
        out["entrypoint_num_cpus"] = res.cpus
    gpus = project.config.gpus
    if gpus == "all":
        raise ConfigError("[resources].gpus: the ray runner needs a number of GPUs, not 'all'")
    if gpus:
        out["entrypoint_num_gpus"] = int(gpus)
    if res.memory:
        out["entrypoint_memory"] = memory_bytes(res.memory)
    return out


def _upload_size(root: Path, excluded: list[str]) -> int:
    total = 0
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        dirs[:] = [d for d in dirs if not _excluded(rel / d, excluded)]
        total += sum(
            (Path(folder) / f).stat().st_size for f in files if not _excluded(rel / f, excluded)
        )
    return total


def _excluded(rel: Path, excluded: list[str]) -> bool:
    return any(rel.match(p) or str(rel) == p.strip("/") for p in excluded)


def check_upload(project: Project) -> None:
    """The data must go with an upload: inside the project (or at an absolute path the
    cluster shares), and the whole upload under `[ray] upload_max_mb`."""
    cfg = project.config.ray
    data = Path(project.config.data.path)
    if not data.is_absolute() and not project.data_path.is_relative_to(project.root):
        raise ConfigError(
            f"[data].path {project.config.data.path!r} is outside the project folder, so the "
            "upload to the Ray cluster cannot carry it: move it in, give an absolute path the "
            'cluster shares, or set [ray] project = "shared"'
        )
    size = _upload_size(project.root, [*ALWAYS_EXCLUDED, *cfg.excludes])
    if size > cfg.upload_max_mb * 2**20:
        raise ConfigError(
            f"the project folder is {size / 2**20:.0f} MiB, over [ray] upload_max_mb "
            f"({cfg.upload_max_mb:g}): leave big files out with [ray] excludes, or set "
            '[ray] project = "shared" on a cluster that sees this disk'
        )


@cache
def package_dirs() -> tuple[str, ...]:
    """Folders named as Workbench's packages import (`workbench`, `workbench_plugins`), for
    `py_modules`. An editable install's plugins/ folder is copied under its package name."""
    import workbench_plugins

    import workbench

    out = [str(Path(workbench.__file__).parent)]
    plugins_dir = Path(workbench_plugins.__file__).parent
    if plugins_dir.name != "workbench_plugins":
        staged = Path(tempfile.mkdtemp(prefix="wb-ray-")) / "workbench_plugins"
        atexit.register(shutil.rmtree, staged.parent, ignore_errors=True)  # uploaded by then
        shutil.copytree(plugins_dir, staged, ignore=shutil.ignore_patterns("__pycache__"))
        plugins_dir = staged
    out.append(str(plugins_dir))
    return tuple(out)


def job_env(project: Project, spec: JobSpec) -> dict[str, str]:
    """The job's environment: the host's store (a shared disk, or a tracking server's URI
    and credentials from `[ray] pass_env`), who started it, the commit, the spec's own."""
    cfg = project.config.ray
    env = {
        "WORKBENCH_STORE": str(project.store.resolve()),
        "WORKBENCH_RUNNER": "ray",
        "WORKBENCH_RAY_TRIAL_CPUS": str(cfg.trial_cpus),
        "PYTHONUNBUFFERED": "1",
        "WORKBENCH_USER": os.environ.get("WORKBENCH_USER") or _user(),
        **({"WORKBENCH_GIT_COMMIT": c} if (c := tracking.git_commit(project.root)) else {}),
        **{name: os.environ[name] for name in cfg.pass_env if os.environ.get(name)},
        **spec.env,
    }
    return env


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def submission(project: Project, spec: JobSpec) -> dict[str, Any]:
    """The keyword arguments of `JobSubmissionClient.submit_job` for `spec`."""
    cfg = project.config.ray
    args = list(spec.args)
    runtime_env: dict[str, Any] = {
        "py_modules": list(package_dirs()),
        "env_vars": job_env(project, spec),
    }
    if cfg.project == "upload":
        check_upload(project)
        if "--project" in args:
            args[args.index("--project") + 1] = "."  # the job's cwd: the uploaded folder
        runtime_env["working_dir"] = str(project.root)
        runtime_env["excludes"] = [*ALWAYS_EXCLUDED, *cfg.excludes]
    return {
        "entrypoint": shlex.join([cfg.python, "-m", spec.module, *args]),
        "submission_id": f"wb-{spec.job_id}",
        "runtime_env": runtime_env,
        "metadata": {"workbench.job_id": spec.job_id, "workbench.project": project.name},
        **resources(project),
    }


def fits(asked: dict[str, Any], usage_by_node: dict[str, Any]) -> bool:
    """Does any node of the cluster (its totals, from the dashboard's cluster status) have
    the resources the entrypoint asks?"""
    need = {
        "CPU": float(asked.get("entrypoint_num_cpus") or 0),
        "GPU": float(asked.get("entrypoint_num_gpus") or 0),
        "memory": float(asked.get("entrypoint_memory") or 0),
    }
    for usage in usage_by_node.values():
        totals = {k: float(v[1]) for k, v in usage.items() if isinstance(v, list) and len(v) > 1}
        if all(totals.get(k, 0.0) >= v for k, v in need.items() if v):
            return True
    return False


def describe_asked(asked: dict[str, Any]) -> str:
    parts = []
    if asked.get("entrypoint_num_cpus"):
        parts.append(f"cpus={asked['entrypoint_num_cpus']:g}")
    if asked.get("entrypoint_num_gpus"):
        parts.append(f"gpus={asked['entrypoint_num_gpus']}")
    if asked.get("entrypoint_memory"):
        parts.append(f"memory={asked['entrypoint_memory'] / 2**20:.0f}MiB")
    return ", ".join(parts) or "no resources"
