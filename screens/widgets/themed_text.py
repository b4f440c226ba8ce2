"""Statics whose texts take their colours from the theme, through component classes
(styled in the screen's .tcss): `StatusText` (Deployments: good, warn, bad, muted, key) and
`DriftText` (Drift: alert, warn, ok, muted, key)."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.widgets import Static


class ThemedText(Static):
    PREFIX: ClassVar[str] = ""

    def style_of(self, level: str) -> Any:
        return self.get_component_rich_style(f"{self.PREFIX}--{level}", partial=True)


class StatusText(ThemedText):
    PREFIX = "status-text"
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        f"status-text--{level}" for level in ("good", "warn", "bad", "muted", "key")
    }


class DriftText(ThemedText):
    PREFIX = "drift-text"
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        f"drift-text--{level}" for level in ("alert", "warn", "ok", "muted", "key")
    }
