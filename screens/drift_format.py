"""Formatting for the Drift screen: scores, shares and statuses, and the texts of the selected
feature's detail line and of the prediction drift and performance panels."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text

if TYPE_CHECKING:
    from workbench.drift.evaluate import FeatureDrift

STATUS_LABEL = {"alert": "alert", "warn": "warn", "ok": "ok", "no_data": "n/a"}
TEST_LABEL = {"wasserstein": "wass"}

Style = Callable[[str], Any]


def fmt_num(value: float | None, digits: int = 3) -> str:
    """A score or statistic in a few significant digits; '-' when unknown."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def fmt_pct_share(share: float) -> str:
    """A proportion (0..1) in at most 4 characters: '12%', '<1%', '0%'."""
    if share <= 0:
        return "0%"
    if share < 0.005:
        return "<1%"
    return f"{share * 100:.0f}%"


def status_level(status: str) -> str:
    return {"alert": "alert", "warn": "warn", "ok": "ok"}.get(status, "muted")


def unseen_text(unseen: dict[str, int], style: Style) -> Text:
    """The categories the reference did not list, with their counts."""
    total = sum(unseen.values())
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f"unseen {total:,}: ", style=style("warn"))
    line.append(", ".join(f"{k} {v:,}" for k, v in unseen.items()))
    return line


def detail_text(fd: FeatureDrift, style: Style) -> Text:
    """Two lines under a feature's histograms: its deciding test and the others, means, rows."""
    detail = Text(no_wrap=True, overflow="ellipsis")
    key = style("key")
    detail.append(f"{fd.test} ", style=key)
    level = status_level(fd.status)
    detail.append(fmt_num(fd.score), style=style(level))
    detail.append(f" {STATUS_LABEL.get(fd.status, fd.status)}", style=style(level))
    stats = fd.stats
    shown = [
        k
        for k in ("psi", "js", "ks", "wasserstein", "chi2_p")
        if k != fd.test and stats.get(k) is not None
    ]
    for name in shown:
        detail.append(f" · {name} ", style=key)
        detail.append(fmt_num(stats.get(name)))
    detail.append("\n")
    if fd.ref_mean is not None and fd.cur_mean is not None:
        detail.append("mean ", style=key)
        detail.append(f"{fmt_num(fd.ref_mean, 4)} → {fmt_num(fd.cur_mean, 4)} · ")
    detail.append("rows ", style=key)
    detail.append(f"{fd.n_ref:,} ref / {fd.n_cur:,} now")
    if fd.missing or fd.nonfinite:
        detail.append(" · missing ", style=key)
        detail.append(f"{fd.missing + fd.nonfinite:,}")
    return detail


def prediction_text(pred: FeatureDrift | None, style: Style) -> Text:
    """The prediction drift panel: status, test and score, the mean before and now."""
    if pred is None:
        return Text("no predictions in the window", style=style("muted"))
    level = status_level(pred.status)
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(STATUS_LABEL.get(pred.status, pred.status), style=style(level))
    text.append(f" · {pred.test} ", style=style("key"))
    text.append(fmt_num(pred.score), style=style(level))
    text.append(f" · n {pred.n_cur:,}", style=style("key"))
    text.append("\nmean ", style=style("key"))
    text.append(f"{fmt_num(pred.ref_mean, 4)} ref → {fmt_num(pred.cur_mean, 4)} now")
    return text


def performance_text(metric: dict[str, Any], metric_drop: float, style: Style) -> Text:
    """The performance panel: the metric on labeled rows now against the holdout's, its drop
    coloured against the monitor's `metric_drop`."""
    name = str(metric.get("name") or "metric")
    labeled = int(metric.get("labeled") or 0)
    reference = metric.get("reference")
    text = Text(no_wrap=True, overflow="ellipsis")
    if not metric or labeled == 0:
        text.append("no labels yet", style=style("muted"))
        text.append(f"\n{name} holdout ", style=style("key"))
        text.append(fmt_num(reference, 4))
        return text
    current = metric.get("current")
    if current is None:
        text.append(f"{labeled:,} labeled, one class only: no {name} yet", style=style("muted"))
    else:
        drop = metric.get("drop")
        limit = metric_drop
        level = "ok" if drop is None or drop < limit / 2 else "warn" if drop < limit else "alert"
        text.append(f"{name} ", style=style("key"))
        text.append(f"{current:.4f}", style=style(level))
        text.append(" now · ", style=style("key"))
        text.append(f"{labeled:,} labeled")
        if drop is not None:
            text.append(" · drop ", style=style("key"))
            text.append(f"{drop:+.4f}", style=style(level))
    text.append("\nholdout ", style=style("key"))
    text.append(fmt_num(reference, 4))
    return text
