"""TrafficBar: one line split between production and the canary by the canary's share
(colours from deployments.tcss); TrafficRow: the bar between its two labels."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Label
from workbench_tui.deploy_format import fmt_pct
from workbench_tui.formatting import fmt_version


class TrafficBar(Widget):
    """One line split between production (left) and the canary (right) by the canary's share."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"traffic-bar--production", "traffic-bar--canary"}
    DEFAULT_CSS = "TrafficBar { height: 1; width: 1fr; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.share = 0.0

    def set_share(self, share: float) -> None:
        self.share = max(0.0, min(1.0, share))
        self.refresh()

    def render(self) -> Text:
        width = self.size.width
        canary = round(self.share * width)
        if self.share > 0:
            canary = max(1, canary)
        prod_style = self.get_component_rich_style("traffic-bar--production", partial=True)
        canary_style = self.get_component_rich_style("traffic-bar--canary", partial=True)
        text = Text("█" * (width - canary), style=prod_style, no_wrap=True)
        text.append("█" * canary, style=canary_style)
        return text


class TrafficRow(Horizontal):
    """The traffic split: 'production vN 90%', the bar, '10% canary vM' (or 'no canary')."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.production = Label("", id="traffic-production")
        self.bar = TrafficBar(id="traffic-bar")
        self.canary = Label("", id="traffic-canary")

    def compose(self) -> ComposeResult:
        yield self.production
        yield self.bar
        yield self.canary

    def show(self, production: int | None, canary: dict[str, Any] | None) -> None:
        share = float(canary["traffic"]) if canary else 0.0
        self.bar.set_share(share)
        self.production.update(
            Text(f"production {fmt_version(production)} {fmt_pct(1.0 - share)}", no_wrap=True)
        )
        text = f"{fmt_pct(share)} canary v{canary['version']}" if canary else "no canary"
        self.canary.update(Text(text, no_wrap=True))
