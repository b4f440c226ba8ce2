"""Help: every key, per screen, as it is bound now (after [tui].keys remaps)."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    AUTO_FOCUS = "#help-body"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="help.close", tooltip="Close the help"),
        Binding(
            "question_mark", "close", "Close", show=False, id="help.close_alt", tooltip="Close"
        ),
    ]

    def __init__(
        self, sections: list[tuple[str, list[BindingType]]], keymap: dict[str, str]
    ) -> None:
        super().__init__()
        self.sections = sections
        self.keymap = keymap

    def key_label(self, binding: Binding) -> str:
        keys = self.keymap.get(binding.id or "", binding.key)
        shown = [self.app.get_key_display(binding.with_key(k.strip())) for k in keys.split(",")]
        return " ".join(shown)

    def compose(self) -> ComposeResult:
        with Vertical(id="help-panel") as panel:
            panel.border_title = "Keys"
            with VerticalScroll(id="help-body"):
                for title, bindings in self.sections:
                    yield Label(f"[b $text-primary]{title}[/]", classes="help-title")
                    table = Table.grid(padding=(0, 1), expand=True)
                    table.add_column(width=9, no_wrap=True)
                    table.add_column(ratio=1)
                    table.add_column(width=24, no_wrap=True)
                    for b in bindings:
                        if not isinstance(b, Binding):
                            continue
                        what = Text(b.description or b.action, style="bold")
                        if b.tooltip:
                            what.append(f"  {b.tooltip}", style="dim")
                        table.add_row(
                            Text(self.key_label(b), style="bold"),
                            what,
                            Text(b.id or "", style="dim italic"),
                        )
                    yield Static(table, classes="help-table")
            yield Label(
                "[dim]ctrl+p: command palette · remap keys in workbench.toml "
                "\\[tui].keys (binding id = key)[/]",
                id="help-hint",
            )

    def action_close(self) -> None:
        self.dismiss(None)
