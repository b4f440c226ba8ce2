"""The Segments screen's panels: the alerts lines, the fairness measures (one line per sensitive
feature and measure: the live value with its interval, the holdout's value, the threshold, and
ALERT) and the selected group's detail (its metric and positive rate over time, as Sparklines).
Colours come from the theme through component classes styled in segments.tcss."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static
from workbench_tui.widgets.segments_format import (
    fmt_count,
    fmt_value,
    group_name,
    is_rate_task,
    measure_label,
    rate_label,
    series_span,
    series_values,
    threshold_text,
)
from workbench_tui.widgets.themed_text import ThemedText

#: Alert lines shown at the top before "+N more".
ALERT_LINES = 2


class SegmentsText(ThemedText):
    PREFIX = "segments-text"
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        f"segments-text--{level}" for level in ("alert", "ok", "muted", "key")
    }


def alerts_text(alerts: Sequence[str], style_of: Any) -> Text:
    """`ALERT <line>` per alert (the first ALERT_LINES, then `+N more`), or `no alerts`."""
    if not alerts:
        return Text("no fairness alerts", style=style_of("ok"))
    text = Text(no_wrap=True, overflow="ellipsis")
    for i, line in enumerate(alerts[:ALERT_LINES]):
        if i:
            text.append("\n")
        text.append("ALERT ", style=style_of("alert"))
        text.append(line)
    if len(alerts) > ALERT_LINES:
        text.append(f"  +{len(alerts) - ALERT_LINES} more", style=style_of("muted"))
    return text


def fairness_rows(
    fairness: Sequence[Mapping[str, Any]],
) -> list[tuple[str, str, Mapping[str, Any] | None, Mapping[str, Any] | None]]:
    """(feature, measure, live entry, holdout entry), in the order the report lists them."""
    order: list[tuple[str, str]] = []
    found: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for entry in fairness:
        key = (str(entry.get("feature", "?")), str(entry.get("measure", "?")))
        if key not in order:
            order.append(key)
        found[(*key, str(entry.get("source", "live")))] = entry
    return [(f, m, found.get((f, m, "live")), found.get((f, m, "holdout"))) for f, m in order]


def fairness_renderable(
    report: Mapping[str, Any], style_of: Any, sensitive: Sequence[str] = (), min_count: int = 0
) -> RenderableType:
    """The fairness measures, a heading per sensitive feature (when there are none, why)."""
    rows = fairness_rows(report.get("fairness") or [])
    if not rows:
        why = (
            f"no fairness measures yet: {', '.join(sensitive)} needs two groups of at least "
            f"{min_count} rows in this window"
            if sensitive
            else "no fairness measures: set [monitoring] sensitive to the segments whose "
            "gaps matter"
        )
        return Text(why, style=style_of("muted"))
    muted, alert, ok = style_of("muted"), style_of("alert"), style_of("ok")
    parts: list[RenderableType] = [_grid([Text(h, style=muted) for h in FAIRNESS_HEADER])]
    tables: dict[str, Table] = {}
    for feature, measure, live, holdout in rows:
        if feature not in tables:
            parts.append(Text(feature, style="bold", no_wrap=True, overflow="ellipsis"))
            tables[feature] = _grid()
            parts.append(tables[feature])
        either = live or holdout or {}
        alerting = any(e is not None and e.get("alert") for e in (live, holdout))
        tables[feature].add_row(
            Text(measure_label(measure)),
            Text(fmt_value(live.get("value"), live.get("ci")) if live else "-"),
            Text(fmt_value(holdout.get("value")) if holdout else "-", style=muted),
            Text(threshold_text(either), style=muted),
            Text("ALERT", style=alert) if alerting else Text("ok", style=ok),
        )
    return Group(*parts)


#: The fairness columns: their headers and widths (45 characters with the gaps).
FAIRNESS_HEADER = ("measure", "live", "holdout", "limit", "")
FAIRNESS_WIDTHS = (8, 15, 7, 6, 5)


def _grid(header: list[Text] | None = None) -> Table:
    table = Table.grid(padding=(0, 1))
    for width in FAIRNESS_WIDTHS:
        table.add_column(width=width, no_wrap=True, overflow="ellipsis")
    if header is not None:
        table.add_row(*header)
    return table


class SegmentDetail(Vertical):
    """The selected group: its numbers, and its metric and positive rate over time."""

    def compose(self) -> ComposeResult:
        self.caption = Static("", id="segments-detail-caption", markup=False)
        yield self.caption
        self.metric_caption = Static("", classes="segments-series-caption", markup=False)
        yield self.metric_caption
        self.metric_spark = Sparkline([], id="segments-metric-spark")
        yield self.metric_spark
        self.rate_caption = Static("", classes="segments-series-caption", markup=False)
        yield self.rate_caption
        self.rate_spark = Sparkline([], id="segments-rate-spark")
        yield self.rate_spark

    def clear(self, why: str) -> None:
        self.border_title = "group"
        self.border_subtitle = ""
        self.caption.update(why)
        for part in (self.metric_caption, self.rate_caption):
            part.update("")
        self.metric_spark.data = []
        self.rate_spark.data = []

    def show(self, report: Mapping[str, Any], group: Mapping[str, Any]) -> None:
        series = group.get("series") or []
        self.border_title = group_name(group)
        labelled = group.get("labelled")
        self.caption.update(
            f"n {fmt_count(group.get('count'))}"
            + (f" · {fmt_count(labelled)} labelled" if labelled is not None else "")
        )
        self.border_subtitle = series_span(series)
        metric = str(report.get("metric") or "metric")
        metric_values = series_values(series, "metric")
        self.metric_caption.update(
            f"{metric} {fmt_value(group.get('metric'), group.get('metric_ci'))}"
            + ("" if metric_values else " · no labelled window yet")
        )
        self.metric_spark.data = metric_values
        percent = is_rate_task(report)
        rate_values = series_values(series, "positive_rate")
        self.rate_caption.update(
            f"{rate_label(report)} "
            f"{fmt_value(group.get('positive_rate'), group.get('positive_rate_ci'), percent)}"
        )
        self.rate_spark.data = rate_values
