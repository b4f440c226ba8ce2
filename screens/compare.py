"""Compare: marked runs side by side, every field or only the ones that differ (`d`). A pinned
baseline run comes first (◆), and each other run's value that differs from it is bold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label
from workbench_tui.formatting import ellipsize, fmt_value, short_id

if TYPE_CHECKING:
    import polars as pl


class CompareScreen(Screen[None]):
    CSS_PATH = "compare.tcss"
    AUTO_FOCUS = "DataTable"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "d",
            "toggle_diff",
            "Only differs",
            id="compare.only_diff",
            tooltip="Show only the fields whose values differ between the runs",
        ),
        Binding("escape", "close", "Back", id="compare.close", tooltip="Back to the runs"),
    ]

    def __init__(
        self, frame: pl.DataFrame, run_ids: list[str], baseline: str | None = None
    ) -> None:
        super().__init__()
        self.frame = frame
        self.baseline = baseline if baseline in run_ids else None
        # the baseline first
        self.run_ids = sorted(run_ids, key=lambda r: r != self.baseline)
        self.only_diff = False
        self.rows: list[dict[str, Any]] = []
        names = dict(
            zip(
                frame.get_column("run_id").to_list(),
                frame.get_column("run_name").to_list(),
                strict=True,
            )
        )
        self.names = {r: names.get(r) or short_id(r) for r in run_ids}

    def compose(self) -> ComposeResult:
        yield Header()
        self.caption = Label("", id="compare-caption")
        yield self.caption
        self.grid: DataTable[Any] = DataTable(
            cursor_type="row", zebra_stripes=True, id="compare-table"
        )
        yield self.grid
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "Workbench"
        self.sub_title = f"Compare {len(self.run_ids)} runs"
        field_width = 26
        room = self.app.size.width - (field_width + 2) - 2
        width = max(12, room // max(1, len(self.run_ids)) - 2)
        self.grid.add_column("field", width=field_width, key="field")
        for run_id in self.run_ids:
            mark = "◆ " if run_id == self.baseline else ""
            label = ellipsize(f"{mark}{self.names[run_id]}", width)
            self.grid.add_column(label, width=width, key=run_id)
        self._fill()

    def _fill(self) -> None:
        from workbench.store.runs_index import compare_runs

        self.rows = compare_runs(self.frame, self.run_ids, only_diff=self.only_diff)
        self.grid.clear()
        for row in self.rows:
            style = "bold" if row["differs"] else "dim"
            mark = "≠ " if row["differs"] else "  "
            cells = [Text(ellipsize(mark + str(row["field"]), 26), style=style)]
            cells += [
                Text(fmt_value(row[r]), style=self._style(row, r, style)) for r in self.run_ids
            ]
            self.grid.add_row(*cells, key=str(row["field"]))
        differing = sum(1 for r in self.rows if r["differs"])
        what = "only what differs" if self.only_diff else "all fields"
        against = f" · ◆ baseline {escape(self.names[self.baseline])}" if self.baseline else ""
        self.caption.update(
            f"[b]{len(self.run_ids)} runs[/] · {what}: {len(self.rows)} field(s), "
            f"{differing} differ{against}"
        )

    def _style(self, row: dict[str, Any], run_id: str, style: str) -> str:
        """Against a baseline: bold where the run's value differs from the baseline's."""
        from workbench.store.runs_index import same

        if self.baseline is None or run_id == self.baseline or not row["differs"]:
            return style
        return "dim" if same(row[self.baseline], row[run_id]) else "bold"

    def action_toggle_diff(self) -> None:
        self.only_diff = not self.only_diff
        self._fill()

    def action_close(self) -> None:
        self.dismiss(None)
