"""FeatureDetail: the Drift screen's right-hand panel for one feature: its reference and
current histograms, unseen categories, its score over time (a sparkline over the drift log's
history, plus the check shown when it is not in the log yet) and the test details; or a
placeholder line when no feature is selected."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.markup import escape
from textual.widget import Widget
from textual.widgets import Label, Sparkline, Static
from workbench_tui.drift_format import detail_text, fmt_num, unseen_text
from workbench_tui.widgets.drift_histogram import DriftHistogram
from workbench_tui.widgets.themed_text import DriftText

if TYPE_CHECKING:
    from workbench.drift.evaluate import FeatureDrift


class FeatureDetail(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.placeholder = Static("", id="drift-placeholder")
        self.hist = DriftHistogram(id="drift-hist")
        self.unseen_line = DriftText("", id="drift-unseen")
        self.history_caption = Label("", id="drift-history-caption")
        self.sparkline = Sparkline([], id="drift-sparkline")
        self.detail_line = DriftText("", id="drift-detail")

    def compose(self) -> ComposeResult:
        yield self.placeholder
        yield self.hist
        yield self.unseen_line
        yield self.history_caption
        yield self.sparkline
        yield self.detail_line

    @property
    def _detail_widgets(self) -> tuple[Widget, ...]:
        return (self.hist, self.unseen_line, self.history_caption, self.sparkline, self.detail_line)

    def show_placeholder(self, text: str, clear: bool = False) -> None:
        if clear:
            self.hist.clear()
        self.placeholder.update(Text(text))
        self.placeholder.display = True
        for widget in self._detail_widgets:
            widget.display = False
        self.border_title = "feature"

    def show_feature(
        self,
        fd: FeatureDrift,
        history: list[tuple[datetime, float | None, str]],
        recorded: bool,
    ) -> list[float]:
        """Show `fd`; returns its scores over time as drawn (oldest first). `recorded`: the
        check shown is in `history` already."""
        self.placeholder.display = False
        for widget in self._detail_widgets:
            widget.display = True
        self.border_title = escape(f"{fd.feature} · {fd.kind}")
        self.border_subtitle = escape(f"{fd.test} {fmt_num(fd.score)}")
        self.hist.set_data(fd.hist_labels, fd.ref_hist, fd.cur_hist, fd.kind == "categorical")
        if fd.unseen:
            self.unseen_line.update(unseen_text(fd.unseen, self.unseen_line.style_of))
            self.unseen_line.display = True
        else:
            self.unseen_line.display = False
        # caption 1, sparkline 2 at least, detail 2, and the unseen line when shown
        self.hist.reserve = 5 + (1 if fd.unseen else 0)
        series = [float(s) for _, s, _ in history if s is not None and math.isfinite(s)]
        if not recorded and math.isfinite(fd.score):
            series.append(float(fd.score))  # this check, not in the log
        checks = len(series)
        caption = f"{fd.test} over time · {checks} check{'s' if checks != 1 else ''}"
        if fd.test in ("ks", "chi2"):
            caption += f" · p-value; alert below {fmt_num(fd.alert)}"
        else:
            caption += f" · alert at {fmt_num(fd.alert)}"
        self.history_caption.update(Text(caption))
        self.sparkline.data = series if len(series) >= 2 else []  # one point draws a wall
        self.detail_line.update(detail_text(fd, self.detail_line.style_of))
        return series
