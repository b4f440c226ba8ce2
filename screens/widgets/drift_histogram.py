"""DriftHistogram: a feature's reference and current distributions as horizontal bars side by
side (colours from drift.tcss), and `histogram_rows`, which fits the bins to the rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget
from workbench_tui.drift_format import UNSEEN_NAMES, fmt_pct_share

#: Bin labels of the categories the reference did not list, pooled tails, and the rest.
UNSEEN_LABELS = UNSEEN_NAMES


def histogram_rows(
    labels: Sequence[str],
    ref: Sequence[float],
    cur: Sequence[float],
    categorical: bool,
    rows: int,
) -> list[tuple[str, float, float]]:
    """(label, reference share, current share) per drawn row, at most `rows` of them.

    Numeric bins next to each other are merged (labelled by the lower edge of the first);
    categories keep the largest (on either side) and pool the rest in one row, and a bin of
    unseen categories with current rows always stays."""
    n = min(len(labels), len(ref), len(cur))
    items = [(str(labels[i]), float(ref[i]), float(cur[i])) for i in range(n)]
    rows = max(1, rows)
    if n <= rows:
        return items
    if not categorical:
        group = math.ceil(n / rows)
        merged = []
        for start in range(0, n, group):
            part = items[start : start + group]
            merged.append((part[0][0], sum(p[1] for p in part), sum(p[2] for p in part)))
        return merged
    keep = rows - 1
    forced = {i for i, (label, _, c) in enumerate(items) if label in UNSEEN_LABELS and c > 0}
    ranked = sorted(
        (i for i in range(n) if i not in forced), key=lambda i: -max(items[i][1], items[i][2])
    )
    chosen = sorted(forced | set(ranked[: max(0, keep - len(forced))]))
    rest = [items[i] for i in range(n) if i not in chosen]
    out = [items[i] for i in chosen]
    if rest:
        out.append((f"+{len(rest)} more", sum(r[1] for r in rest), sum(r[2] for r in rest)))
    return out


class DriftHistogram(Widget):
    """The reference and current distributions of one feature, as horizontal bars side by
    side: one row per bin (numeric bins merged, or the largest categories, to fit), both
    scaled to the same largest share so they compare; unseen categories in their own
    colour."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "drift-hist--reference",
        "drift-hist--current",
        "drift-hist--label",
        "drift-hist--unseen",
        "drift-hist--legend",
    }
    BLOCKS = " ▏▎▍▌▋▊▉█"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.labels: list[str] = []
        self.ref: list[float] = []
        self.cur: list[float] = []
        self.categorical = False
        #: Lines the widgets below it need (set by the screen).
        self.reserve = 5
        #: The rows drawn at the last render (label, reference, current), for tests.
        self.drawn: list[tuple[str, float, float]] = []

    def set_data(
        self, labels: Sequence[str], ref: Sequence[float], cur: Sequence[float], categorical: bool
    ) -> None:
        self.labels, self.ref, self.cur = list(labels), list(ref), list(cur)
        self.categorical = categorical
        self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """As tall as its bins and the legend, within what its parent has left after
        `reserve` lines for the widgets below it (bins are merged to fit)."""
        room = max(2, container.height - self.reserve)
        rows = len(histogram_rows(self.labels, self.ref, self.cur, self.categorical, room - 1))
        return max(3, min(rows + 1, room))

    def clear(self) -> None:
        self.set_data([], [], [], False)

    def _bar(self, share: float, top: float, width: int) -> str:
        if width <= 0 or top <= 0 or share <= 0:
            return ""
        eighths = max(1, round(share / top * width * 8))
        full, part = divmod(min(eighths, width * 8), 8)
        return "█" * full + (self.BLOCKS[part] if part else "")

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        self.drawn = []
        if not width or height < 2 or not self.labels:
            return Text("")
        rows = histogram_rows(self.labels, self.ref, self.cur, self.categorical, height - 1)
        self.drawn = rows
        style = self.get_component_rich_style
        ref_style = style("drift-hist--reference", partial=True)
        cur_style = style("drift-hist--current", partial=True)
        label_style = style("drift-hist--label", partial=True)
        unseen_style = style("drift-hist--unseen", partial=True)
        legend_style = style("drift-hist--legend", partial=True)
        names = [UNSEEN_LABELS.get(label, label) for label, _, _ in rows]
        label_w = max(3, min(max(len(n) for n in names), max(6, width // 4)))
        bar_w = max(1, (width - label_w - 2) // 2)
        pct = bar_w >= 12  # room for the share after the bar
        bar_len = bar_w - 5 if pct else bar_w
        top = max((max(r, c) for _, r, c in rows), default=0.0)
        text = Text(no_wrap=True, overflow="crop")
        text.append(" " * (label_w + 1))
        text.append("reference"[:bar_w].ljust(bar_w), style=ref_style + legend_style)
        text.append(" ")
        text.append("current"[:bar_w], style=cur_style + legend_style)
        for (label, r, c), name in zip(rows, names, strict=True):
            text.append("\n")
            shown = name if len(name) <= label_w else name[: label_w - 1] + "…"
            unseen = label in UNSEEN_LABELS and label != "__rest__"
            text.append(shown.rjust(label_w), style=unseen_style if unseen else label_style)
            text.append(" ")
            for share, bar_style, last in ((r, ref_style, False), (c, cur_style, True)):
                bar = self._bar(share, top, bar_len)
                cell = bar + (" " + fmt_pct_share(share) if pct else "")
                text.append(bar, style=unseen_style if unseen and last and share else bar_style)
                text.append(cell[len(bar) :], style=label_style)
                if not last:
                    text.append(" " * max(0, bar_w - len(cell)) + " ")
        return text
