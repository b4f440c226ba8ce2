"""The automatic-rollback rule: judge the canary against production over a sliding window.

The server feeds every predict request into a `LiveWindow` (one deque append) and asks
`judge` about once a second. The rule fires when the canary has seen enough requests and its
server-error rate, or its p99 latency, is worse than production's by more than the margins in
`[serving.canary]`. Production's figures are the baseline only once it has enough requests
of its own; before that, errors are judged against zero and latency is not judged. With
`min_value_drop_per_1k` set, the business value (`[monitoring.value]` per 1,000 labelled
predictions, from the logs: `ValueWatch`) is judged too, once both variants have
`min_requests` labelled predictions.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from workbench.config import CanarySection


@dataclass(frozen=True)
class WindowStats:
    requests: int
    errors: int
    p99_ms: float | None
    value_per_1k: float | None = None  # over the labelled predictions (see ValueWatch)
    labelled: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


class LiveWindow:
    """(time, latency ms, server error?) per request for one variant, the last window_s."""

    def __init__(self, window_s: float, cap: int = 200_000) -> None:
        self.window_s = window_s
        self._items: deque[tuple[float, float, bool]] = deque(maxlen=cap)

    def add(self, latency_ms: float, error: bool, now: float | None = None) -> None:
        self._items.append((time.monotonic() if now is None else now, latency_ms, error))

    def stats(self, now: float | None = None) -> WindowStats:
        now = time.monotonic() if now is None else now
        cutoff = now - self.window_s
        items = self._items
        while items and items[0][0] < cutoff:
            items.popleft()
        snapshot = list(items)
        errors = sum(1 for _, _, err in snapshot if err)
        latencies = sorted(lat for _, lat, err in snapshot if not err)
        p99 = _quantile(latencies, 0.99) if latencies else None
        return WindowStats(len(snapshot), errors, p99)

    def clear(self) -> None:
        self._items.clear()


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, DuckDB's quantile_cont)."""
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def judge(rule: CanarySection, production: WindowStats, canary: WindowStats) -> str | None:
    """The reason to roll the canary back now, or None."""
    if not rule.auto_rollback or canary.requests < rule.min_requests:
        return None
    baseline_ready = production.requests >= rule.min_requests
    base_errors = production.error_rate if baseline_ready else 0.0
    if canary.error_rate - base_errors > rule.max_error_rate_increase:
        return (
            f"canary error rate {canary.error_rate:.1%} vs production {base_errors:.1%} "
            f"over {canary.requests} requests (margin {rule.max_error_rate_increase:.1%})"
        )
    if (
        baseline_ready
        and canary.p99_ms is not None
        and production.p99_ms is not None
        and canary.p99_ms - production.p99_ms > rule.max_p99_increase_ms
    ):
        return (
            f"canary p99 {canary.p99_ms:.1f} ms vs production {production.p99_ms:.1f} ms "
            f"(margin {rule.max_p99_increase_ms:g} ms)"
        )
    return _value_drop(rule, production, canary)


def _value_drop(rule: CanarySection, production: WindowStats, canary: WindowStats) -> str | None:
    margin = rule.min_value_drop_per_1k
    if margin is None or canary.value_per_1k is None or production.value_per_1k is None:
        return None
    if min(canary.labelled, production.labelled) < rule.min_requests:
        return None
    drop = production.value_per_1k - canary.value_per_1k
    if drop <= margin:
        return None
    return (
        f"canary value {canary.value_per_1k:,.2f} vs production {production.value_per_1k:,.2f} "
        f"per 1,000 predictions over {canary.labelled} labelled (margin {margin:,g})"
    )
