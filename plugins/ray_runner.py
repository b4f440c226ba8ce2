"""The Ray runner: a job is a Ray job, submitted to `[ray] address` through the Jobs API.

The job runs `[ray] python -m MODULE ARGS` on the cluster (see `ray_submit` for what goes
with it); its log is tailed live into the job's log file, and its handle
(`SUBMISSION_ID@ADDRESS`) reaches it from any process: status, stop, logs, reattach. Every
failure ends as one line: the cluster unreachable, the job failed (its last error line), the
job stopped, or the job pending past `[ray] pending_timeout_s` (no node has its resources).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from workbench_plugins import ray_submit
from workbench_plugins.ray_stats import JobProcesses
from workbench_plugins.ray_submit import INSTALL, handle_of, parse_handle

from workbench.errors import ConfigError
from workbench.plugins import JobSpec, Runner, RunObserver, StopWatcher, error_line
from workbench.project import Project

POLL_S = 0.5
CONNECT_TIMEOUT_S = 10.0
ENDED = ("SUCCEEDED", "FAILED", "STOPPED")


class Unreachable(Exception):
    """The cluster's Jobs API does not answer."""


def ray_installed() -> bool:
    try:
        return importlib.util.find_spec("ray.job_submission") is not None
    except (ImportError, ValueError):
        return False


