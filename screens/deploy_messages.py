"""The Deployments screen's messages, from its workers to the screen (handlers:
`on_deployments_screen_polled`, `on_deployments_screen_changed`, ...)."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class Polled(Message, namespace="deployments_screen"):
    def __init__(self, window_s: float, data: dict[str, Any] | None, error: str = "") -> None:
        super().__init__()
        self.window_s = window_s
        self.data = data
        self.error = error


class Changed(Message, namespace="deployments_screen"):
    """A deployment change finished: ok with a summary, or an error to show."""

    def __init__(
        self,
        action: str,
        ok: bool,
        text: str,
        generation: int | None = None,
        warning: bool = False,
    ) -> None:
        super().__init__()
        self.action = action
        self.ok = ok
        self.text = text
        self.generation = generation
        self.warning = warning


class Applied(Message, namespace="deployments_screen"):
    def __init__(self, generation: int, applied: bool) -> None:
        super().__init__()
        self.generation = generation
        self.applied = applied


class CanaryPlanned(Message, namespace="deployments_screen"):
    def __init__(
        self,
        versions: list[int],
        production: int | None,
        suggested: int | None,
        error: str = "",
    ) -> None:
        super().__init__()
        self.versions = versions
        self.production = production
        self.suggested = suggested
        self.error = error
