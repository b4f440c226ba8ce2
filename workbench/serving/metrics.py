"""The inference server's counters, in Prometheus text format (hand-rolled: a few counters
and one histogram per variant cost less per request than a client library's locks)."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import defaultdict
from typing import Protocol

#: Metric families by name: (help, [(labels, value)]).
Samples = dict[str, tuple[str, list[tuple[dict[str, str], float]]]]
BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics(Protocol):
    """What the server counts with: ServerMetrics in one process; with several workers,
    workbench.serving.shared_metrics.SharedMetrics (merged over every worker)."""

    started: float

    def observe(
        self, endpoint: str, variant: str, version: int, status: int, seconds: float, rows: int
    ) -> None: ...

    def render(self, gauges: Samples, counters: Samples | None = None) -> str: ...


class ServerMetrics:
    def __init__(self) -> None:
        self.started = time.time()
        self.requests: defaultdict[tuple[str, str, int, int], int] = defaultdict(int)
        self.predictions: defaultdict[tuple[str, int], int] = defaultdict(int)
        self._hist: dict[str, list[int]] = {}
        self._sum: defaultdict[str, float] = defaultdict(float)

    def observe(
        self, endpoint: str, variant: str, version: int, status: int, seconds: float, rows: int
    ) -> None:
        """One request (called on the event loop; plain dict updates, no lock needed)."""
        self.requests[(endpoint, variant, version, status)] += 1
        if status < 400:
            self.predictions[(variant, version)] += rows
            hist = self._hist.get(variant)
            if hist is None:
                hist = self._hist[variant] = [0] * (len(BUCKETS_S) + 1)
            hist[bisect_left(BUCKETS_S, seconds)] += 1
            self._sum[variant] += seconds

    def render(self, gauges: Samples, counters: Samples | None = None) -> str:
        """The exposition text; `gauges` and `counters` map a name to (help, [(labels,
        value)])."""
        out: list[str] = []

        def labels(pairs: dict[str, str]) -> str:
            inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in pairs.items())
            return "{" + inner + "}" if inner else ""

        out += [
            "# HELP workbench_requests_total HTTP requests by endpoint, variant, version, status.",
            "# TYPE workbench_requests_total counter",
        ]
        for (endpoint, variant, version, status), n in sorted(self.requests.items()):
            lab = {"endpoint": endpoint, "variant": variant, "version": str(version)}
            lab["status"] = str(status)
            out.append(f"workbench_requests_total{labels(lab)} {n}")
        out += [
            "# HELP workbench_predictions_total Records scored, by variant and version.",
            "# TYPE workbench_predictions_total counter",
        ]
        for (variant, version), n in sorted(self.predictions.items()):
            lab = {"variant": variant, "version": str(version)}
            out.append(f"workbench_predictions_total{labels(lab)} {n}")
        out += [
            "# HELP workbench_request_duration_seconds Latency of successful predict requests.",
            "# TYPE workbench_request_duration_seconds histogram",
        ]
        for variant, hist in sorted(self._hist.items()):
            running = 0
            for edge, count in zip((*BUCKETS_S, float("inf")), hist, strict=True):
                running += count
                le = "+Inf" if edge == float("inf") else repr(edge)
                out.append(
                    f"workbench_request_duration_seconds_bucket"
                    f"{labels({'variant': variant, 'le': le})} {running}"
                )
            out.append(
                f"workbench_request_duration_seconds_sum{labels({'variant': variant})} "
                f"{self._sum[variant]:.6f}"
            )
            out.append(
                f"workbench_request_duration_seconds_count{labels({'variant': variant})} {running}"
            )
        gauges = {
            "workbench_uptime_seconds": (
                "Seconds since the server started.",
                [({}, time.time() - self.started)],
            ),
            **gauges,
        }
        typed = [(gauges, "gauge"), (counters or {}, "counter")]
        for family, kind in typed:
            for name, (help_, samples) in family.items():
                out += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
                out += [f"{name}{labels(lab)} {_number(value)}" for lab, value in samples]
        return "\n".join(out) + "\n"


def _number(value: float) -> str:
    """Integers exactly (a row counter past a million must not read 1.23457e+06)."""
    return str(value) if type(value) is int else f"{value:g}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
