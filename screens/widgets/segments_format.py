"""The Segments screen's texts, from the segment report's dict (`SegmentReport.to_dict()`, the
shape in workbench.monitoring.segments): numbers with their intervals, a trend drawn in block
characters, the fairness measures' names. Pure functions: no widget, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: The block characters a trend is drawn with, lowest first.
BLOCKS = "▁▂▃▄▅▆▇█"
#: The fairness measures, as the panel names them.
MEASURE_LABEL = {
    "demographic_parity_difference": "DP diff",
    "demographic_parity_ratio": "DP ratio",
    "equal_opportunity_difference": "EO diff",
}
#: What the short names stand for (the fairness panel's subtitle).
MEASURE_LEGEND = "DP: dem. parity · EO: equal opportunity"
#: Measures that alert below their threshold (the others alert above it).
LOWER_IS_WORSE = {"demographic_parity_ratio"}


def is_rate_task(report: Mapping[str, Any]) -> bool:
    """Whether `positive_rate` is a rate (classification) rather than a mean prediction."""
    return report.get("task") != "regression"


def rate_label(report: Mapping[str, Any]) -> str:
    return "pos rate" if is_rate_task(report) else "mean pred"


def _short(value: float) -> str:
    """A bound in 3 or 4 characters: .78 for a value in (-1, 1), else 3 significant digits."""
    if abs(value) < 1:
        return f"{value:.2f}".replace("0.", ".", 1)
    return f"{value:.3g}"


def _pct(value: float) -> str:
    return f"{100 * value:.0f}" if abs(value) >= 0.1 else f"{100 * value:.1f}"


def fmt_value(value: float | None, ci: Sequence[float] | None = None, percent: bool = False) -> str:
    """`0.812 [.78,.84]`, `3.0% [2.0,4.0]` (15 characters at most for a value in [0, 1]), `-`
    when unknown; no interval when there is none."""
    if value is None:
        return "-"
    if percent:
        text = f"{100 * value:.1f}%"
        if ci is not None and len(ci) == 2:
            text += f" [{_pct(ci[0])},{_pct(ci[1])}]"
        return text
    text = f"{value:.3f}" if abs(value) < 10 else f"{value:.4g}"
    if ci is not None and len(ci) == 2:
        text += f" [{_short(ci[0])},{_short(ci[1])}]"
    return text


def fmt_count(n: int | None) -> str:
    if n is None:
        return "-"
    if n >= 100_000:
        return f"{n / 1000:.0f}k"
    return f"{n:,}"


def series_values(series: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    """The known values of `key` along a group's series (oldest first; unknown ones skipped)."""
    return [float(p[key]) for p in series if p.get(key) is not None]


def trend_values(group: Mapping[str, Any]) -> tuple[str, list[float]]:
    """What a group's trend draws: the metric over time, else (no labels yet) the positive
    rate; with which one it is."""
    series = group.get("series") or []
    metric = series_values(series, "metric")
    if metric:
        return "metric", metric
    return "positive_rate", series_values(series, "positive_rate")


def resample(values: Sequence[float], width: int) -> list[float]:
    """At most `width` values: the means of consecutive chunks when there are more."""
    if len(values) <= width:
        return list(values)
    out: list[float] = []
    for i in range(width):
        chunk = values[i * len(values) // width : (i + 1) * len(values) // width]
        out.append(sum(chunk) / len(chunk))
    return out


def spark(values: Sequence[float], width: int = 8) -> str:
    """A trend in block characters, at most `width` of them ('' for no values)."""
    points = resample(values, width)
    if not points:
        return ""
    low, high = min(points), max(points)
    if high - low < 1e-12:
        return BLOCKS[len(BLOCKS) // 2 - 1] * len(points)
    top = len(BLOCKS) - 1
    return "".join(BLOCKS[round((v - low) / (high - low) * top)] for v in points)


def group_name(group: Mapping[str, Any]) -> str:
    return f"{group.get('feature', '?')}={group.get('group', '?')}"


def measure_label(measure: str) -> str:
    return MEASURE_LABEL.get(measure, measure.replace("_", " "))


def threshold_text(entry: Mapping[str, Any]) -> str:
    """`≤ 0.10` (the value alerts above it) or `≥ 0.80` (a ratio alerts below it)."""
    threshold = entry.get("threshold")
    if threshold is None:
        return "-"
    sign = "≥" if entry.get("measure") in LOWER_IS_WORSE else "≤"
    return f"{sign} {float(threshold):.2f}"


def summary_text(report: Mapping[str, Any], min_count: int) -> str:
    """`fraud_detection v2 · 24h · auc · 6 groups · 3 suppressed (< 100 rows)`."""
    version = report.get("version")
    parts = [
        f"{report.get('model', '?')} " + (f"v{version}" if version is not None else "(no version)"),
        str(report.get("window") or "-"),
        str(report.get("metric") or "-"),
        f"{len(report.get('groups') or [])} groups",
    ]
    suppressed = int(report.get("suppressed") or 0)
    parts.append(f"{suppressed} suppressed (< {min_count} rows)")
    return " · ".join(parts)


def facts_text(report: Mapping[str, Any]) -> str:
    """`12,345 predictions with segments · built in 0.42 s · <the report's note>` (the parts
    the report has; '' for none)."""
    parts: list[str] = []
    rows = report.get("rows")
    if rows is not None:
        parts.append(f"{int(rows):,} predictions with segments")
    seconds = report.get("seconds")
    if seconds is not None:
        parts.append(f"built in {float(seconds):.2f} s")
    if report.get("note"):
        parts.append(str(report["note"]))
    return " · ".join(parts)


def series_span(series: Sequence[Mapping[str, Any]]) -> str:
    """`12 windows · 01-15 09:00` ('' for none)."""
    if not series:
        return ""
    start = str(series[0].get("start") or "")[5:16].replace("T", " ")
    return f"{len(series)} windows · {start}" if start else f"{len(series)} windows"


#: The placeholder shown when `[monitoring] segments` is not set.
NO_SEGMENTS = """\
No segments are configured: nothing splits the traffic into groups yet.

Add the logged features to watch, group by group, to workbench.toml:

  [monitoring]
  segments = ["merchant_category", "is_foreign"]  # numeric ones: bucketed
  sensitive = ["is_foreign"]  # fairness gaps are measured on these
  min_count = 100             # smaller groups are suppressed

Then open Workbench again (and restart a running server, which logs each
prediction's groups), or run `workbench segments`."""
