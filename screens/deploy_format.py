"""Formatting for the Deployments screen: shares, latencies, rates, times, error levels, the
per-task lines of a variant (its predictions, its live metric, its histogram's name), and its
two status lines (the server, and the deployment's generation, sticky key and last change)
as Rich texts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.text import Text

from workbench.serving.stats_summary import LIVE_METRICS, live_metrics, top_class
from workbench.tasks import fmt_metric
from workbench.value import fmt

#: The canary's share in percent stays within [MIN_PCT, MAX_PCT].
MIN_PCT = 1
MAX_PCT = 100
#: Error rates at or above these are shown as a warning, and as bad.
ERROR_WARN = 0.01
ERROR_BAD = 0.05
NO_SERVER = "no server running — start one: press s, or workbench serve --detach"
NO_CANARY = "no canary — deploy one: workbench deploy VERSION --canary --traffic 10 (or press c)"
NO_PRODUCTION = "no production version — promote one on the models screen (3), or train one (t)"


def clamp_pct(value: float) -> int:
    return int(max(MIN_PCT, min(MAX_PCT, round(value))))


def fmt_pct(share: float) -> str:
    """A share (0..1) as a percentage: 0.1 -> '10%', 0.125 -> '12.5%'."""
    return f"{share * 100:.1f}".removesuffix(".0") + "%"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def fmt_rate(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def fmt_since(iso: str) -> str:
    """An ISO timestamp as 'YYYY-MM-DD HH:MM UTC' (as it is when it cannot be parsed)."""
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return when.strftime("%Y-%m-%d %H:%M UTC")


def fmt_edge(value: float) -> str:
    return f"{value:.4g}"


def error_level(rate: float) -> str:
    if rate >= ERROR_BAD:
        return "bad"
    if rate >= ERROR_WARN:
        return "warn"
    return "good"


def signed(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}"


def pred_line_name(task: str | None) -> str:
    """The prediction line's name: the most frequent class for multiclass, else the mean."""
    return "top class" if task == "multiclass" else "mean pred"


def metric_line_name(task: str | None) -> str:
    """The live metric's name for a task (binary auc, multiclass accuracy, regression rmse)."""
    names = LIVE_METRICS.get(task or "")
    return names[0] if names else "metric"


def hist_name(task: str | None) -> str:
    return {"multiclass": "classes", "regression": "values"}.get(task or "", "predictions")


def prediction_summary(stats: dict[str, Any], task: str | None) -> str:
    """The mean prediction, or (multiclass) the most frequent class and its share."""
    if task == "multiclass":
        found = top_class(stats)
        return "-" if found is None else f"{found[0]} · {found[1]:.0%}"
    mean = stats.get("prediction_mean")
    return "-" if mean is None else f"{mean:.4f}"


def metric_line(stats: dict[str, Any], task: str | None, muted: Any) -> tuple[str, Text]:
    """(name, value) of the live metric line: `rmse  52.1 · mae 40.3 (80 labeled)`, or the
    task's metric name with 'no labels yet'."""
    metrics = live_metrics(stats)
    name = next(iter(metrics), None) or metric_line_name(task)
    value = metrics.get(name)
    if value is None:
        return name, Text("no labels yet", style=muted)
    labeled = int(stats.get("labeled") or 0)
    rest = "".join(f" · {k} {fmt_metric(v)}" for k, v in metrics.items() if k != name)
    return name, Text(f"{fmt_metric(value)}{rest} ({labeled:,} labeled)")


def value_line(stats: dict[str, Any] | None, unit: str, muted: Any) -> Text:
    """The `[monitoring.value]` line: `+9,500 EUR (80 labeled)` per 1,000 predictions, or
    'no labels yet'."""
    found = (stats or {}).get("value_per_1k")
    if found is None:
        return Text("no labels yet" if stats else "-", style=muted)
    labeled = int((stats or {}).get("labeled") or 0)
    return Text(f"{fmt(found, unit)} per 1k ({labeled:,} labeled)")


def server_text(server: dict[str, Any] | None, style: Callable[[str], Any]) -> Text:
    """The server line: where it serves and its process, or that none runs."""
    line = Text(no_wrap=True, overflow="ellipsis")
    if server is None:
        line.append("○ ", style=style("warn"))
        line.append(NO_SERVER, style=style("warn"))
    else:
        line.append("● ", style=style("good"))
        line.append(f"serving {server.get('url') or '?'}")
        details = []
        if server.get("pid"):
            details.append(f"pid {server['pid']}")
        if server.get("job_id"):
            details.append(f"job {server['job_id']}")
        if details:
            line.append(" · " + " · ".join(details), style=style("muted"))
        if server.get("last_error"):
            line.append(f" · last error: {server['last_error']}", style=style("bad"))
    return line


def state_text(
    state: dict[str, Any],
    server: dict[str, Any] | None,
    canary: dict[str, Any] | None,
    window_label: str,
    style: Callable[[str], Any],
) -> Text:
    """The state line: desired and applied generation, sticky key, window, last change."""
    desired = int(state.get("generation") or 0)
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append("generation ", style=style("key"))
    line.append(f"desired {desired}")
    if server is None:
        line.append(" · applied -", style=style("muted"))
    else:
        applied = int(server.get("applied_generation", -1))
        if applied >= desired:
            line.append(f" · applied {applied} ✓", style=style("good"))
        else:
            line.append(f" · applied {applied} (applying…)", style=style("warn"))
    sticky = canary.get("sticky_key") if canary else None
    line.append(" · sticky key ", style=style("key"))
    line.append(str(sticky) if sticky else "none", style="" if sticky else style("muted"))
    line.append(" · window ", style=style("key"))
    line.append(window_label)
    history = state.get("history") or []
    if history:
        last = history[-1]
        line.append(
            f" · last change: {last.get('action', '?')} by {last.get('by', '?')}",
            style=style("muted"),
        )
        if last.get("reason"):
            line.append(f" — {last['reason']}", style=style("muted"))
    return line
