"""The Models screen's pending approval requests ([governance]): id, move, requester, age,
approvals n/N. Hidden while none is pending. The screen loads the requests in a worker and
hands them to `show`; `a` / `x` act on the row under the cursor (`selected`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

if TYPE_CHECKING:
    from workbench.registry.approvals import Request


class ApprovalsPanel(Vertical):
    """A small table of pending requests, with a border title saying the keys."""

    DEFAULT_CSS = """
    ApprovalsPanel {
        height: auto;
        max-height: 6;
        border-top: solid $warning;
        border-title-color: $text-warning;
        border-title-style: bold;
    }
    ApprovalsPanel > DataTable {
        height: auto;
        max-height: 5;
        background: $surface;
    }
    """

    def __init__(self) -> None:
        super().__init__(id="approvals-box")
        self.requests: list[Request] = []
        self.border_title = "Pending approvals (a approve · x reject)"

    def compose(self) -> ComposeResult:
        self.table: DataTable[Any] = DataTable(cursor_type="row", id="approvals")
        yield self.table

    def on_mount(self) -> None:
        self.display = False
        for label, width in (
            ("request", 8),
            ("move", 16),
            ("requester", 10),
            ("age", 4),
            ("approvals", 12),
            ("reason", 40),
        ):
            self.table.add_column(label, width=width, key=label)

    def show(self, requests: list[Request], now: datetime) -> None:
        """Fill the table (the cursor stays on the same request when it is still there)."""
        keep = self.selected.id if self.selected is not None else None
        self.requests = list(requests)
        self.table.clear()
        for r in self.requests:
            who = f" {', '.join(r.approvers)}" if r.approvers else ""
            self.table.add_row(
                r.id,
                Text(f"{r.alias} v{r.from_version or '-'}→v{r.version}"),
                Text(r.requester),
                r.age(now),
                Text(f"{len(r.approvals)}/{r.required}{who}"),
                Text(r.reason),
                key=r.id,
            )
        ids = [r.id for r in self.requests]
        if keep in ids:
            self.table.move_cursor(row=ids.index(keep))
        self.display = bool(self.requests)

    @property
    def selected(self) -> Request | None:
        if not self.requests or not self.table.row_count:
            return None
        row = self.table.cursor_row
        return self.requests[row] if 0 <= row < len(self.requests) else None
