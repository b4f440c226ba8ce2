"""TrafficBar: one line split between production and the canary by the canary's share
(colours from deployments.tcss)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.widget import Widget


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
