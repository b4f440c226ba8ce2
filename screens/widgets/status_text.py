"""StatusText: a Static whose texts take their colours from the theme (good, warn, bad, muted,
key), through component classes styled in deployments.tcss."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.widgets import Static


class StatusText(Static):
    """A Static whose texts take their colours from the theme, through component classes."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "status-text--good",
        "status-text--warn",
        "status-text--bad",
        "status-text--muted",
        "status-text--key",
    }

    def style_of(self, level: str) -> Any:
        return self.get_component_rich_style(f"status-text--{level}", partial=True)
