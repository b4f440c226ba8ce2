"""The local runner: a job is a child Python process of the same interpreter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

from workbench.errors import WorkbenchError
from workbench.jobs.processes import ProcessCache, usage
from workbench.plugins import JobSpec, Runner, RunObserver, StopWatcher, error_line
from workbench.project import Project
from workbench.store import backends

STOP_GRACE_S = 10


def _store_env(spec: JobSpec) -> dict[str, str]:
    """A remote store's URIs and credential variables (none for the embedded store); its
    URI without a password, which this process's MLFLOW_TRACKING_URI may hold."""
    try:
        return backends.job_env(Project.load(spec.project_root))
    except WorkbenchError:  # the job itself will say what is wrong with the project
        return {}


class LocalRunner(Runner):
    name = "local"

    def __init__(self) -> None:
        self._cache = ProcessCache()

    def available(self) -> bool:
        return True

    def run(self, spec: JobSpec, observer: RunObserver) -> tuple[int, str | None]:
        env = {**os.environ, **_store_env(spec), **spec.env, "PYTHONUNBUFFERED": "1"}
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", spec.module, *spec.args],
                cwd=spec.project_root,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                bufsize=1,
                env=env,
                start_new_session=True,  # its own process group: stop() reaches its children
            )
        except OSError as exc:
            return 127, f"cannot start {sys.executable}: {exc}"
        observer.on_start(str(proc.pid))
        watcher = StopWatcher(observer.should_stop, lambda: self.stop(str(proc.pid)))
        last_error: str | None = None
        assert proc.stdout is not None
        with open(spec.log_path, "a", encoding="utf-8") as log:
            for line in proc.stdout:
                line = line.rstrip("\n")
                log.write(line + "\n")
                log.flush()
                last_error = error_line(line) or last_error
                observer.on_line(line)
        code = proc.wait()
        watcher.close()
        if code == 0:
            return 0, None
        if code < 0:
            sig = signal.Signals(-code)
            if watcher.requested or sig == signal.SIGTERM:
                return code, "stopped"
            return code, f"killed by {sig.name}"
        return code, last_error or f"exited with code {code}"

    # --- control by handle (a pid), also from another process than the one that started it
    def _process(self, handle: str) -> psutil.Process | None:
        try:
            return self._cache.get(int(handle))
        except ValueError:
            return None

    def status(self, handle: str) -> tuple[str, int | None]:
        return ("running", None) if self._process(handle) else ("exited", None)

    def stop(self, handle: str) -> None:
        proc = self._process(handle)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            # Poll, never wait(): psutil's wait() would reap our own child and rob the
            # Popen that started it of the exit status.
            deadline = time.monotonic() + STOP_GRACE_S
            while time.monotonic() < deadline:
                if self._process(handle) is None:
                    return
                time.sleep(0.1)
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, psutil.Error):
            pass

    def pids(self, handle: str) -> list[int]:
        """The job's process and all its descendants (host pids); [] when it is gone."""
        proc = self._process(handle)
        if proc is None:
            return []
        try:
            return [proc.pid, *(child.pid for child in proc.children(recursive=True))]
        except psutil.Error:
            return [proc.pid]

    def stats(self, handle: str) -> dict[str, float]:
        proc = self._process(handle)
        return usage(self._cache.family(proc)) if proc is not None else {}
