"""The Docker runner: each job runs in a container of the project's job image.

Containers carry labels (project, job, role, run id), resource limits, GPU device requests
when configured, the data mounted read-only, the project's store mounted at the host's
absolute path (so MLflow's URIs hold inside), the host user's uid:gid, and an argument list
(never a shell string). Logs stream live. Failures end as a reason, never a hang.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from workbench.jobs import docker_engine, images
from workbench.plugins import JobSpec, Runner, RunObserver, StopWatcher, error_line, lines_of
from workbench.project import Project
from workbench.store import backends, tracking

STOP_GRACE_S = 10
#: Who a job runs as when Workbench itself runs as root: never root in the container.
NONROOT = (65532, 65532)


def job_user(project: Project) -> str:
    """`[docker].user`, or for "auto" the host user's uid:gid, or NONROOT when that is root."""
    cfg = project.config.docker
    if cfg.user != "auto":
        return cfg.user
    uid, gid = os.getuid(), os.getgid()
    return f"{NONROOT[0]}:{NONROOT[1]}" if uid == 0 else f"{uid}:{gid}"


def grant_store(project: Project, user: str, kind: str = "train") -> None:
    """Let the job's user write where a job writes: the store folder, mlflow.db, artifacts/
    and jobs/ (not recursively: existing runs stay as they are). A server also writes the
    prediction, label and audit logs and its deployment report: those trees are granted
    whole (their manifests and lock files are rewritten in place). Only root needs this."""
    if os.getuid() != 0:
        return
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or int(uid) == 0:
        return
    ids = int(uid), int(gid or uid)
    project.ensure_store()
    db = [project.mlflow_db] if project.tracking_uri.startswith("sqlite:") else []
    for path in (project.store, *db, project.artifacts, project.jobs_dir):
        if path.exists():
            os.chown(path, *ids)
    if kind != "serve":
        return
    project.logs.mkdir(parents=True, exist_ok=True)
    os.chown(project.logs, *ids)
    trees = [project.logs / name for name in ("predictions", "labels", "audit")]
    for tree in [*trees, project.store / "deployments"]:
        tree.mkdir(parents=True, exist_ok=True)
        for path in [tree, *tree.rglob("*")]:
            os.chown(path, *ids)


def _gpu_requests(gpus: int | str) -> list[Any]:
    import docker

    if not gpus:
        return []
    count = -1 if gpus == "all" else int(gpus)
    return [docker.types.DeviceRequest(count=count, capabilities=[["gpu"]])]


