"""ConfirmDialog: says what will change and asks why; dismisses with the reason or None.
With `require_reason=False` it only asks for a yes: it dismisses with "" or None."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ConfirmDialog(ModalScreen[str | None]):
    """A modal that requires a non-empty reason. Dismisses with the reason, or None."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Close without changing"),
        Binding(
            "ctrl+s",
            "confirm",
            "Confirm",
            id="dialog.confirm",
            tooltip="Confirm (enter in the reason field does the same)",
        ),
    ]

    def __init__(
        self,
        title: str,
        change: str,
        action_label: str = "Confirm",
        require_reason: bool = True,
    ) -> None:
        super().__init__()
        self.dialog_title = title
        self.change = change
        self.action_label = action_label
        self.require_reason = require_reason

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as box:
            box.border_title = escape(self.dialog_title)
            self.change_view = Static(f"[b]{escape(self.change)}[/]", id="dialog-change")
            yield self.change_view
            self.reason = Input(
                placeholder="reason (required, goes to the audit log)", id="dialog-reason"
            )
            if self.require_reason:
                yield self.reason
            self.error = Label("", id="dialog-error")
            yield self.error
            with Horizontal(id="dialog-buttons"):
                self.confirm_button = Button(self.action_label, variant="primary", id="confirm")
                yield self.confirm_button
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        if self.require_reason:
            self.reason.focus()
        else:
            self.confirm_button.focus()

    def action_confirm(self) -> None:
        reason = self.reason.value.strip()
        if not reason and self.require_reason:
            self.error.update("a reason is required")
            self.reason.focus()
            self.app.bell()
            return
        self.dismiss(reason)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.value.strip():
            self.error.update("")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm":
            self.action_confirm()
        else:
            self.action_cancel()
