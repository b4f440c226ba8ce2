"""SegmentTable: the segment report's groups, one row each in the report's order (worst
first): feature, group, count, the metric and the positive rate with their intervals, and the
trend in block characters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from rich.text import Text
from textual.widgets import DataTable
from workbench_tui.widgets.segments_format import (
    fmt_count,
    fmt_value,
    group_name,
    is_rate_task,
    rate_label,
    spark,
    trend_values,
)

#: Column widths at 80 columns (feature and group names longer than theirs end in "…"; a
#: wider table gives them more).
WIDTHS = {"feature": 12, "group": 10, "n": 6, "metric": 15, "rate": 15, "trend": 8}


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class SegmentTable(DataTable[Any]):
    """The groups, keyed by `feature=group`; missing values dimmed from the theme."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"segment-table--muted", "segment-table--trend"}

    def style_of(self, level: str) -> Any:
        return self.get_component_rich_style(f"segment-table--{level}", partial=True)

    def widths(self, report: Mapping[str, Any] | None) -> dict[str, int]:
        """WIDTHS, the feature and group columns wider (up to their longest names) when the
        table has the room."""
        widths = dict(WIDTHS)
        groups = (report or {}).get("groups") or []
        room = self.size.width - sum(WIDTHS.values()) - 2 * len(WIDTHS) - 2  # (scrollbar)
        for key in ("feature", "group"):
            longest = max((len(str(g.get(key, ""))) for g in groups), default=0)
            grow = max(0, min(longest - widths[key], room))
            widths[key] += grow
            room -= grow
        return widths

    def set_columns(self, report: Mapping[str, Any] | None) -> dict[str, int]:
        self.clear(columns=True)
        metric = str(report.get("metric") or "metric") if report else "metric"
        rate = rate_label(report) if report else "pos rate"
        widths = self.widths(report)
        for key, label in (
            ("feature", "feature"),
            ("group", "group"),
            ("n", "n"),
            ("metric", metric),
            ("rate", rate),
            ("trend", "trend"),
        ):
            self.add_column(label, key=key, width=widths[key])
        return widths

    def fill(self, report: Mapping[str, Any]) -> list[str]:
        """One row per group, in the report's order; returns the row keys."""
        widths = self.set_columns(report)
        muted, trend_style = self.style_of("muted"), self.style_of("trend")
        percent = is_rate_task(report)
        keys: list[str] = []
        for group in report.get("groups") or []:
            key = group_name(group)
            if key in keys:  # (a report never repeats a group; a table cannot)
                continue
            metric = fmt_value(group.get("metric"), group.get("metric_ci"))
            rate = fmt_value(group.get("positive_rate"), group.get("positive_rate_ci"), percent)
            _, values = trend_values(group)
            self.add_row(
                Text(_clip(str(group.get("feature", "?")), widths["feature"])),
                Text(_clip(str(group.get("group", "?")), widths["group"]), style="bold"),
                Text(fmt_count(group.get("count")), justify="right"),
                Text(metric, style=muted if metric == "-" else ""),
                Text(rate, style=muted if rate == "-" else ""),
                Text(spark(values, WIDTHS["trend"]), style=trend_style),
                key=key,
            )
            keys.append(key)
        return keys
