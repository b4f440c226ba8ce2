"""The local runner: a job is a child Python process of the same interpreter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

from workbench.plugins import JobSpec


class LocalRunner:
    kind = "runner"
    name = "local"

    def available(self) -> bool:
        return True

    def run(
        self,
        spec: JobSpec,
        on_line: Callable[[str], None],
        should_stop: Callable[[], bool] | None = None,
        on_start: Callable[[str], None] | None = None,
    ) -> tuple[int, str | None]:
        env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1"}
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
                start_new_session=True,
            )
        except OSError as exc:
            return 127, f"cannot start {sys.executable}: {exc}"
        if on_start:
            on_start(str(proc.pid))
        stopped = threading.Event()

        def watch() -> None:
            while proc.poll() is None:
                if should_stop and should_stop():
                    stopped.set()
                    os.killpg(proc.pid, signal.SIGTERM)
                    try:
                        proc.wait(10)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                    return
                stopped.wait(0.2)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        last_error: str | None = None
        assert proc.stdout is not None
        with open(spec.log_path, "a", encoding="utf-8") as log:
            for line in proc.stdout:
                line = line.rstrip("\n")
                log.write(line + "\n")
                log.flush()
                if line.startswith("error: ") or "Error:" in line:
                    last_error = line.removeprefix("error: ")
                on_line(line)
        code = proc.wait()
        stopped.set()
        if code == 0:
            return 0, None
        if code < 0:
            sig = signal.Signals(-code).name
            return code, "stopped by user" if should_stop and should_stop() else f"killed by {sig}"
        return code, last_error or f"exited with code {code}"
