"""CLI tables that fit the terminal (80 columns and up), legibly.

Every command's table goes through `show()`: columns separated by two spaces, no rules
between them, each as wide as its widest cell, headers and numbers never cut. When the
table is wider than the terminal, in this order: the columns marked `optional` are left out
(said under the table; `--json` has everything), free-text columns (`cut`) are cut with an
ellipsis down to their `cut` width, and when it still does not fit, each row is printed as
`header  value` lines (a vertical layout), with nothing cut.

rich lays the table out once the widths are chosen here: its own shrinking cuts whichever
column it likes, numbers and headers included ("0.00086…", "versi…").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

GAP = 2  # spaces between two columns


@dataclass(frozen=True)
class Col:
    """A column: `right`-justified (numbers), `optional` (left out first when narrow), or
    free text that may be cut with an ellipsis to no fewer than `cut` characters."""

    header: str
    right: bool = False
    optional: bool = False
    cut: int = 0


def num(value: Any, digits: int = 4) -> str:
    """A number in a few characters: `digits` significant digits (0.0008612 -> 0.0008612,
    0.91234 -> 0.9123), whole numbers of 10,000 and up with separators; `-` for nothing."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _text(cell: Any) -> Text:
    from rich.text import Text

    return cell if isinstance(cell, Text) else Text(str(cell))


def _widths(cols: Sequence[Col], rows: Sequence[Sequence[Text] | None]) -> list[int]:
    out = [_head(c) for c in cols]
    for row in rows:
        for i, cell in enumerate(row or ()):
            out[i] = max(out[i], *(len(line) for line in cell.plain.split("\n")))
    return out


def _head(col: Col) -> int:
    return max(len(line) for line in col.header.split("\n"))


def _total(widths: Sequence[int], gap: int = GAP) -> int:
    return sum(widths) + gap * max(0, len(widths) - 1)


def natural_width(cols: Sequence[Col], rows: Sequence[Sequence[Any] | None]) -> int:
    """How wide the table is with every column whole."""
    return _total(_widths(cols, [None if r is None else [_text(c) for c in r] for r in rows]))


def layout(
    cols: Sequence[Col], rows: Sequence[Sequence[Text] | None], width: int, gap: int = GAP
) -> tuple[list[int], list[int]] | None:
    """(the columns shown, their widths) of a table that fits `width`: free text cut first
    (down to its `cut` width), then optional columns left out, last first; None: it does not
    fit, go vertical."""
    natural = _widths(cols, rows)
    shown = list(range(len(cols)))
    while True:
        widths = {j: natural[j] for j in shown}
        excess = _total(list(widths.values()), gap) - width
        for j in sorted((j for j in shown if cols[j].cut), key=lambda j: -natural[j]):
            floor = max(cols[j].cut, _head(cols[j]))
            take = min(max(0, excess), max(0, widths[j] - floor))
            widths[j] -= take
            excess -= take
        if excess <= 0:
            return shown, [widths[j] for j in shown]
        optional = [j for j in shown if cols[j].optional]
        if not optional:
            return None
        shown.remove(optional[-1])


def show(
    cols: Sequence[Col],
    rows: Sequence[Sequence[Any] | None],
    *,
    title: str | None = None,
    out: Console | None = None,
    styles: Sequence[str | None] | None = None,
    gap: int = GAP,
) -> None:
    """Print the table on `out` (the command's console) to fit its width. A row of None is a
    rule between sections; `styles`: one rich style per row (or None); `gap`: spaces between
    columns (1 for a table of many short numbers)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from workbench.cli.common import console

    out = out or console()
    cells = [None if r is None else [_text(c) for c in r] for r in rows]
    fit = layout(cols, cells, out.width, gap)
    if fit is None:
        _vertical(out, cols, cells, title, styles)
        return
    shown, widths = fit
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, gap - 1, 0, 0),  # SIMPLE_HEAD's divider is one space: `gap` in all
        header_style="bold",
        title_justify="left",
        collapse_padding=False,
    )
    for j, w in zip(shown, widths, strict=True):
        col = cols[j]
        table.add_column(
            Text(col.header),
            justify="right" if col.right else "left",
            width=w,
            no_wrap=True,
            overflow="ellipsis",
        )
    for k, row in enumerate(cells):
        if row is None:
            table.add_section()
            continue
        style = styles[k] if styles else None
        table.add_row(*(row[j] for j in shown), style=style)
    out.print(table)
    hidden = [cols[j].header for j in range(len(cols)) if j not in shown]
    if hidden:
        out.print(
            f"(hidden at {out.width} columns: {', '.join(hidden)}; --json has them)",
            markup=False,
            highlight=False,
        )


def _vertical(
    out: Console,
    cols: Sequence[Col],
    rows: Sequence[Sequence[Text] | None],
    title: str | None,
    styles: Sequence[str | None] | None,
) -> None:
    """Each row as `header  value` lines, a blank line between rows; long values wrap."""
    from rich.table import Table
    from rich.text import Text

    if title:
        out.print(title, markup=False, highlight=False)
    key = max(len(c.header.split("\n")[0]) for c in cols)
    first = True
    for k, row in enumerate(rows):
        if row is None:
            continue
        if not first:
            out.print()
        first = False
        grid = Table.grid(padding=(0, GAP, 0, 0))
        grid.add_column(style="bold", width=key, no_wrap=True)
        grid.add_column(overflow="fold")
        for col, cell in zip(cols, row, strict=True):
            head = Text(col.header.split("\n")[0])
            grid.add_row(head, cell, style=styles[k] if styles else None)
        out.print(grid)
