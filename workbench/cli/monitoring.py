"""Monitoring: `drift` (exit 1 on an alert, for CI gates) and `monitor`."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

import click

from workbench import readonly
from workbench.cli.common import Commands, load_project

commands = Commands()

STATUS_STYLE = {"alert": "bold red", "warn": "yellow", "ok": "green", "no_data": "dim"}


def _num(value: Any, digits: int = 4) -> str:
    from workbench.cli.tables import num

    return num(value, digits)


@commands.command(
    "drift",
    "drift of recent predictions (or a file) against the model's reference; exit 1 on alert",
    json=True,
)
@click.option("--version", type=int, help="the model version (default: what production serves)")
@click.option(
    "--window", help="predictions of the last DURATION, e.g. 30m, 24h, 7d (default [drift].window)"
)
@click.option("--last", type=int, metavar="N", help="the last N predictions instead")
@click.option("--data", metavar="FILE", help="check a Parquet/CSV file instead of predictions")
def drift(
    version: int | None, window: str | None, last: int | None, data: str | None, as_json: bool
) -> int:
    from workbench.monitoring import checks as drift_checks

    project = load_project()
    if window:
        drift_checks.parse_window(window)  # a bad window is one line, before any work
    progress = None
    if not as_json and data and sys.stderr.isatty():
        from rich.progress import Progress

        bar = Progress(transient=True)
        task = bar.add_task("reading", total=None)
        bar.start()
        progress = lambda done, total: bar.update(task, completed=done, total=total)  # noqa: E731
    try:
        result = drift_checks.check(
            project, version=version, window=window, last_n=last, data=data,
            on_progress=progress, record=not readonly.enabled(),  # read-only: not recorded
        )  # fmt: skip
    finally:
        if progress is not None:
            bar.stop()
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        _print_drift(project, result)
    return 1 if result.report.alerts else 0


def _print_drift(project: Any, result: Any) -> None:
    from rich.console import Console
    from rich.text import Text

    from workbench.cli.tables import Col, show

    report = result.report
    console = Console()
    if result.note:
        console.print(result.note)
    console.print(
        f"[b]{result.model}[/b] v{result.version}: {result.source} ({result.window}), "
        f"{report.n_rows:,} rows in {report.seconds:.2f} s; "
        f"[{STATUS_STYLE.get(report.status, '')}]{report.status}[/]: "
        f"{report.alerts} alert(s), {report.warnings} warning(s)"
    )
    floor = project.config.drift.min_rows
    if report.n_rows < floor:
        console.print(f"too few rows to judge ({report.n_rows:,} < \\[drift].min_rows {floor:,})")
    cols = [
        Col("feature", cut=16),
        Col("status"),
        Col("test"),
        Col("score", right=True),
        Col("psi", right=True),
        Col("js", right=True, optional=True),
        Col("other", optional=True),
        Col("missing", right=True),
    ]
    rows = list(report.features)
    if report.prediction is not None:
        rows.append(report.prediction)
    cells = []
    for fd in rows:
        stats = fd.stats
        other = (
            f"ks {_num(stats.get('ks'), 3)} w {_num(stats.get('wasserstein'), 3)}"
            if fd.kind == "numeric"
            else f"chi2 p {_num(stats.get('chi2_p'), 3)}"
        )
        unseen = f" +{len(fd.unseen)} unseen" if fd.unseen else ""
        name = "(prediction)" if fd is report.prediction else fd.feature
        cells.append(
            [
                name + unseen,
                Text(fd.status, style=STATUS_STYLE.get(fd.status, "")),
                fd.test,
                _num(fd.score),
                _num(stats.get("psi")),
                _num(stats.get("js")),
                other,
                f"{fd.missing + fd.nonfinite:,}",
            ]
        )
    show(cols, cells, out=console)
    if report.prediction is not None:
        console.print(prediction_line(result.task.type, report.prediction), markup=False)
    _print_metric(console, result.metric)


def prediction_line(task: str, pred: Any) -> str:
    """Prediction drift in words: class frequencies (multiclass), or the mean prediction."""
    if pred.kind == "categorical":
        shares = " · ".join(
            f"{label} {r:.0%} -> {c:.0%}"
            for label, r, c in zip(pred.hist_labels, pred.ref_hist, pred.cur_hist, strict=False)
        )
        return f"predicted classes (reference -> now): {shares}"
    what = "probability" if task == "binary" else "value"
    return f"mean predicted {what}: {_num(pred.ref_mean)} (reference) -> {_num(pred.cur_mean)}"


def _print_metric(console: Any, metric: dict[str, Any]) -> None:
    if not metric:
        return
    name = metric.get("name", "metric")
    if metric.get("note"):
        console.print(f"note: {metric['note']}", markup=False)
    if "current" not in metric:
        console.print(f"{metric.get('labeled', 0):,} labelled predictions: no {name} yet")
        return
    better = "higher" if metric.get("higher_is_better", True) else "lower"
    line = (
        f"{name} ({better} is better): {metric['current']:.4f} on {metric['labeled']:,} "
        f"labelled predictions (holdout {_num(metric.get('reference'))}"
    )
    if metric.get("drop") is not None:
        state = "DECAYED" if metric.get("decayed") else "within"
        line += (
            f", worse by {_num(metric['drop'], 3)}; {state} the allowed worsening "
            f"{_num(metric.get('limit'), 3)}, {metric.get('limit_basis', 'metric_drop')}"
        )
    console.print(line + ")", markup=False)
    points = [p["value"] for p in metric.get("series", []) if p.get("value") is not None]
    if len(points) > 1:
        console.print(
            f"{name} over the window, oldest first: " + " ".join(f"{v:.4g}" for v in points)
        )


@commands.command(
    "monitor", "check drift on a schedule and retrain when [monitor] says so", json=True
)
@click.option("--once", is_flag=True, help="one round, then exit")
@click.option("--dry-run", is_flag=True, help="with --once: judge, never retrain")
@click.option(
    "--interval", type=float, help="seconds between rounds (default [monitor].interval_s)"
)
def monitor(once: bool, dry_run: bool, interval: float | None, as_json: bool) -> int:
    from workbench.monitoring import monitor as policy

    project = load_project()

    def show(outcome: policy.MonitorOutcome) -> None:
        if as_json:
            print(json.dumps(outcome.to_dict(), default=str), flush=True)
            return
        what = "retrained" if outcome.acted else ("would retrain" if outcome.fired else "ok")
        extra = f"; candidate v{outcome.candidate}" if outcome.candidate else ""
        extra += " started as a canary" if outcome.canary else ""
        extra += f"; error: {outcome.error}" if outcome.error else ""
        print(f"{outcome.at} {what}: {outcome.reason}{extra}", flush=True)

    if once:
        outcome = policy.check_once(project, dry_run=dry_run)
        show(outcome)
        return 1 if outcome.error else 0
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(
        f"monitoring {project.config.model_name} every "
        f"{interval or project.config.monitor.interval_s:g} s "
        "(Ctrl-C stops)",
        file=sys.stderr,
    )
    policy.run_forever(project, interval, show, stop.is_set)
    return 0
