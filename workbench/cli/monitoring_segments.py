"""`workbench segments`: the model per segment group and the fairness gaps; exit 1 on alert."""

from __future__ import annotations

import json
from typing import Any

import click

from workbench.cli.common import Commands, load_project

commands = Commands()


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def _with_ci(value: float | None, ci: list[float] | None) -> str:
    if value is None:
        return "-"
    text = f"{value:.3f}"
    return text + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def table_lines(data: dict[str, Any]) -> list[str]:
    """The report as lines of at most 80 characters: worst groups first."""
    metric = data["metric"]
    rate = "mean pred" if data["task"] == "regression" else "positive rate"
    lines = [f"{'feature':<14} {'group':<14} {'n':>7} {metric + ' [ci]':<21} {rate + ' [ci]'}"]
    for g in data["groups"]:
        lines.append(
            f"{_cut(g['feature'], 14):<14} {_cut(g['group'], 14):<14} "
            f"{_cut(str(g['count']), 7):>7} {_with_ci(g['metric'], g['metric_ci']):<21} "
            f"{_with_ci(g['positive_rate'], g['positive_rate_ci'])}"
        )
    return [line[:80] for line in lines]


@commands.command(
    "segments",
    "the model's metric and positive rate per segment, and fairness gaps; exit 1 on alert",
    json=True,
)
@click.option(
    "--window", help="predictions of the last DURATION, e.g. 30m, 24h, 7d ([monitoring] window)"
)
@click.option("--version", type=int, help="the model version (default: what production serves)")
def segments(window: str | None, version: int | None, as_json: bool) -> int:
    from workbench.errors import UsageError
    from workbench.monitoring import segments as seg

    project = load_project()
    if not project.config.monitoring.segments:
        raise UsageError(
            'no segments: set [monitoring] segments = ["feature", ...] in workbench.toml '
            '(and sensitive = ["feature"] for fairness)'
        )
    if window:
        from workbench.monitoring.checks import parse_window

        parse_window(window)
    data = seg.report(project, window=window, version=version).to_dict()
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return 1 if data["alerts"] else 0
    where = f"v{data['version']}" if data["version"] is not None else "every version"
    click.echo(
        f"{data['model']} {where}: {data['rows']:,} predictions in {data['window']}, "
        f"{len(data['groups'])} group(s), {data['suppressed']} suppressed (small)"
    )
    if data.get("note"):
        click.echo(f"note: {data['note']}")
    for line in table_lines(data):
        click.echo(line)
    for f in data["fairness"]:
        ci = f" [{f['ci'][0]:.3f}, {f['ci'][1]:.3f}]" if f.get("ci") else ""
        mark = "ALERT" if f["alert"] else "ok"
        words = f["measure"].replace("_", " ")
        click.echo(_cut(f"{f['feature']}: {words} {f['value']:.3f}{ci} ({f['source']}) {mark}", 80))
    for alert in data["alerts"]:
        click.echo(_cut(f"alert: {alert}", 80))
    return 1 if data["alerts"] else 0