def connect(address: str) -> Any:
    """A Jobs API client of the cluster at `address`, or Unreachable in one line."""
    import requests

    try:
        requests.get(f"{address.rstrip('/')}/api/version", timeout=CONNECT_TIMEOUT_S)
    except requests.RequestException as exc:
        why = type(exc).__name__
        raise Unreachable(
            f"cannot reach the Ray cluster at {address} ({why}): is its head up? ([ray] address)"
        ) from None
    from ray.job_submission import JobSubmissionClient

    quiet = ("dashboard_sdk", "job.sdk")
    for name in [*(f"ray.dashboard.modules.{m}" for m in quiet), "ray._private.runtime_env"]:
        logging.getLogger(name).setLevel(logging.WARNING)  # no "Uploading package" lines

    try:
        return JobSubmissionClient(address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise Unreachable(f"the Ray cluster at {address} refused the client: {first}") from None


def tail_lines(client: Any, submission_id: str) -> Iterator[str]:
    """The job's whole lines from its start, following until it ends (the Jobs API's log
    tail, driven without a running event loop)."""
    import asyncio

    loop = asyncio.new_event_loop()
    chunks = client.tail_job_logs(submission_id)
    buf = ""
    try:
        while True:
            try:
                chunk = loop.run_until_complete(chunks.__anext__())
            except StopAsyncIteration:
                break
            buf += chunk
            *whole, buf = buf.split("\n")
            yield from whole
        if buf:
            yield buf
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(chunks.aclose())
        loop.close()


class _Tail:
    """Tails a job's log in a thread; `lines` receives each whole line."""

    def __init__(self, client: Any, submission_id: str) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self._client, self._id = client, submission_id
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # the full log is read at the end anyway
            for line in tail_lines(self._client, self._id):
                self.lines.put(line)


class RayRunner(Runner):
    name = "ray"

    def __init__(self) -> None:
        self._processes = JobProcesses()

    def available(self) -> bool:
        return ray_installed()

    def why_unavailable(self) -> str | None:
        return None if ray_installed() else f"Ray is not installed here ({INSTALL})"

    def why_not_for(self, project: Project) -> str | None:
        if not ray_installed():
            return f"Ray is not installed here ({INSTALL})"
        if not project.config.ray.address:
            return '[ray] address is not set in workbench.toml (e.g. "http://HEAD:8265")'
        return None

    def run(self, spec: JobSpec, observer: RunObserver) -> tuple[int, str | None]:
        project = Project.load(spec.project_root)
        address = project.config.ray.address
        if not address:
            raise ConfigError(
                'workbench.toml: [ray].address is not set (e.g. "http://HEAD:8265") '
                "for --runner ray"
            )
        if spec.ports or spec.ends_well != "result":
            return 2, "the ray runner runs training and sweep jobs, not servers"
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "a", encoding="utf-8") as log:

            def emit(line: str) -> None:
                log.write(line + "\n")
                log.flush()
                observer.on_line(line)

            try:
                kwargs = ray_submit.submission(project, spec)
                client = connect(address)
                if not _room_for(address, kwargs, project.config.ray.pending_timeout_s):
                    waited = project.config.ray.pending_timeout_s
                    return 1, no_resources(kwargs, waited, "waited")
                os.environ["RAY_RUNTIME_ENV_IGNORE_GITIGNORE"] = "1"  # the data goes too
                submission_id = client.submit_job(**kwargs)
            except ConfigError as exc:
                return 2, str(exc)
            except Unreachable as exc:
                return 125, str(exc)
            except Exception as exc:  # the cluster refused the job (runtime env, bad id...)
                first = (str(exc).strip().splitlines() or [""])[0][:300]
                return 125, f"the Ray cluster at {address} refused the job: {first}"
            observer.on_start(handle_of(submission_id, address))
            follow = _Follow(client, submission_id, emit, project, kwargs)
            return follow.run(observer.should_stop)

    # --- control by handle (SUBMISSION_ID@ADDRESS), also from another process ------------
    def _client(self, handle: str) -> tuple[Any, str]:
        submission_id, address = parse_handle(handle)
        return connect(address), submission_id

    def status(self, handle: str) -> tuple[str, int | None]:
        client, submission_id = self._client(handle)
        try:
            info = client.get_job_info(submission_id)
        except RuntimeError as exc:
            if "does not exist" in str(exc) or "404" in str(exc):
                return "missing", None
            raise
        state = str(getattr(info.status, "value", info.status))
        if state not in ENDED:
            return "running", None
        return "exited", _exit_code(state, info)

    def stop(self, handle: str) -> None:
        client, submission_id = self._client(handle)
        client.stop_job(submission_id)

    def stats(self, handle: str) -> dict[str, float]:
        """CPU % and memory of the running job's processes when its driver runs on this host;
        {} otherwise (another host, ended, the cluster silent): never raises."""
        return self._processes.stats(handle)

    def pids(self, handle: str) -> list[int]:
        """The running job's host pids (driver tree, its Ray workers) when on this host."""
        return self._processes.pids(handle)

    def collect(self, handle: str, log_path: str) -> None:
        """A job that ended while nobody followed it: its whole log from the cluster."""
        client, submission_id = self._client(handle)
        text = client.get_job_logs(submission_id)
        with open(log_path, "w", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") or not text else text + "\n")

    def stream_output(self, handle: str) -> Iterator[str]:
        def lines() -> Iterator[str]:
            client, submission_id = self._client(handle)
            yield from tail_lines(client, submission_id)

        return lines()


def _exit_code(state: str, info: Any) -> int:
    if state == "SUCCEEDED":
        return 0
    if state == "STOPPED":
        return 143
    code = getattr(info, "driver_exit_code", None)
    return int(code) if code else 1


class _Follow:
    """Following one submitted job to its end: its lines, a stop request, a pending job."""

    def __init__(
        self,
        client: Any,
        submission_id: str,
        emit: Callable[[str], None],
        project: Project,
        asked: dict[str, Any],
    ) -> None:
        self.client, self.id, self._emit = client, submission_id, emit
        self.project, self.asked = project, asked
        self.seen = 0
        self.last_error: str | None = None
        self._fit: bool | None = None

    def emit(self, line: str) -> None:
        self.seen += 1
        self.last_error = error_line(line) or self.last_error
        self._emit(line)

    def run(self, should_stop: Callable[[], bool]) -> tuple[int, str | None]:
        cfg = self.project.config.ray
        tail = _Tail(self.client, self.id)
        watcher = StopWatcher(should_stop, lambda: self.client.stop_job(self.id))
        started = time.monotonic()
        try:
            while True:
                self._drain(tail, POLL_S)
                info = self.client.get_job_info(self.id)
                state = str(getattr(info.status, "value", info.status))
                if state in ENDED:
                    break
                waited = time.monotonic() - started
                if state == "PENDING" and waited > cfg.pending_timeout_s and not self._fits():
                    self.client.stop_job(self.id)  # takes effect if a node comes
                    return 1, no_resources(self.asked, waited)
        except Exception as exc:  # the cluster went away while the job ran
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            return 125, f"lost the Ray cluster at {cfg.address}: {type(exc).__name__}: {first}"
        finally:
            watcher.close()
        tail.thread.join(timeout=5)
        self._drain(tail, 0)
        self._rest()
        if state == "SUCCEEDED":
            return 0, None
        if state == "STOPPED":
            return 143, "stopped"
        message = (str(info.message or "").strip().splitlines() or [""])[0][:300]
        return _exit_code(state, info), self.last_error or message or "the Ray job failed"

    def _drain(self, tail: _Tail, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self.emit(tail.lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                return

    def _rest(self) -> None:
        """Lines the tail missed (it broke, or the job ended first), from the whole log."""
        with contextlib.suppress(Exception):
            lines = self.client.get_job_logs(self.id).splitlines()
            for line in lines[self.seen :]:
                self.emit(line)

    def _fits(self) -> bool:
        """Has a node the resources the job asks (so a pending job waits for them to be
        free, or for its runtime environment)? False when the cluster cannot say."""
        if self._fit is None:
            found = node_fits(str(self.project.config.ray.address), self.asked)
            if found is None:
                return False  # asked again at the next poll
            self._fit = found
        return self._fit


def node_fits(address: str, asked: dict[str, Any]) -> bool | None:
    """Does a node of the cluster have the resources `asked` (its totals, from the
    dashboard's cluster status)? None when the cluster cannot say."""
    import requests

    try:
        got = requests.get(f"{address.rstrip('/')}/api/cluster_status", timeout=CONNECT_TIMEOUT_S)
        report = got.json()["data"]["clusterStatus"]["loadMetricsReport"]
        return ray_submit.fits(asked, report.get("usageByNode") or {})
    except Exception:
        return None


def _room_for(address: str, asked: dict[str, Any], timeout_s: float) -> bool:
    """Wait up to `timeout_s` for a node with the resources `asked` (an autoscaler may add
    one), before submitting: Ray keeps a job no node can run PENDING, and cannot stop it."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = node_fits(address, asked)
        if found is None or found:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)


def no_resources(asked: dict[str, Any], waited: float, how: str = "stayed pending") -> str:
    return (
        f"no node of the Ray cluster has the resources the job asks "
        f"({ray_submit.describe_asked(asked)}): it {how} {waited:.0f}s "
        "([ray] pending_timeout_s)"
    )
