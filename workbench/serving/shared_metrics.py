"""The inference server's counters when several worker processes serve one port.

prometheus-client's multiprocess mode: every worker writes its counters, histogram and gauges
to its own memory-mapped files under PROMETHEUS_MULTIPROC_DIR (one `inc` is a store into a
mapped page: a worker killed with -9 loses none of it), and whichever worker answers
`/metrics` merges every worker's files, the dead ones' included, so the totals are the
server's, not one worker's. Gauges say how they merge: the log queue is summed over the live
workers, `workbench_ready` and the applied generation are their minimum.

The same merged totals feed the canary rule: `AggregateWindow` (run by one worker, the
leader) samples them every poll and differences the samples over the rule's window, so the
rollback is judged on every worker's requests, once.

The variable must be set before prometheus_client is imported (it picks its value class at
import): the supervisor (workbench.serving.workers) sets it before it forks the workers.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.serving.canary_rule import WindowStats
from workbench.serving.metrics import BUCKETS_S, Samples, _escape

ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Per-variant totals: {variant: {version: (success counts per bucket (not cumulative), errors)}}
Totals = dict[str, dict[int, tuple[list[float], float]]]


class SharedMetrics:
    """`ServerMetrics`' interface (observe, render, started) over the multiprocess files."""

    def __init__(self, started: float, workers: int) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.started = started
        self.path = os.environ[ENV]
        self.requests = Counter(
            "workbench_requests", "HTTP requests by endpoint, variant, version, status.",
            ["endpoint", "variant", "version", "status"], registry=None,
        )  # fmt: skip
        self.predictions = Counter(
            "workbench_predictions", "Records scored, by variant and version.",
            ["variant", "version"], registry=None,
        )  # fmt: skip
        self.duration = Histogram(
            "workbench_request_duration_seconds", "Latency of successful predict requests.",
            ["variant"], buckets=BUCKETS_S, registry=None,
        )  # fmt: skip
        self._children: dict[tuple[Any, ...], Any] = {}

        def gauge(name: str, help_: str, mode: Any, labels: tuple[str, ...] = ()) -> Any:
            return Gauge(name, help_, labels, registry=None, multiprocess_mode=mode)

        self.info = gauge(
            "workbench_model_info", "The versions being served, by variant.", "livemax",
            ("variant", "version"),
        )  # fmt: skip
        self.traffic = gauge(
            "workbench_canary_traffic_ratio", "Share of requests the canary gets.", "livemax"
        )
        self.ready = gauge("workbench_ready", "1 once every worker has a model.", "livemin")
        self.generation = gauge(
            "workbench_applied_generation", "The deployment generation every worker applied.",
            "livemin",
        )  # fmt: skip
        self.workers = gauge("workbench_workers", "Worker processes configured.", "livemax")
        self.workers_up = gauge("workbench_workers_up", "Worker processes serving.", "livesum")
        self.log_gauges = {
            "queue": gauge(
                "workbench_prediction_log_queue", "Prediction log rows waiting to be written.",
                "livesum",
            ),
            "limit": gauge(
                "workbench_prediction_log_queue_limit",
                "Rows that may wait (per worker) before predictions are refused (503).",
                "livemax",
            ),
            "up": gauge(
                "workbench_prediction_log_writer_up",
                "1 while every worker's prediction log writer runs; 0 once one stopped.",
                "livemin",
            ),
            "accepting": gauge(
                "workbench_prediction_log_accepting",
                "1 while every worker's prediction log takes rows (0: some get a 503).",
                "livemin",
            ),
        }  # fmt: skip
        self.log_counters = {
            "written": Counter(
                "workbench_prediction_log_rows_written", "Prediction log rows written to Parquet.",
                registry=None,
            ),
            "quarantined": Counter(
                "workbench_prediction_log_rows_quarantined",
                "Rows Parquet could not hold, put aside in predictions/_quarantine/.",
                registry=None,
            ),
            "dropped": Counter(
                "workbench_prediction_log_rows_dropped",
                "Rows neither written nor quarantined (both writes failed).", registry=None,
            ),
            "write_errors": Counter(
                "workbench_prediction_log_write_errors",
                "Failed attempts at writing a prediction log file (retried).", registry=None,
            ),
        }  # fmt: skip
        self._log_seen = dict.fromkeys(self.log_counters, 0)
        self._info_seen: set[tuple[str, str]] = set()
        self.workers.set(workers)
        self.workers_up.set(1)
        self.ready.set(0)
        self.generation.set(-1)

    def observe(
        self, endpoint: str, variant: str, version: int, status: int, seconds: float, rows: int
    ) -> None:
        """One request (on the event loop): a few stores into this worker's mapped files."""
        key = (endpoint, variant, version, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(
                endpoint, variant, str(version), str(status)
            )
        child.inc()
        if status < 400:
            both = self._children.get((variant, version))
            if both is None:
                both = self._children[(variant, version)] = (
                    self.predictions.labels(variant, str(version)),
                    self.duration.labels(variant),
                )
            if rows:
                both[0].inc(rows)
            both[1].observe(seconds)

    def sync(self, app: Any, generation: int) -> None:
        """This worker's gauges and log counters, from its state (the reconciler, each poll)."""
        routes, log = app.routes, app.logger
        self.ready.set(1 if routes else 0)
        self.generation.set(generation)
        now = set()
        if routes is not None:
            now.add(("production", str(routes.production.version)))
            if routes.canary is not None:
                now.add(("canary", str(routes.canary.version)))
        for pair in self._info_seen - now:
            self.info.labels(*pair).set(0)
        for pair in now:
            self.info.labels(*pair).set(1)
        self._info_seen |= now
        self.traffic.set(routes.traffic if routes is not None and routes.canary else 0.0)
        self.log_gauges["queue"].set(log.queued)
        self.log_gauges["limit"].set(log.max_queued)
        self.log_gauges["up"].set(1 if log.writer_up else 0)
        self.log_gauges["accepting"].set(0 if log.refusal() else 1)
        for name, counter in self.log_counters.items():
            value = int(getattr(log, name))
            if value > self._log_seen[name]:
                counter.inc(value - self._log_seen[name])
                self._log_seen[name] = value

    def render(self, gauges: Samples | None = None, counters: Samples | None = None) -> str:
        """Every worker's metrics, merged (the arguments, one worker's own, are not used), in
        the text format with labels in ServerMetrics' order (prometheus_client sorts them)."""
        out: list[str] = []
        for family in _Merged(self.path, self.started).collect():
            name = family.name + ("_total" if family.type == "counter" else "")
            out += [
                f"# HELP {name} {_escape(family.documentation)}",
                f"# TYPE {name} {family.type}",
            ]
            for sample in family.samples:
                inner = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sample.labels.items())
                value = sample.value
                text = str(int(value)) if float(value).is_integer() else repr(float(value))
                out.append(f"{sample.name}{{{inner}}} {text}" if inner else f"{sample.name} {text}")
        return "\n".join(out) + "\n"

    def read(self) -> tuple[Totals, dict[str, Any]]:
        """The merged totals: successful requests per latency bucket and server errors, per
        variant (and version, for errors), summed over every worker that ever ran; and the
        live workers' `applied` generation (their lowest), how many are `up`, their `pids`."""
        out: Totals = {}
        gauges: dict[str, Any] = {"pids": _live_pids(self.path)}
        edges = len(BUCKETS_S) + 1
        for family in _collect(self.path):
            if family.name == "workbench_applied_generation" and family.samples:
                gauges["applied"] = family.samples[0].value
            elif family.name == "workbench_workers_up" and family.samples:
                gauges["up"] = family.samples[0].value
            elif family.name == "workbench_request_duration_seconds":
                for s in family.samples:
                    if s.name.endswith("_bucket"):
                        _totals_bucket(out, s.labels, s.value, edges)
            elif family.name == "workbench_requests":
                for s in family.samples:
                    if s.name.endswith("_total") and int(s.labels["status"]) >= 500:
                        per = out.setdefault(s.labels["variant"], {})
                        version = int(s.labels["version"])
                        hist, errors = per.get(version, ([0.0] * edges, 0.0))
                        per[version] = (hist, errors + s.value)
        return out, gauges


