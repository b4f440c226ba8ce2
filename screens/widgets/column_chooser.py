"""ColumnChooser: a modal listing the runs table's possible columns (metrics, min/max/last of
each per-step metric, params); space ticks, enter keeps the choice, escape leaves it as it was.
It returns the chosen column keys in the order listed, `[DEFAULTS]` for "back to the
default columns" (`d`), None when cancelled."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, SelectionList
from textual.widgets.selection_list import Selection

#: What the chooser returns alone for "the default columns".
DEFAULTS = "*defaults*"


class ColumnChooser(ModalScreen[list[str] | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "keep",
            "Keep",
            priority=True,
            id="experiments.columns_keep",
            tooltip="Keep the ticked columns (saved in the project)",
        ),
        Binding(
            "d",
            "defaults",
            "Defaults",
            id="experiments.columns_defaults",
            tooltip="Back to the default columns",
        ),
        Binding(
            "escape", "cancel", "Cancel", id="experiments.columns_cancel", tooltip="Leave unchanged"
        ),
    ]

    DEFAULT_CSS = """
    ColumnChooser {
        align: center middle;
    }
    ColumnChooser > Vertical {
        width: 60;
        max-width: 100%;
        height: 20;
        max-height: 100%;
        border: round $primary;
        background: $surface;
        border-title-color: $text-primary;
    }
    ColumnChooser #chooser-hint {
        color: $text-muted;
        padding: 0 1;
    }
    ColumnChooser SelectionList {
        height: 1fr;
        border: none;
    }
    """

    def __init__(self, options: list[tuple[str, str]], chosen: list[str]) -> None:
        """`options`: (column key, label) in the order listed; `chosen`: the keys ticked."""
        super().__init__()
        self.options = options
        self.chosen = chosen

    def compose(self) -> ComposeResult:
        ticked = set(self.chosen)
        with Vertical() as box:
            box.border_title = "Columns"
            yield Label("space ticks · enter keeps · d defaults · escape", id="chooser-hint")
            self.list: SelectionList[str] = SelectionList(
                *(Selection(label, key, key in ticked) for key, label in self.options),
                id="chooser",
            )
            yield self.list

    def on_mount(self) -> None:
        self.list.focus()

    def action_keep(self) -> None:
        ticked = set(self.list.selected)
        self.dismiss([key for key, _ in self.options if key in ticked])

    def action_defaults(self) -> None:
        self.dismiss([DEFAULTS])

    def action_cancel(self) -> None:
        self.dismiss(None)
