"""CLI commands for monitoring: drift (exit 1 on an alert, for CI gates) and monitor."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int]

STATUS_STYLE = {"alert": "bold red", "warn": "yellow", "ok": "green", "no_data": "dim"}


def _project(args: argparse.Namespace) -> Any:
    from workbench.project import Project

    return Project.load(getattr(args, "project", None))


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def cmd_drift(args: argparse.Namespace) -> int:
    from workbench.monitoring import checks as drift_checks

    project = _project(args)
    if args.window:
        drift_checks.parse_window(args.window)  # a bad window is one line, before any work
    progress = None
    if not args.json and args.data and sys.stderr.isatty():
        from rich.progress import Progress

        bar = Progress(transient=True)
        task = bar.add_task("reading", total=None)
        bar.start()
        progress = lambda done, total: bar.update(task, completed=done, total=total)  # noqa: E731
    try:
        result = drift_checks.check(
            project, version=args.version, window=args.window, last_n=args.last, data=args.data,
            on_progress=progress,
        )  # fmt: skip
    finally:
        if progress is not None:
            bar.stop()
    report = result.report
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return 1 if report.alerts else 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[b]{result.model}[/b] v{result.version}: {result.source} ({result.window}), "
        f"{report.n_rows:,} rows in {report.seconds:.2f} s; "
        f"[{STATUS_STYLE.get(report.status, '')}]{report.status}[/]: "
        f"{report.alerts} alert(s), {report.warnings} warning(s)"
    )
    floor = project.config.drift.min_rows
    if report.n_rows < floor:
        console.print(f"too few rows to judge ({report.n_rows:,} < \\[drift].min_rows {floor:,})")
    table = Table()
    for col in ("feature", "status", "test", "score", "psi", "js", "other", "missing"):
        table.add_column(col, justify="left" if col in ("feature", "status", "test") else "right")
    rows = list(report.features)
    if report.prediction is not None:
        rows.append(report.prediction)
    for fd in rows:
        stats = fd.stats
        other = (
            f"ks {_num(stats.get('ks'), 3)} w {_num(stats.get('wasserstein'), 3)}"
            if fd.kind == "numeric" or fd is report.prediction
            else f"chi2 p {_num(stats.get('chi2_p'), 3)}"
        )
        unseen = f" +{len(fd.unseen)} unseen" if fd.unseen else ""
        name = "(prediction)" if fd is report.prediction else fd.feature
        table.add_row(
            name + unseen,
            f"[{STATUS_STYLE.get(fd.status, '')}]{fd.status}[/]",
            fd.test,
            _num(fd.score),
            _num(stats.get("psi")),
            _num(stats.get("js")),
            other,
            f"{fd.missing + fd.nonfinite:,}",
        )
    console.print(table)
    metric = result.metric
    if "current" in metric:
        console.print(
            f"{metric['name']}: {metric['current']:.4f} on {metric['labeled']:,} labelled "
            f"predictions (holdout {_num(metric.get('reference'))}, "
            f"drop {_num(metric.get('drop'), 3)})"
        )
        points = [p["auc"] for p in metric.get("series", []) if p["auc"] is not None]
        if len(points) > 1:
            line = " ".join(f"{v:.3f}" for v in points)
            console.print(f"{metric['name']} over the window, oldest first: {line}")
    elif metric:
        console.print(f"{metric.get('labeled', 0):,} labelled predictions: no model metric yet")
    return 1 if report.alerts else 0


def cmd_monitor(args: argparse.Namespace) -> int:
    from workbench.monitoring import monitor

    project = _project(args)

    def show(outcome: monitor.MonitorOutcome) -> None:
        if args.json:
            print(json.dumps(outcome.to_dict(), default=str), flush=True)
            return
        what = "retrained" if outcome.acted else ("would retrain" if outcome.fired else "ok")
        extra = f"; candidate v{outcome.candidate}" if outcome.candidate else ""
        extra += " started as a canary" if outcome.canary else ""
        extra += f"; error: {outcome.error}" if outcome.error else ""
        print(f"{outcome.at} {what}: {outcome.reason}{extra}", flush=True)

    if args.once:
        outcome = monitor.check_once(project, dry_run=args.dry_run)
        show(outcome)
        return 1 if outcome.error else 0
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(
        f"monitoring {project.config.model_name} every "
        f"{args.interval or project.config.monitor.interval_s:g} s "
        "(Ctrl-C stops)",
        file=sys.stderr,
    )
    monitor.run_forever(project, args.interval, show, stop.is_set)
    return 0


def register(
    sub: Any,
    add: Callable[..., argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    jsonp: argparse.ArgumentParser,
    parser_class: type[argparse.ArgumentParser],
) -> None:
    sp = add(
        "drift",
        cmd_drift,
        "drift of recent predictions (or a file) against the model's reference; exit 1 on alert",
        jsonp,
    )
    sp.add_argument(
        "--version", type=int, help="the model version (default: what production serves)"
    )
    sp.add_argument(
        "--window",
        help="predictions of the last DURATION, e.g. 30m, 24h, 7d (default [drift].window)",
    )
    sp.add_argument("--last", type=int, metavar="N", help="the last N predictions instead")
    sp.add_argument(
        "--data", metavar="FILE", help="check a Parquet/CSV file instead of predictions"
    )

    sp = add(
        "monitor",
        cmd_monitor,
        "check drift on a schedule and retrain when [monitor] says so",
        jsonp,
    )
    sp.add_argument("--once", action="store_true", help="one round, then exit")
    sp.add_argument("--dry-run", action="store_true", help="with --once: judge, never retrain")
    sp.add_argument(
        "--interval", type=float, help="seconds between rounds (default [monitor].interval_s)"
    )