def container_config(project: Project, spec: JobSpec, image: str) -> dict[str, Any]:
    """The keyword arguments for `containers.run` (pure: tests check what is formed)."""
    import docker

    cfg = project.config.docker
    store = str(project.store.resolve())
    data = project.data_path
    data_dir = data.parent
    inside_data = (
        f"{images.PROJECT_DIR}/{data_dir.relative_to(project.root)}"
        if data_dir.is_relative_to(project.root)
        else f"{images.PROJECT_DIR}/.data"
    )
    mounts = [
        docker.types.Mount(target=store, source=store, type="bind", read_only=False),
        docker.types.Mount(target=inside_data, source=str(data_dir), type="bind", read_only=True),
    ]
    user = job_user(project)
    args = list(spec.args)
    if "--project" in args:
        args[args.index("--project") + 1] = images.PROJECT_DIR
    env = {
        "WORKBENCH_STORE": store,
        "PYTHONUNBUFFERED": "1",
        "HOME": "/tmp",
        "WORKBENCH_USER": os.environ.get("WORKBENCH_USER") or _user(),
        **({"WORKBENCH_GIT_COMMIT": c} if (c := tracking.git_commit(project.root)) else {}),
        **backends.job_env(project),  # a remote store's URIs and credentials
        **spec.env,
    }
    kwargs: dict[str, Any] = {
        "image": image,
        "command": ["python", "-m", spec.module, *args],
        "detach": True,
        "labels": docker_engine.labels(
            project=project.name, project_root=str(project.root), job=spec.job_id, role=spec.kind
        ),
        "mounts": mounts,
        "environment": env,
        "user": user,
        "working_dir": "/tmp",
        "name": f"wb-{spec.job_id}",
    }
    if not project.is_embedded_store and any(
        backends.loopback(u) for u in (project.tracking_uri, project.registry_uri)
    ):
        kwargs["network_mode"] = "host"  # the store answers on the host's loopback
    elif spec.ports:
        kwargs["ports"] = {f"{inside}/tcp": outside for inside, outside in spec.ports.items()}
    if cfg.cpus:
        kwargs["nano_cpus"] = int(cfg.cpus * 1e9)
    if cfg.memory:
        kwargs["mem_limit"] = cfg.memory
        kwargs["memswap_limit"] = cfg.memory  # no swap: an over-limit job is OOM-killed
    if requests := _gpu_requests(project.config.gpus):
        kwargs["device_requests"] = requests
    return kwargs


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class DockerRunner(Runner):
    name = "docker"

    def __init__(self) -> None:
        self._records: dict[str, dict[str, Any]] = {}

    def job_record(self, job_id: str) -> dict[str, Any]:
        """What the jobs log keeps of how the job ran (its `args`): the image's tag and id,
        the [resources] it was given; asked once, when the job starts."""
        return self._records.pop(job_id, {})

    def available(self) -> bool:
        return docker_engine.available()

    def why_not_for(self, project: Project) -> str | None:
        """Why this project's jobs cannot run here now (None: they can): the engine must
        answer, and the job image must be buildable without a registry we may not have."""
        import docker

        try:
            client = docker_engine.connect(timeout=docker_engine.PING_TIMEOUT_S)
        except docker_engine.EngineUnavailable as exc:
            return str(exc)
        cfg = project.config.docker
        own = cfg.dockerfile or (project.root / "Dockerfile").is_file()
        needed = cfg.image or (None if own else cfg.base_image)
        if needed:
            try:
                client.images.get(needed)
            except docker.errors.ImageNotFound:
                return (
                    f"the Docker engine answers, but image {needed!r} is not here "
                    "(run `workbench image bootstrap` and set [docker].base_image)"
                )
        return None

    def why_unavailable(self) -> str | None:
        try:
            docker_engine.connect(timeout=docker_engine.PING_TIMEOUT_S).close()
        except docker_engine.EngineUnavailable as exc:
            return str(exc)
        return None

    def run(self, spec: JobSpec, observer: RunObserver) -> tuple[int, str | None]:
        import docker
        import requests

        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "a", encoding="utf-8") as log:

            def emit(line: str) -> None:
                log.write(line + "\n")
                log.flush()
                observer.on_line(line)

            try:
                client = docker_engine.connect()
                project = Project.load(spec.project_root)
                image = images.ensure_job_image(project, client, emit)
                config = container_config(project, spec, image)
                grant_store(project, config["user"], spec.kind)
                container = client.containers.run(**config)
            except docker_engine.EngineUnavailable as exc:
                return 125, str(exc)
            except images.BuildFailed as exc:
                return 125, str(exc)
            except docker.errors.ImageNotFound as exc:
                return 125, f"image not found: {docker_engine.describe(exc)}"
            except (docker.errors.DockerException, requests.RequestException) as exc:
                return 125, f"cannot start the container: {docker_engine.describe(exc)}"
            cfg = project.config
            self._records[spec.job_id] = {
                "image": image,
                "image_id": container.attrs.get("Image"),
                "resources": {"cpus": cfg.docker.cpus, "memory": cfg.docker.memory,
                              "gpus": cfg.gpus},
            }  # fmt: skip
            observer.on_start(container.id[:12])
            return self._follow(container, emit, observer.should_stop)

    def _follow(
        self, container: Any, emit: Callable[[str], None], should_stop: Callable[[], bool]
    ) -> tuple[int, str | None]:
        import docker
        import requests

        def stop() -> None:
            with contextlib.suppress(docker.errors.DockerException):
                container.stop(timeout=STOP_GRACE_S)

        watcher = StopWatcher(should_stop, stop)
        last_error: str | None = None
        try:
            for line in lines_of(container.logs(stream=True, follow=True)):
                last_error = error_line(line) or last_error
                emit(line)
            code = int(container.wait().get("StatusCode", 1))
            container.reload()
            state = container.attrs.get("State", {})
        except docker.errors.NotFound:
            return 137, "the container was removed from outside"
        except (docker.errors.DockerException, requests.RequestException) as exc:
            return 125, f"lost the Docker engine: {docker_engine.describe(exc)}"
        finally:
            watcher.close()
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)
        if code == 0:
            return 0, None
        if watcher.requested:
            return code, "stopped"
        if state.get("OOMKilled"):
            return code, "killed: out of memory (raise [docker].memory)"
        if code == 137:
            return code, "killed from outside (SIGKILL)"
        if code == 143:
            return code, "killed from outside (SIGTERM)"
        return code, last_error or f"exited with code {code}"

    # --- control by handle (a container id), also from another process -----------------
    def _container(self, handle: str) -> Any:
        import docker

        try:
            return docker_engine.connect(timeout=10).containers.get(handle)
        except docker.errors.NotFound:
            return None

    def status(self, handle: str) -> tuple[str, int | None]:
        container = self._container(handle)
        if container is None:
            return "missing", None
        if container.status in ("running", "created", "restarting"):
            return "running", None
        return "exited", int(container.attrs.get("State", {}).get("ExitCode", 1))

    def collect(self, handle: str, log_path: str) -> None:
        """A job that ended while nobody followed it: keep its whole log, remove the container."""
        container = self._container(handle)
        if container is None:
            return
        text = container.logs(stream=False).decode("utf-8", "replace")
        with open(log_path, "w", encoding="utf-8") as fh:
            fh.write(text)
        container.remove(force=True)

    def stream_output(self, handle: str) -> Iterator[str]:
        """The container's log lines from the start, following until it ends (the engine is
        asked once the lines are read)."""

        def lines() -> Iterator[str]:
            container = self._container(handle)
            if container is not None:
                yield from lines_of(container.logs(stream=True, follow=True))

        return lines()

    def stop(self, handle: str) -> None:
        container = self._container(handle)
        if container is not None:
            container.stop(timeout=STOP_GRACE_S)

    def pids(self, handle: str) -> list[int]:
        """The container's processes as the engine's host sees them (`docker top` gives host
        pids); [] when it is not running, the engine is remote or anything fails."""
        if not docker_engine.where().startswith("unix://"):
            return []  # another machine's pids: they would match unrelated local processes
        try:
            container = self._container(handle)
            if container is None or container.status != "running":
                return []
            top = container.top()
            column = top["Titles"].index("PID")
            return [int(row[column]) for row in top.get("Processes") or []]
        except Exception:
            return []

    def stats(self, handle: str) -> dict[str, float]:
        container = self._container(handle)
        if container is None or container.status != "running":
            return {}
        s = container.stats(stream=False)
        cpu, pre = s.get("cpu_stats", {}), s.get("precpu_stats", {})
        cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get(
            "total_usage", 0
        )
        sys_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
        online = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or [1])
        mem = s.get("memory_stats", {})
        used = mem.get("usage", 0) - mem.get("stats", {}).get(
            "inactive_file", mem.get("stats", {}).get("cache", 0)
        )
        out = {"memory_mb": max(used, 0) / 2**20}
        if sys_delta > 0:
            out["cpu_percent"] = cpu_delta / sys_delta * online * 100.0
        return out
