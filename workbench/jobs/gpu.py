"""GPU use from `nvidia-smi` (no NVIDIA library imported).

`compute_apps` reads every process that holds GPU memory now, by host pid; `job_gpu_mib`
sums the ones that belong to a job (its runner says which host pids those are);
`device_use` reads the whole device's utilization and memory, for a title or a status line.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterable

COMPUTE_APPS_QUERY = [
    "--query-compute-apps=pid,used_memory",
    "--format=csv,noheader,nounits",
]
DEVICE_QUERY = ["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]


def find_tool(name: str | None = "nvidia-smi") -> str | None:
    """The tool's path when it is on the PATH (None: no GPU to report on)."""
    return shutil.which(name) if name else None


def device_use(tool: str = "nvidia-smi", timeout: float = 3) -> str | None:
    """The GPUs' use now, for the whole device: '45% 12.3G' (see `parse_device_use`); None
    when the tool is missing, fails or times out."""
    try:
        out = subprocess.run(
            [tool, *DEVICE_QUERY], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_device_use(out.stdout) if out.returncode == 0 else None


def parse_device_use(csv: str) -> str | None:
    """`utilization.gpu, memory.used` lines (one per GPU, MiB) -> '45% 12.3G': the mean
    utilization and the memory used on all GPUs together."""
    util: list[float] = []
    mem: list[float] = []
    for line in csv.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2:
            continue
        # Each figure on its own: with MIG, utilization reads "[N/A]" but memory is real.
        for text, into in ((parts[0], util), (parts[1], mem)):
            with contextlib.suppress(ValueError):
                into.append(float(text))
    if not util and not mem:
        return None
    used = f"{sum(util) / len(util):.0f}%" if util else "?%"
    return f"{used} {sum(mem) / 1024:.1f}G" if mem else used


def compute_apps(tool: str = "nvidia-smi", timeout: float = 3) -> dict[int, float] | None:
    """Host pid -> GPU memory in MiB (summed over GPUs: a process on two GPUs has two lines);
    None when the tool is missing, fails or times out."""
    try:
        out = subprocess.run(
            [tool, *COMPUTE_APPS_QUERY],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_compute_apps(out.stdout) if out.returncode == 0 else None


def parse_compute_apps(csv: str) -> dict[int, float]:
    """`pid, used_memory` lines (MiB) -> {pid: MiB}; `[N/A]` and other lines are skipped."""
    apps: dict[int, float] = {}
    for line in csv.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 2:
            continue
        try:
            pid, mib = int(parts[0]), float(parts[1])
        except ValueError:
            continue
        if pid > 0 and mib >= 0:
            apps[pid] = apps.get(pid, 0.0) + mib
    return apps


def job_gpu_mib(pids: Iterable[int], apps: dict[int, float]) -> float | None:
    """The GPU memory (MiB) of a job's processes; None when none of them uses the GPU."""
    used = [apps[pid] for pid in set(pids) if pid in apps]
    return sum(used) if used else None
