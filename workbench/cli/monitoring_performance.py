"""`workbench performance`: the model's metric estimated before the labels arrive (CBPE)
beside the realized metric of the labelled rows, per time slice of the window."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from workbench.cli.common import Commands, console, load_project

commands = Commands()


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _get(metrics: dict[str, Any] | None, name: str) -> Any:
    return None if metrics is None else metrics.get(name)


@commands.command(
    "performance",
    "the model's metric estimated from its probabilities (CBPE) beside the realized one",
    json=True,
)
@click.option("--window", help="predictions of the last DURATION, e.g. 24h, 7d "
              "(default [monitoring].window)")  # fmt: skip
@click.option("--version", type=int, help="the model version (default: what production serves)")
def performance(window: str | None, version: int | None, as_json: bool) -> int:
    from workbench.monitoring import estimate
    from workbench.monitoring.checks import parse_window

    project = load_project()
    if window:
        parse_window(window)  # a bad window is one line, before any work
    report = estimate.performance(project, window=window, version=version)
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print(report)
    return 0


def _print(report: dict[str, Any]) -> None:
    from workbench.cli.tables import Col, show

    out = console()
    count, labelled = report["count"], report["labelled"]
    share = f" ({labelled / count:.0%})" if count else ""
    out.print(
        f"[b]{report['model']}[/b] v{report['version']} ({report['task']}): {count:,} "
        f"predictions in {report['window']}, {labelled:,} labelled{share}"
    )
    if not report["estimable"]:
        out.print(f"not estimated: {report['why_not']}", markup=False)
        realized = report.get("realized") or {}
        shown = [f"{k} {v:.4g}" for k, v in realized.items() if isinstance(v, float)]
        if shown:
            out.print("realized on the labelled rows: " + ", ".join(shown), markup=False)
        predictions = report.get("predictions")
        if predictions:
            out.print(
                f"predictions: mean {predictions['mean']:.4g}, std {predictions['std']:.4g}",
                markup=False,
            )
        return
    calibration = report["calibration"] or {}
    out.print(
        f"est = CBPE estimate ({calibration.get('kind')} calibration on "
        f"{calibration.get('n', 0):,} holdout rows), not labels",
        markup=False,
    )
    heads = ("rows", "labelled", "est auc", "auc", "est acc", "acc")
    cols = [Col("from"), *[Col(h, right=True) for h in heads]]
    rows: list[list[str] | None] = [
        [datetime.fromisoformat(p["start"]).strftime("%m-%d %H:%M"), *_cells(p)]
        for p in report["series"]
        if p["count"]
    ]
    rows += [None, ["overall", *_cells(report)]]
    show(cols, rows, out=out)
    _print_verdict(out, report)


def _cells(point: dict[str, Any]) -> list[str]:
    est, real = point["estimated"], point["realized"]
    return [
        f"{point['count']:,}",
        f"{point['labelled']:,}",
        _cell(_get(est, "auc")),
        _cell(_get(real, "auc")),
        _cell(_get(est, "accuracy")),
        _cell(_get(real, "accuracy")),
    ]


def _print_verdict(out: Any, report: dict[str, Any]) -> None:
    name = report["metric"]
    estimated = _get(report["estimated"], name)
    reference = report["reference"].get(name)
    line = f"estimated {name} {_cell(estimated)} (an estimate, not labels)"
    if reference is not None:
        line += f", holdout {reference:.3f}"
    if report.get("drop") is not None:
        line += f": {'down' if report['drop'] > 0 else 'up'} {abs(report['drop']):.3f}"
    out.print(line, markup=False)
    realized = _get(report["realized"], name)
    if realized is not None:
        out.print(f"realized {name} {realized:.3f} on {report['labelled']:,} labelled rows")