def _live_pids(path: str) -> list[int]:
    """The workers alive now: the ones whose live gauges' file is there."""
    ends = [n.stem.rsplit("_", 1)[1] for n in Path(path).glob("gauge_livesum_*.db")]
    return sorted(int(end) for end in ends if end.isdigit())


def _totals_bucket(out: Totals, labels: dict[str, str], value: float, edges: int) -> None:
    """Histogram samples are per variant only: their counts go to version -1."""
    per = out.setdefault(labels["variant"], {})
    hist, errors = per.get(-1, ([0.0] * edges, 0.0))
    le = labels["le"]
    index = edges - 1 if le == "+Inf" else BUCKETS_S.index(float(le))
    hist[index] = value  # cumulative for now; made per-bucket in AggregateWindow
    per[-1] = (hist, errors)


def _collect(path: str) -> Iterator[Any]:
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    collector: Any = MultiProcessCollector
    yield from collector(CollectorRegistry(), path).collect()


#: Labels in the order one process's ServerMetrics writes them.
LABEL_ORDER = {
    "workbench_requests": ("endpoint", "variant", "version", "status"),
    "workbench_predictions": ("variant", "version"),
    "workbench_request_duration_seconds": ("variant", "le"),
}


def _ordered(sample: Any, order: tuple[str, ...]) -> Any:
    labels = {k: sample.labels[k] for k in order if k in sample.labels}
    labels.update(sample.labels)
    return sample._replace(labels=labels)


