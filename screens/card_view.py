"""The model card of one version, opened from the Models screen with `c`: built in a thread
worker (it reads the version's run through MLflow and the logs through DuckDB), shown as
Markdown in a scrollable panel; escape closes it."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Markdown, Static
from workbench_tui.base import describe_error

from workbench.project import Project


class CardScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    CardScreen {
        align: center middle;
        background: $background 60%;
    }
    #card-panel {
        width: 100%;
        max-width: 110;
        height: 100%;
        border: round $primary;
        border-title-color: $primary;
        background: $surface;
    }
    #card-body {
        height: 1fr;
        padding: 0 1;
    }
    #card-status {
        height: 1;
        padding: 0 1;
        color: $text-muted;
    }
    """
    AUTO_FOCUS = "#card-body"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="card.close", tooltip="Close the model card"),
    ]

    class Built(Message):
        def __init__(self, text: str, error: str = "") -> None:
            super().__init__()
            self.text = text
            self.error = error

    def __init__(self, project: Project, version: int) -> None:
        super().__init__()
        self.project = project
        self.version = version
        self.markdown_text = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="card-panel") as panel:
            panel.border_title = f"Model card · v{self.version}"
            with VerticalScroll(id="card-body"):
                self.body = Markdown("")
                yield self.body
            self.status = Static(f"building the card of v{self.version}…", id="card-status")
            yield self.status

    def on_mount(self) -> None:
        self._build()

    @work(thread=True, exclusive=True, group="card-build", exit_on_error=False)
    def _build(self) -> None:
        from workbench.registry import card, card_render

        try:
            facts = card.gather(self.project, self.version)
            text = card_render.render_md(facts, header=False)
        except Exception as exc:
            self.post_message(self.Built("", describe_error(exc)))
        else:
            self.post_message(self.Built(text))

    async def on_card_screen_built(self, message: Built) -> None:
        if message.error:
            self.status.update(f"cannot build the card: {message.error}")
            return
        self.markdown_text = message.text
        await self.body.update(message.text)
        self.status.update("escape: close · ↑↓ PgUp PgDn: scroll")

    def action_close(self) -> None:
        self.dismiss(None)
