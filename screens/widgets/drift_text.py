"""DriftText: a Static whose texts take their colours from the theme (alert, warn, ok, muted,
key), through component classes styled in drift.tcss."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.widgets import Static


class DriftText(Static):
    """A Static whose texts take their colours from the theme, through component classes."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "drift-text--alert",
        "drift-text--warn",
        "drift-text--ok",
        "drift-text--muted",
        "drift-text--key",
    }

    def style_of(self, level: str) -> Any:
        return self.get_component_rich_style(f"drift-text--{level}", partial=True)
