"""`workbench skew`: training-serving skew (workbench.monitoring.skew); exit 1 on an alert."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from workbench.cli.common import Commands, load_project

commands = Commands()


@commands.command(
    "skew",
    "served features against the offline ones of the same entity, and the training profile; "
    "exit 1 on skew",
    json=True,
)
@click.option("--data", required=True, metavar="FILE", help="the offline features (Parquet/CSV)")
@click.option("--key", required=True, metavar="COLUMN", help="the entity key both sides carry")
@click.option("--window", help="predictions of the last DURATION (default [monitoring].window)")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=1e-6,
    show_default=True,
    help="numeric values differ past this relative difference",
)
@click.option(
    "--max-mismatch",
    type=click.FloatRange(min=0, max=1),
    default=0.01,
    show_default=True,
    help="a feature alerts when more than this share of joined rows differ",
)
@click.option("--version", type=int, help="the training profile's version (default: production)")
def skew(
    data: str,
    key: str,
    window: str | None,
    tolerance: float,
    max_mismatch: float,
    version: int | None,
    as_json: bool,
) -> int:
    from workbench.monitoring import skew as core
    from workbench.monitoring.checks import parse_window

    project = load_project()
    if window:
        parse_window(window)  # a bad window is one line, before any work
    bar = None
    progress = None
    if not as_json and sys.stderr.isatty():  # a long join says where it is
        from rich.progress import Progress

        bar = Progress(transient=True)
        task = bar.add_task("joining", total=1.0)
        bar.start()

        def progress(what: str, done: float) -> None:
            bar.update(task, description=what, completed=done)

    try:
        report = core.feature_skew(
            project, data, key, window=window, tolerance=tolerance, max_mismatch=max_mismatch,
            version=version, on_progress=progress,
        )  # fmt: skip
    finally:
        if bar is not None:
            bar.stop()
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    else:
        for line in lines(report):
            print(line)
    return 1 if report["alerts"] else 0


def _cut(text: Any, width: int) -> str:
    s = str(text)
    return s if len(s) <= width else s[: width - 1] + "~"


def lines(report: dict[str, Any]) -> list[str]:
    """The report as text, no line over 80 columns."""
    asof = f" (ASOF on {report['asof']})" if report["asof"] else ""
    out = [
        _cut(f"{report['model']}: skew on {report['key']}, last {report['window']}", 80),
        _cut(
            f"{report['served']:,} served, {report['offline']:,} offline, "
            f"{report['joined']:,} joined{asof}",
            80,
        ),
        f"{'feature':<22} {'kind':<4} {'joined':>7} {'differ':>7} {'share':>6}  example",
    ]
    for f in report["features"]:
        example = ""
        if f["examples"]:
            e = f["examples"][0]
            example = f"{_cut(e['key'], 10)}: {_cut(e['served'], 7)}/{_cut(e['offline'], 7)}"
        mark = "!" if f["alert"] else " "
        out.append(
            f"{_cut(f['feature'], 22):<22} {f['kind'][:3]:<4} {f['joined']:>7,} "
            f"{f['mismatches']:>7,} {f['share']:>6.1%}{mark} {example}"
        )
    if report["not_in_data"]:
        out.append(_cut(f"not in the file: {', '.join(report['not_in_data'])}", 80))
    dist = report["distribution"]
    if dist and dist.get("error"):
        out.append(_cut(f"distribution skew: not available ({dist['error']})", 80))
    elif dist:
        out.append(f"distribution skew against v{dist['version']}'s training profile:")
        out.append(f"{'feature':<22} {'measure':<7} {'value':>8} {'threshold':>9}  status")
        for d in dist["features"]:
            value = "-" if d["value"] is None else f"{d['value']:.4f}"
            status = "no data" if d["value"] is None else ("ALERT" if d["alert"] else "ok")
            out.append(
                f"{_cut(d['feature'], 22):<22} {d['measure']:<7} {value:>8} "
                f"{d['threshold']:>9g}  {status}"
            )
    out += [_cut(f"alert: {a}", 80) for a in report["alerts"]]
    return out
