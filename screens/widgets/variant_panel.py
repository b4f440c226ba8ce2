"""A variant's panel on the Deployments screen (production or canary): its version and live
stats, a request-rate sparkline and the histogram of its predictions, or a placeholder.
Colours come from deployments.tcss. VariantPanels: production and canary side by side."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.widget import Widget
from textual.widgets import Label, Sparkline, Static
from workbench_tui.deploy_format import (
    NO_CANARY,
    NO_PRODUCTION,
    error_level,
    fmt_edge,
    fmt_ms,
    fmt_pct,
    fmt_rate,
    fmt_since,
    hist_name,
    metric_line,
    metric_line_name,
    pred_line_name,
    prediction_summary,
    signed,
    value_line,
)
from workbench_tui.widgets.themed_text import StatusText

#: Buckets of an empty request-rate series (serving_stats' default).
SERIES_BUCKETS = 30


class Histogram(Widget):
    """Bars from 0 up to the largest count (a Sparkline scales from the smallest, which shows
    an even distribution as nothing at all); each bin spans an equal share of the width."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"histogram--bar"}
    BLOCKS = " ▁▂▃▄▅▆▇█"

    def __init__(self, *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self.counts: list[float] = []

    def set_counts(self, counts: list[float]) -> None:
        self.counts = counts
        self.refresh()

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        top = max(self.counts, default=0.0)
        style = self.get_component_rich_style("histogram--bar", partial=True)
        if not width or not height or top <= 0:
            return Text("")
        bins = len(self.counts)
        eighths = [round(self.counts[x * bins // width] / top * height * 8) for x in range(width)]
        rows = []
        for row in range(height):
            base = (height - 1 - row) * 8
            rows.append("".join(self.BLOCKS[max(0, min(8, e - base))] for e in eighths))
        return Text("\n".join(rows), style=style, no_wrap=True)


class VariantPanel(Vertical):
    """One variant: its version and live stats, or a placeholder; a request-rate sparkline and
    the distribution of its predictions (the same bins for both variants)."""

    def __init__(self, variant: str, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="variant-panel")
        self.variant = variant
        self.border_title = variant

    def compose(self) -> ComposeResult:
        self.stats = StatusText("", classes="variant-stats")
        yield self.stats
        self.placeholder = Static("", classes="variant-placeholder")
        yield self.placeholder
        self.caption = Label("", classes="variant-caption")
        yield self.caption
        self.sparkline = Sparkline([], classes="variant-sparkline")
        yield self.sparkline
        self.hist_caption = Label("", classes="variant-caption")
        yield self.hist_caption
        self.hist = Histogram(classes="variant-hist")
        yield self.hist

    def on_mount(self) -> None:
        self.placeholder.display = False

    def show_placeholder(self, title: str, text: str) -> None:
        self.border_title = escape(title)
        self.border_subtitle = ""
        self.placeholder.update(Text(text))
        self.placeholder.display = True
        for widget in self._stats_widgets:
            widget.display = False

    @property
    def _stats_widgets(self) -> tuple[Widget, ...]:
        return (self.stats, self.caption, self.sparkline, self.hist_caption, self.hist)

    def show_stats(
        self,
        title: str,
        subtitle: str,
        lines: list[tuple[str, Text]],
        series: list[float],
        caption: str,
        hist: list[float],
        hist_caption: str,
    ) -> None:
        self.border_title = escape(title)
        self.border_subtitle = escape(subtitle)
        self.placeholder.display = False
        for widget in self._stats_widgets:
            widget.display = True
        key = self.stats.style_of("key")
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (name, value) in enumerate(lines):
            if i:
                text.append("\n")
            text.append(f"{name:<10}", style=key)
            text.append_text(value)
        self.stats.update(text)
        self.caption.update(Text(caption))
        self.sparkline.data = series
        self.hist_caption.update(Text(hist_caption))
        self.hist.set_counts(hist)

    def show_variant(
        self,
        version: int,
        note: str,
        stats: dict[str, Any] | None,
        delta: dict[str, Any] | None,
        *,
        window: str,
        rule: Any,
        since: str = "",
        task: str | None = None,
        value: dict[str, Any] | None = None,
    ) -> None:
        """This variant's version and live stats (`stats` None: no request in the window);
        `delta` (canary minus production) is coloured by the automatic-rollback `rule`. The
        metric, the prediction line and the histogram follow the model's `task`; `value`
        (`[monitoring.value]`'s unit, None when it is not set) adds the value line."""
        style = self.stats.style_of
        muted = style("muted")
        title = f"{self.variant} · v{version}"
        subtitle = f"since {fmt_since(since)}" if since else ""
        ver = Text(f"v{version}", style="bold")
        ver.append(f" · {note}", style=muted)
        lines: list[tuple[str, Text]] = [("version", ver)]
        if stats is None:  # no request in the window: the same lines, empty
            lines.append(("requests", Text(f"0 · none in the last {window}", style=muted)))
            for name in ("p50/95/99", "errors", pred_line_name(task), metric_line_name(task)):
                lines.append((name, Text("-", style=muted)))
            if value is not None:
                lines.append(("value", value_line(None, "", muted)))
            caption = f"req/s over the last {window} · no requests"
            empty = [0.0] * SERIES_BUCKETS
            hist_caption = f"{hist_name(task)} · none"
            self.show_stats(title, subtitle, lines, empty, caption, [0.0] * 10, hist_caption)
            return
        served = [int(v) for v in stats.get("versions") or []]
        if served and served != [version]:
            ver.append(
                f" · served {', '.join(f'v{v}' for v in served)} in the window", style=style("warn")
            )
        requests = int(stats["requests"])
        lines.append(("requests", Text(f"{requests:,} · {fmt_rate(float(stats['rps']))} req/s")))
        latency = " / ".join(fmt_ms(stats.get(k)) for k in ("p50_ms", "p95_ms", "p99_ms"))
        lines.append(("p50/95/99", Text(f"{latency} ms")))
        rate = float(stats["error_rate"])
        errors = Text(
            f"{rate * 100:.2f}% ({int(stats['errors']):,} of {requests:,})",
            style=style(error_level(rate)),
        )
        if stats.get("client_errors"):
            errors.append(f" · {int(stats['client_errors']):,} 4xx", style=muted)
        lines.append(("errors", errors))
        lines.append((pred_line_name(task), Text(prediction_summary(stats, task))))
        lines.append(metric_line(stats, task, muted))
        if value is not None:
            lines.append(("value", value_line(stats, str(value.get("unit") or ""), muted)))
        if delta is not None:
            lines.extend(self._delta_lines(delta, stats.get("metric_name"), rule))
        series = [float(x) for x in stats.get("rate_series") or []]
        peak = max(series, default=0.0)
        caption = f"req/s over the last {window} · peak {fmt_rate(peak)}"
        hist = [float(n) for n in stats.get("prediction_hist") or []]
        edges = stats.get("hist_edges") or []
        hist_caption = hist_name(task)
        names = [str(n) for n in stats.get("hist_labels") or []]
        if names:
            hist_caption += " " + " · ".join(names)
        elif len(edges) >= 2:
            hist_caption += f" {fmt_edge(edges[0])} … {fmt_edge(edges[-1])}"
        self.show_stats(title, subtitle, lines, series, caption, hist, hist_caption)

    def _delta_lines(
        self, delta: dict[str, Any], metric_name: str | None, rule: Any
    ) -> list[tuple[str, Text]]:
        """Canary minus production, coloured by the automatic-rollback rule's margins."""
        style = self.stats.style_of
        first = Text()
        err = delta.get("error_rate_delta")
        if err is not None:
            level = "bad" if err > rule.max_error_rate_increase else "good"
            first.append(f"err {signed(err * 100, 2)}pt", style=style(level))
        p99 = delta.get("p99_delta_ms")
        if p99 is not None:
            level = "bad" if p99 > rule.max_p99_increase_ms else "good"
            if first:
                first.append(" · ")
            first.append(f"p99 {signed(p99, 1)}ms", style=style(level))
        second = Text()
        metric = delta.get("metric_delta")
        if metric is not None and metric_name:
            second.append(f"{metric_name} {signed(metric, 4)}")
        mean = delta.get("prediction_mean_delta")
        if mean is not None:
            if second:
                second.append(" · ")
            second.append(f"mean {signed(mean, 4)}")
        value = delta.get("value_per_1k_delta")
        if value is not None:
            margin = getattr(rule, "min_value_drop_per_1k", None)
            level = "bad" if margin is not None and -value > margin else "good"
            if second:
                second.append(" · ")
            second.append(f"value {signed(value, 0)}/1k", style=style(level))
        lines = [("vs prod", first)] if first else []
        if second:
            lines.append(("" if lines else "vs prod", second))
        return lines


class VariantPanels(Horizontal):
    """Production and the canary side by side, from `deployments.status`'s answer."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.production = VariantPanel("production", id="production-panel")
        self.canary = VariantPanel("canary", id="canary-panel")

    def compose(self) -> ComposeResult:
        yield self.production
        yield self.canary

    def show(self, data: dict[str, Any], window: str, alias: str, rule: Any) -> None:
        state = data["state"]
        task = (data.get("task") or {}).get("type")
        canary = state.get("canary")
        variants = data.get("variants") or {}
        prod_version = data.get("production_version")
        if prod_version is None:
            self.production.show_placeholder("production", NO_PRODUCTION)
        else:
            pinned = state.get("production") is not None
            self.production.show_variant(
                prod_version,
                "pinned" if pinned else f"{alias} alias",
                variants.get("production"),
                None,
                window=window,
                rule=rule,
                task=task,
                value=data.get("value"),
            )
        if canary is None:
            self.canary.show_placeholder("canary", NO_CANARY)
        else:
            self.canary.show_variant(
                int(canary["version"]),
                f"{fmt_pct(float(canary['traffic']))} of traffic",
                variants.get("canary"),
                data.get("canary_vs_production"),
                window=window,
                rule=rule,
                since=str(canary.get("started_at") or ""),
                task=task,
                value=data.get("value"),
            )
