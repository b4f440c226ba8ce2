"""CanaryDialog: the Deployments screen's dialog to deploy a canary (version, traffic share,
reason)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static
from workbench_tui.formatting import fmt_version

#: The traffic share (percent) the dialog suggests.
DEFAULT_CANARY_PCT = 10


class CanaryDialog(ModalScreen[tuple[int, float, str] | None]):
    """Asks for the canary's version, its traffic share and an optional reason; dismisses
    with (version, percent, reason) or None. The core checks the version."""

    CSS_PATH = ["dialogs.tcss", "deployments.tcss"]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="canary_dialog.cancel",
            tooltip="Close without deploying",
        ),
        Binding(
            "ctrl+s",
            "confirm",
            "Deploy",
            id="canary_dialog.confirm",
            tooltip="Deploy the canary (enter in a field does the same)",
        ),
    ]

    def __init__(
        self, versions: list[int], production: int | None, suggested: int | None = None
    ) -> None:
        super().__init__()
        self.versions = versions
        self.production = production
        self.suggested = suggested

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as box:
            box.border_title = "Deploy a canary"
            listed = ", ".join(f"v{v}" for v in self.versions) or "none"
            yield Static(
                Text(f"production {fmt_version(self.production)} · versions: {listed}"),
                id="dialog-change",
            )
            with Horizontal(classes="canary-field"):
                yield Label("version", classes="canary-label")
                self.version_input = Input(
                    "" if self.suggested is None else str(self.suggested),
                    placeholder="version",
                    type="integer",
                    id="canary-version",
                )
                yield self.version_input
            with Horizontal(classes="canary-field"):
                yield Label("traffic %", classes="canary-label")
                self.percent_input = Input(
                    str(DEFAULT_CANARY_PCT),
                    placeholder="1-100",
                    type="number",
                    id="canary-percent",
                )
                yield self.percent_input
            self.reason = Input(
                placeholder="reason (optional, goes to the audit log)", id="canary-reason"
            )
            yield self.reason
            self.error = Label("", id="dialog-error")
            yield self.error
            with Horizontal(id="dialog-buttons"):
                yield Button("Deploy", variant="primary", id="confirm")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.version_input.focus()

    def _fail(self, text: str, field: Input) -> None:
        self.error.update(text)
        field.focus()
        self.app.bell()

    def action_confirm(self) -> None:
        try:
            version = int(self.version_input.value.strip())
        except ValueError:
            self._fail("the version is a whole number", self.version_input)
            return
        try:
            percent = float(self.percent_input.value.strip())
        except ValueError:
            percent = -1.0
        if not 0 < percent <= 100:
            self._fail("the traffic is a percentage in (0, 100]", self.percent_input)
            return
        self.dismiss((version, percent, self.reason.value.strip()))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.error.update("")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm":
            self.action_confirm()
        else:
            self.action_cancel()
