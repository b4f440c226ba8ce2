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
#: Names of the pooled bins of categories the reference did not list.
UNSEEN_NAMES = {"__unseen__": "unseen", "__other__": "other", "__rest__": "rest"}
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


def class_shares(pred: FeatureDrift, limit: int = 6) -> str:
    """Predicted class frequencies, reference → now, the most frequent first (at most
    `limit`; the rest counted)."""
    items = list(zip(pred.hist_labels, pred.ref_hist, pred.cur_hist, strict=False))
    items.sort(key=lambda item: -max(item[1], item[2]))
    shown = [
        f"{UNSEEN_NAMES.get(label, label)} {fmt_pct_share(r)}→{fmt_pct_share(c)}"
        for label, r, c in items[:limit]
    ]
    more = f" · +{len(items) - limit} more" if len(items) > limit else ""
    return " · ".join(shown) + more


def prediction_text(pred: FeatureDrift | None, style: Style, task: str = "binary") -> Text:
    """The prediction drift panel: status, test and score; then the mean probability
    (binary) or value (regression) before and now, or the predicted class frequencies
    (multiclass, by class name)."""
    if pred is None:
        return Text("no predictions in the window", style=style("muted"))
    level = status_level(pred.status)
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(STATUS_LABEL.get(pred.status, pred.status), style=style(level))
    text.append(f" · {pred.test} ", style=style("key"))
    text.append(fmt_num(pred.score), style=style(level))
    text.append(f" · n {pred.n_cur:,}", style=style("key"))
    if pred.kind == "categorical":
        text.append("\nclasses ", style=style("key"))
        text.append(class_shares(pred))
        return text
    what = "probability" if task == "binary" else "value"
    text.append(f"\nmean {what} ", style=style("key"))
    text.append(f"{fmt_num(pred.ref_mean, 4)} ref → {fmt_num(pred.cur_mean, 4)} now")
    return text


def performance_text(metric: dict[str, Any], metric_drop: float, style: Style) -> Text:
    """The performance panel: the task's metric on labeled rows now against the holdout's,
    how much worse it is (a fall of AUC, a rise of RMSE) coloured against the allowed
    worsening (the check's `limit`, else the monitor's `metric_drop`), and a note when the
    configured metric cannot be computed live."""
    name = str(metric.get("name") or "metric")
    labeled = int(metric.get("labeled") or 0)
    reference = metric.get("reference")
    higher = bool(metric.get("higher_is_better", True))
    text = Text(no_wrap=True, overflow="ellipsis")
    if not metric or labeled == 0:
        text.append("no labels yet", style=style("muted"))
        text.append(f"\n{name} holdout ", style=style("key"))
        text.append(fmt_num(reference, 4))
        _append_note(text, metric, style)
        return text
    current = metric.get("current")
    if current is None:
        text.append(f"{labeled:,} labeled: no {name} yet", style=style("muted"))
    else:
        drop = metric.get("drop")
        limit = float(metric.get("limit") or metric_drop)
        level = "ok" if drop is None or drop < limit / 2 else "warn" if drop < limit else "alert"
        text.append(f"{name} ", style=style("key"))
        text.append(f"{fmt_num(current, 4)}", style=style(level))
        text.append(" now · ", style=style("key"))
        text.append(f"{labeled:,} labeled")
        if drop is not None:
            text.append(" · worse by " if drop >= 0 else " · better by ", style=style("key"))
            text.append(fmt_num(abs(drop), 3), style=style(level))
            text.append(f" (max {fmt_num(limit, 3)})", style=style("muted"))
    text.append("\nholdout ", style=style("key"))
    text.append(fmt_num(reference, 4))
    text.append(" · higher is better" if higher else " · lower is better", style=style("muted"))
    _append_note(text, metric, style)
    return text


def _append_note(text: Text, metric: dict[str, Any], style: Style) -> None:
    configured = metric.get("configured")
    if configured and configured != metric.get("name"):
        text.append(f" · {configured} not computable live", style=style("warn"))
