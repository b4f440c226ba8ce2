"""LogView: a Log that keeps every line it was given (up to `max_lines`), shows those that
match a search (case-insensitive substring, matches highlighted), and can follow the end."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import ClassVar

from rich.highlighter import Highlighter
from rich.text import Text
from textual.widgets import Log


class _MatchHighlighter(Highlighter):
    def __init__(self, view: LogView) -> None:
        self.view = view

    def highlight(self, text: Text) -> None:
        if self.view.search:
            style = self.view.get_component_rich_style("log-view--match", partial=True)
            text.highlight_words([self.view.search], style, case_sensitive=False)


class LogView(Log):
    """A log with a search filter and a follow mode.

    `add_lines` appends (only the matching lines are shown); `set_search` re-filters
    everything kept; `follow` scrolls to the end as lines arrive. `total` and `shown` count
    the lines kept and the lines shown."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"log-view--match"}
    DEFAULT_CSS = """
    LogView {
        background: $surface;
        scrollbar-size-vertical: 1;
    }
    LogView > .log-view--match {
        background: $warning 40%;
        text-style: bold;
    }
    """

    def __init__(
        self,
        max_lines: int = 5000,
        *,
        follow: bool = True,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(highlight=True, max_lines=None, auto_scroll=False, id=id, classes=classes)
        self.highlighter = _MatchHighlighter(self)
        self.kept: deque[str] = deque(maxlen=max_lines)
        self.search = ""
        self.follow = follow
        self.shown = 0

    @property
    def total(self) -> int:
        return len(self.kept)

    def matches(self, line: str) -> bool:
        return not self.search or self.search.lower() in line.lower()

    def reset(self) -> None:
        """Forget every line (another job was selected); the search stays."""
        self.kept.clear()
        self.shown = 0
        self.clear()

    def add_lines(self, lines: Iterable[str]) -> None:
        new = list(lines)
        if not new:
            return
        overflow = len(self.kept) + len(new) > (self.kept.maxlen or 0)
        self.kept.extend(new)
        if overflow:  # old lines fell off the front: show what is kept, afresh
            self._show_all()
            return
        shown = [line for line in new if self.matches(line)]
        self.shown += len(shown)
        if shown:
            self.write_lines(shown, scroll_end=False)
            self._follow()

    def set_search(self, text: str) -> None:
        if text != self.search:
            self.search = text
            self._show_all()

    def set_follow(self, follow: bool) -> None:
        self.follow = follow
        self._follow()

    def _show_all(self) -> None:
        shown = [line for line in self.kept if self.matches(line)]
        self.clear()
        self.shown = len(shown)
        self.write_lines(shown, scroll_end=False)
        self.refresh()
        self._follow()

    def _follow(self) -> None:
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
