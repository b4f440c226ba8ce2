"""RunsTable: a virtual table over a polars DataFrame, on Textual's Line API.

Only the lines on screen are rendered: `render_line(y)` formats row `scroll_y + y - 1`
(line 0 is the header, which stays put), fetching rows from the frame a window at a time.
10,000 runs cost what 20 do. The screen owns sorting and filtering and hands the result down
with `show()`; the table reports the cursor and the marks with messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from workbench_tui.formatting import ellipsize, fmt_value

if TYPE_CHECKING:
    import polars as pl

#: Rows fetched from the frame per cache miss.
_WINDOW = 64
#: Rows kept formatted before the cache is dropped.
_CACHE_MAX = 4096


@dataclass(frozen=True)
class Column:
    key: str  # the DataFrame column
    label: str
    width: int
    numeric: bool = False


def _cell(value: Any, column: Column) -> str:
    if column.key == "run_id" and isinstance(value, str):
        text = value[: column.width]
    elif column.key == "start_time" and hasattr(value, "strftime"):
        text = value.strftime("%m-%d %H:%M")
    else:
        text = fmt_value(value)
    text = ellipsize(text, column.width)
    return text.rjust(column.width) if column.numeric else text.ljust(column.width)


class RunsTable(ScrollView, can_focus=True):
    """Rows of runs with a cursor and marks. Give it data with `show()`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False, id="runs.up", tooltip="Previous run"),
        Binding("down", "cursor_down", "Down", show=False, id="runs.down", tooltip="Next run"),
        Binding(
            "pageup",
            "cursor_page_up",
            "Page up",
            show=False,
            id="runs.page_up",
            tooltip="A page up",
        ),
        Binding(
            "pagedown",
            "cursor_page_down",
            "Page down",
            show=False,
            id="runs.page_down",
            tooltip="A page down",
        ),
        Binding("home", "cursor_first", "First", show=False, id="runs.first", tooltip="First run"),
        Binding("end", "cursor_last", "Last", show=False, id="runs.last", tooltip="Last run"),
        Binding(
            "left", "scroll_left", "Left", show=False, id="runs.left", tooltip="Scroll columns left"
        ),
        Binding(
            "right",
            "scroll_right",
            "Right",
            show=False,
            id="runs.right",
            tooltip="Scroll columns right",
        ),
        Binding(
            "space",
            "toggle_mark",
            "Mark",
            id="runs.mark",
            tooltip="Mark or unmark the run under the cursor for comparison",
        ),
        Binding(
            "L",
            "lineage",
            "Lineage",
            show=False,  # the footer has no room left at 80 columns; ? lists it
            id="runs.lineage",
            tooltip="Show the run's lineage: its data and job, the versions it became",
        ),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "runs-table--header",
        "runs-table--sorted",
        "runs-table--cursor",
        "runs-table--cursor-blurred",
        "runs-table--mark",
        "runs-table--finished",
        "runs-table--running",
        "runs-table--failed",
        "runs-table--empty",
    }

    DEFAULT_CSS = """
    RunsTable {
        background: $surface;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 1;
        & > .runs-table--header { text-style: bold; color: $text-accent; background: $panel; }
        & > .runs-table--sorted { text-style: bold underline; color: $accent; background: $panel; }
        & > .runs-table--cursor { background: $block-cursor-background;
                                  color: $block-cursor-foreground; text-style: bold; }
        & > .runs-table--cursor-blurred { background: $block-cursor-blurred-background; }
        & > .runs-table--mark { color: $warning; text-style: bold; }
        & > .runs-table--finished { color: $success; }
        & > .runs-table--running { color: $warning; }
        & > .runs-table--failed { color: $error; }
        & > .runs-table--empty { color: $text-muted; text-style: italic; }
    }
    """

    class CursorMoved(Message):
        """The cursor is on another run (row is None when the table is empty)."""

        def __init__(self, table: RunsTable, index: int, row: dict[str, Any] | None) -> None:
            super().__init__()
            self.table = table
            self.index = index
            self.row = row

        @property
        def control(self) -> RunsTable:
            return self.table

    class MarksChanged(Message):
        def __init__(self, table: RunsTable, marked: list[str]) -> None:
            super().__init__()
            self.table = table
            self.marked = marked

        @property
        def control(self) -> RunsTable:
            return self.table

    def __init__(
        self,
        *,
        empty_text: str = "no runs",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.frame: pl.DataFrame | None = None
        self.columns: list[Column] = []
        self.sort_key: str | None = None
        self.descending = True
        self.cursor = 0
        self.marked: dict[str, None] = {}
        self.baseline: str | None = None  # the pinned run, marked ◆
        self.empty_text = empty_text
        self._keys: list[str] = []
        self._rows: dict[int, tuple[Any, ...]] = {}

    # --- data in -------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return 0 if self.frame is None else self.frame.height

    def show(
        self,
        frame: pl.DataFrame,
        columns: list[Column],
        *,
        sort_key: str | None = None,
        descending: bool = True,
        cursor: int = 0,
    ) -> None:
        """Display `frame` (already sorted and filtered) with `columns`."""
        self.frame = frame
        self.columns = [c for c in columns if c.key in frame.columns]
        self.sort_key = sort_key
        self.descending = descending
        self._keys = list(dict.fromkeys(["run_id", *(c.key for c in self.columns)]))
        self._rows.clear()
        self.virtual_size = Size(self._line_width, frame.height + 1)
        self.cursor = max(0, min(cursor, frame.height - 1))
        self.refresh()
        self.call_after_refresh(self._scroll_to_cursor)
        self._post_cursor()

    def row(self, index: int | None = None) -> dict[str, Any] | None:
        """Every column of the run at `index` (default: the cursor)."""
        index = self.cursor if index is None else index
        if self.frame is None or not 0 <= index < self.frame.height:
            return None
        return self.frame.row(index, named=True)

    @property
    def rows_cached(self) -> int:
        """Rows fetched from the frame for rendering so far (a window at a time)."""
        return len(self._rows)

    @property
    def cursor_run_id(self) -> str | None:
        values = self._row_values(self.cursor)
        return None if values is None else values[0]

    def clear_marks(self) -> None:
        self.marked.clear()
        self.refresh()
        self.post_message(self.MarksChanged(self, []))

    # --- geometry ------------------------------------------------------------------------
    @property
    def _line_width(self) -> int:
        return 2 + sum(c.width + 1 for c in self.columns)

    @property
    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_to_cursor(self) -> None:
        top = round(self.scroll_y)
        page = self._page
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + page:
            self.scroll_to(y=self.cursor - page + 1, animate=False, immediate=True)

    def _move(self, index: int) -> None:
        if not self.row_count:
            return
        index = max(0, min(index, self.row_count - 1))
        if index == self.cursor:
            return
        self.cursor = index
        self._scroll_to_cursor()
        self.refresh()
        self._post_cursor()

    def _post_cursor(self) -> None:
        self.post_message(self.CursorMoved(self, self.cursor, self.row()))

    # --- actions -------------------------------------------------------------------------
    def action_cursor_up(self) -> None:
        self._move(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self._move(self.cursor + 1)

    def action_cursor_page_up(self) -> None:
        self._move(self.cursor - self._page)

    def action_cursor_page_down(self) -> None:
        self._move(self.cursor + self._page)

    def action_cursor_first(self) -> None:
        self._move(0)

    def action_cursor_last(self) -> None:
        self._move(self.row_count - 1)

    def action_toggle_mark(self) -> None:
        run_id = self.cursor_run_id
        if run_id is None:
            return
        if run_id in self.marked:
            del self.marked[run_id]
        else:
            self.marked[run_id] = None
        self.refresh()
        self.post_message(self.MarksChanged(self, list(self.marked)))

    def action_lineage(self) -> None:
        from workbench_tui.lineage import open_lineage

        run_id = self.cursor_run_id
        if run_id is None:
            self.notify("no run selected", severity="warning")
            return
        open_lineage(self, run_id)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:
            return
        self.focus()
        self._move(round(self.scroll_y) + offset.y - 1)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # --- rendering -----------------------------------------------------------------------
    def _row_values(self, index: int) -> tuple[Any, ...] | None:
        if self.frame is None or not 0 <= index < self.frame.height:
            return None
        if index not in self._rows:
            if len(self._rows) > _CACHE_MAX:
                self._rows.clear()
            start = index - index % _WINDOW
            window = self.frame.slice(start, _WINDOW).select(self._keys).rows()
            for offset, values in enumerate(window):
                self._rows[start + offset] = values
        return self._rows[index]

    def _header_strip(self) -> Strip:
        header = self.get_component_rich_style("runs-table--header")
        sorted_style = self.get_component_rich_style("runs-table--sorted")
        segments = [Segment("  ", header)]
        for col in self.columns:
            label = col.label
            style = header
            if col.key == self.sort_key:
                label = f"{label}{'▼' if self.descending else '▲'}"
                style = sorted_style
            text = ellipsize(label, col.width)
            text = text.rjust(col.width) if col.numeric else text.ljust(col.width)
            segments += [Segment(text, style), Segment(" ", header)]
        return Strip(segments)

    def _row_strip(self, index: int, base: Style) -> Strip:
        values = self._row_values(index)
        if values is None:
            return Strip.blank(self._line_width, base)
        by_key = dict(zip(self._keys, values, strict=True))
        run_id = values[0]
        if index == self.cursor:
            component = "runs-table--cursor" if self.has_focus else "runs-table--cursor-blurred"
            row_style = base + self.get_component_rich_style(component)
        else:
            row_style = base
        mark = "◆ " if run_id == self.baseline else "● " if run_id in self.marked else "  "
        mark_style = row_style + self.get_component_rich_style("runs-table--mark")
        segments = [Segment(mark, mark_style)]
        for col in self.columns:
            value = by_key.get(col.key)
            style = row_style
            if col.key == "status" and index != self.cursor:
                status = str(value or "").upper()
                if status == "FINISHED":
                    style = base + self.get_component_rich_style("runs-table--finished")
                elif status in ("RUNNING", "SCHEDULED"):
                    style = base + self.get_component_rich_style("runs-table--running")
                elif status in ("FAILED", "KILLED"):
                    style = base + self.get_component_rich_style("runs-table--failed")
            segments += [Segment(_cell(value, col), style), Segment(" ", row_style)]
        return Strip(segments)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            strip = self._header_strip()
        elif not self.row_count:
            if y != 2:
                return Strip.blank(width, base)
            empty = self.get_component_rich_style("runs-table--empty")
            return Strip([Segment(f"  {self.empty_text}", empty)]).crop_extend(0, width, base)
        else:
            strip = self._row_strip(scroll_y + y - 1, base)
        return strip.crop_extend(scroll_x, scroll_x + width, base)
