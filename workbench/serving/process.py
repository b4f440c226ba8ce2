"""Starting and stopping a model's inference server in the background, for the CLI's
`serve --detach`, the demo and the TUI: `workbench serve` runs detached (its own session),
as a job through the runner, and this waits for its report and /ready."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

from workbench.errors import UsageError


def _http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status) == 200
    except (OSError, ValueError):
        return False


def start_detached(
    project: Any,
    host: str,
    port: int,
    alias: str | None = None,
    runner: str | None = None,
    timeout: float = 300.0,
    workers: int | None = None,
) -> tuple[str, str, int]:
    """Start `workbench serve` in the background; return (job id, url, pid) once the server
    is ready. Its output goes to deployments/<model>.serve.out."""
    from workbench.jobs.control import new_job_id
    from workbench.serving import deployments

    job_id = new_job_id("serve")
    out_path = deployments.folder(project) / f"{project.config.model_name}.serve.out"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "workbench", "serve", "--project", str(project.root)]
    cmd += ["--port", str(port), "--host", host, "--job-id", job_id]
    if alias:
        cmd += ["--alias", alias]
    if runner:
        cmd += ["--runner", runner]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = out_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise UsageError(
                "the server did not start: " + (" | ".join(tail) or f"exit {proc.returncode}")
            )
        report = deployments.read_server(project)
        if report and report.get("applied_generation", -1) >= 0 and _http_ok(f"{url}/ready"):
            return job_id, url, proc.pid
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    raise UsageError(f"the server was not ready after {timeout:g} s (its output: {out_path})")


def stop(project: Any, timeout: float = 30.0) -> str | None:
    """Stop the running server (gracefully: it flushes its prediction log) and wait for its
    report to go; returns its job id, or None when none ran."""
    from workbench.jobs import control as jobs
    from workbench.serving import deployments

    report = deployments.read_server(project)
    if report is None:
        return None
    job_id = str(report.get("job_id"))
    jobs.stop_job(project, job_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and deployments.read_server(project) is not None:
        time.sleep(0.2)
    if deployments.read_server(project) is not None:
        raise UsageError(f"the server (job {job_id}) did not stop within {timeout:g} s")
    return job_id
