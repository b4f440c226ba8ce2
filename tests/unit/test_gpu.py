"""Per-job GPU memory: nvidia-smi's compute apps, matched to a job's host pids.

The canned output is written in nvidia-smi's documented layout for
`--query-compute-apps=pid,used_memory --format=csv,noheader,nounits` (one `pid, MiB` line per
process and GPU; `[N/A]` where a figure is not available, as under MIG or WDDM). No GPU
exists on CI machines, so the tool's output is the one thing faked: the processes and the
runner that finds their pids are real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from workbench_plugins.local_runner import LocalRunner

from workbench.jobs.gpu import compute_apps, job_gpu_mib, parse_compute_apps


def test_parse_compute_apps() -> None:
    assert parse_compute_apps("") == {}
    assert parse_compute_apps("1234, 2048\n5678, 512\n") == {1234: 2048.0, 5678: 512.0}
    # one process on two GPUs: two lines, summed
    assert parse_compute_apps("1234, 1000\n1234, 24\n") == {1234: 1024.0}
    # figures not available, and lines that are not figures at all
    canned = "1234, [N/A]\n[N/A], 300\nNo running processes found\n\n42, 100, 7\n99, 64\n"
    assert parse_compute_apps(canned) == {99: 64.0}


def test_job_gpu_mib() -> None:
    apps = {10: 2048.0, 11: 1024.0, 12: 512.0}
    assert job_gpu_mib([10, 11], apps) == 3072.0
    assert job_gpu_mib([10, 10], apps) == 2048.0  # a pid counts once
    assert job_gpu_mib([13, 14], apps) is None
    assert job_gpu_mib([], apps) is None
    assert job_gpu_mib([13], {}) is None


def test_compute_apps_when_the_tool_is_missing_or_fails(tmp_path: Path) -> None:
    assert compute_apps(str(tmp_path / "no-such-nvidia-smi")) is None
    failing = tmp_path / "failing-smi"
    failing.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    failing.chmod(0o755)
    assert compute_apps(str(failing)) is None
    slow = tmp_path / "slow-smi"
    slow.write_text("#!/bin/sh\nexec sleep 10\n")
    slow.chmod(0o755)
    assert compute_apps(str(slow), timeout=0.5) is None


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_real_process_with_a_fake_nvidia_smi(
    tmp_path: Path, child: subprocess.Popen[bytes]
) -> None:
    """A fake nvidia-smi reports 2048 MiB for a real child process (and some for a pid that
    is not ours); the local runner finds the child's pid from its handle, so the job's GPU
    memory is the 2048 MiB."""
    tool = tmp_path / "nvidia-smi"
    tool.write_text(
        "#!/bin/sh\n"
        'case "$*" in *--query-compute-apps=pid,used_memory*) ;; *) exit 2 ;; esac\n'
        f"echo '{child.pid}, 2048'\n"
        "echo '1, 999'\n"
    )
    tool.chmod(0o755)
    apps = compute_apps(str(tool))
    assert apps == {child.pid: 2048.0, 1: 999.0}

    runner = LocalRunner()
    pids = runner.pids(str(child.pid))
    assert child.pid in pids and 1 not in pids
    assert job_gpu_mib(pids, apps) == 2048.0

    # the runner's own process tree: the handle's descendants count too
    parent = runner.pids(str(os.getpid()))
    assert child.pid in parent

    child.kill()
    child.wait()
    assert runner.pids(str(child.pid)) == []
    assert runner.pids("not-a-pid") == []


class _Container:
    """What DockerRunner.pids reads of a docker-py container: its status and `top()` (host
    pids in the "PID" column of `docker top`'s default `ps -ef` layout)."""

    status = "running"

    def top(self) -> dict[str, list[object]]:
        return {
            "Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
            "Processes": [
                ["1000", "4242", "4200", "0", "09:00", "?", "00:00:01", "python -m x"],
                ["1000", "4250", "4242", "0", "09:00", "?", "00:00:00", "worker"],
            ],
        }


def test_docker_runner_pids(monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench_plugins.docker_runner import DockerRunner

    runner = DockerRunner()
    monkeypatch.setattr(DockerRunner, "_container", lambda self, handle: _Container())
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert runner.pids("abc123") == [4242, 4250]
    # a remote engine's pids belong to another machine: never matched to local nvidia-smi
    monkeypatch.setenv("DOCKER_HOST", "ssh://gpu-box")
    assert runner.pids("abc123") == []
    monkeypatch.delenv("DOCKER_HOST")

    def unreachable(self: DockerRunner, handle: str) -> None:
        raise RuntimeError("engine down")

    monkeypatch.setattr(DockerRunner, "_container", unreachable)
    assert runner.pids("abc123") == []
