"""Host processes of running jobs, for the runners' status, stop and live CPU/memory.

A `ProcessCache` keeps each `psutil.Process` between calls: psutil's `cpu_percent()` is the
CPU use since the previous call on the same object, so a fresh object every poll reads 0.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import psutil


class ProcessCache:
    """Live processes by pid; None for a pid that ended, or is a zombie, or cannot be read."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def get(self, pid: int) -> psutil.Process | None:
        proc = self._procs.get(pid)
        try:
            if proc is None or not proc.is_running():
                proc = self._procs[pid] = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.Error:
            self._procs.pop(pid, None)
            return None

    def family(self, proc: psutil.Process, with_root: bool = True) -> list[psutil.Process]:
        """`proc` (unless `with_root` is False) and its descendants, each the cached object."""
        members = [proc] if with_root else []
        with contextlib.suppress(psutil.Error):
            members += proc.children(recursive=True)
        return [self.get(m.pid) or m for m in members]


def usage(processes: Iterable[psutil.Process]) -> dict[str, float]:
    """CPU percent (since the previous call on each object) and resident memory, summed;
    {} when there is no process."""
    cpu, rss, seen = 0.0, 0, False
    for proc in processes:
        seen = True
        with contextlib.suppress(psutil.Error):
            cpu += proc.cpu_percent(interval=None)
            rss += proc.memory_info().rss
    return {"cpu_percent": cpu, "memory_mb": rss / 2**20} if seen else {}