class _Merged:
    """The merged families, less the pid-less noise: model_info rows of versions no worker
    serves any more (value 0) are left out; uptime is the server's."""

    def __init__(self, path: str, started: float) -> None:
        self.path, self.started = path, started

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        for family in _collect(self.path):
            if family.name == "workbench_model_info":
                family.samples = [s for s in family.samples if s.value]
            order = LABEL_ORDER.get(family.name)
            if order:  # the merge sorts labels by name: put them as one process shows them
                family.samples = [_ordered(s, order) for s in family.samples]
            yield family
        yield GaugeMetricFamily(
            "workbench_uptime_seconds", "Seconds since the server started.",
            value=time.time() - self.started,
        )  # fmt: skip


class AggregateWindow:
    """The canary rule's sliding window over the merged totals: a sample per poll, and the
    difference between the newest sample and the one from `window_s` ago."""

    def __init__(self, metrics: SharedMetrics, window_s: float) -> None:
        self.metrics, self.window_s = metrics, window_s
        self._samples: deque[tuple[float, Totals]] = deque()
        self._canary_since: float | None = None
        self._canary_version: int | None = None

    def sample(self, totals: Totals | None = None, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._samples.append((now, self.metrics.read()[0] if totals is None else totals))
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window_s:
            self._samples.popleft()

    def canary_started(self, version: int | None) -> None:
        """Judge the canary on its requests from now on (the previous canary's are not its)."""
        self.sample()
        self._canary_since = self._samples[-1][0]
        self._canary_version = version

    def stats(self, variant: str, now: float | None = None) -> WindowStats:
        if not self._samples:
            return WindowStats(0, 0, None)
        now = time.monotonic() if now is None else now
        cutoff = now - self.window_s
        if variant == "canary" and self._canary_since is not None:
            cutoff = max(cutoff, self._canary_since)
        latest = self._samples[-1][1]
        base: Totals = {}
        for at, totals in self._samples:
            if at <= cutoff:
                base = totals
        hist, errors = _delta(latest.get(variant, {}), base.get(variant, {}))
        if variant == "canary" and self._canary_version is not None:
            errors = _delta_errors(latest, base, self._canary_version)
        ok = hist[-1] if hist else 0.0
        return WindowStats(int(ok + errors), int(errors), _p99_ms(hist))


def _delta(
    latest: dict[int, tuple[list[float], float]], base: dict[int, tuple[list[float], float]]
) -> tuple[list[float], float]:
    """Cumulative bucket counts and errors, newest minus base, over every version."""
    edges = len(BUCKETS_S) + 1
    hist, errors = [0.0] * edges, 0.0
    for version, (h, e) in latest.items():
        bh, be = base.get(version, ([0.0] * edges, 0.0))
        hist = [x + a - b for x, a, b in zip(hist, h, bh, strict=True)]
        errors += e - be
    return hist, errors


def _delta_errors(latest: Totals, base: Totals, version: int) -> float:
    now = latest.get("canary", {}).get(version, ([], 0.0))[1]
    then = base.get("canary", {}).get(version, ([], 0.0))[1]
    return now - then


def _p99_ms(cumulative: list[float], q: float = 0.99) -> float | None:
    """The quantile of a cumulative histogram, interpolated inside its bucket (as Prometheus'
    histogram_quantile does); the highest finite edge when it falls in +Inf."""
    total = cumulative[-1] if cumulative else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower_count, lower_edge = 0.0, 0.0
    for edge, count in zip((*BUCKETS_S, float("inf")), cumulative, strict=True):
        if count >= rank:
            if edge == float("inf"):
                return lower_edge * 1000.0
            inside = count - lower_count
            share = (rank - lower_count) / inside if inside else 1.0
            return (lower_edge + (edge - lower_edge) * share) * 1000.0
        lower_count, lower_edge = count, edge
    return lower_edge * 1000.0
