"""The training panel: pipeline steps, a progress bar and the job's log, live.

Training runs in an App worker (it outlives this panel): `h` hides the panel and training
goes on, `t` shows it again, `escape` asks the job to stop (a StopTraining message to the
App, which sets the flag the pipeline polls as `should_stop`). The panel watches the App's
`training` state: it draws whatever the App's handlers made of the worker's messages."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.markup import escape
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Label, Log, ProgressBar, Static
from workbench_tui.app_state import StopTraining, TrainState
from workbench_tui.formatting import ellipsize

from workbench.jobs.events import PIPELINE_STEPS

__all__ = ["TrainFinished", "TrainLog", "TrainProgress", "TrainScreen", "TrainState", "TrainStep"]


class TrainStep(Message):
    def __init__(self, name: str, status: str, detail: str) -> None:
        super().__init__()
        self.name = name
        self.status = status
        self.detail = detail


class TrainProgress(Message):
    def __init__(self, iteration: int, total: int, scores: dict[str, float]) -> None:
        super().__init__()
        self.iteration = iteration
        self.total = total
        self.scores = scores


class TrainLog(Message):
    def __init__(self, line: str) -> None:
        super().__init__()
        self.line = line


class TrainFinished(Message):
    def __init__(self, ok: bool, text: str) -> None:
        super().__init__()
        self.ok = ok
        self.text = text


_MARKS = {
    "running": "[$accent]…[/]",
    "done": "[$success]✓[/]",
    "failed": "[$error]✗[/]",
}


class TrainScreen(ModalScreen[None]):
    CSS_PATH = "train.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "cancel",
            "Stop / close",
            id="train.cancel",
            tooltip="Stop the training job (or close the panel once it ended)",
        ),
        Binding(
            "h",
            "hide",
            "Hide",
            id="train.hide",
            tooltip="Hide this panel; training goes on (t shows it again)",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.state = TrainState()
        self._written = 0  # lines of state.log in the log view

    def compose(self) -> ComposeResult:
        with Vertical(id="train-panel") as panel:
            panel.border_title = "Training"
            self.steps_view = Static(id="train-steps")
            yield self.steps_view
            self.bar = ProgressBar(total=None, show_eta=False, id="train-bar")
            yield self.bar
            self.scores_view = Label("", id="train-scores")
            yield self.scores_view
            self.log_view = Log(max_lines=500, id="train-log")
            yield self.log_view
            self.hint = Label("", id="train-hint")
            yield self.hint

    def on_mount(self) -> None:
        self.watch(self.app, "training", self._training_changed)

    def _training_changed(self, state: TrainState) -> None:
        if state is not self.state:  # a new run, or the first look at this one
            self.state = state
            self.log_view.clear()
            self._written = max(0, len(state.log) - 200)
        new = state.log[self._written :]
        if new:
            self.log_view.write_lines(new)
            self._written = len(state.log)
        self.show_state()

    def show_state(self) -> None:
        s = self.state
        lines = []
        for name in PIPELINE_STEPS:
            status, detail = s.steps.get(name, ("", ""))
            mark = _MARKS.get(status, "[dim]·[/]")
            lines.append(f"{mark} {name:<9} [dim]{escape(ellipsize(detail, 60))}[/]")
        self.steps_view.update("\n".join(lines))
        if s.total:
            self.bar.update(total=s.total, progress=s.iteration)
        shown = "  ".join(f"{k} {v:.4f}" for k, v in s.scores.items() if k.startswith("valid"))
        self.scores_view.update(
            f"iteration {s.iteration}/{s.total}  {shown}" if s.total else "starting…"
        )
        if s.running:
            self.hint.update(
                "stopping…" if s.stopping else "[b]esc[/] stop training · [b]h[/] hide"
            )
        else:
            colour = "$success" if s.ok else "$error"
            self.hint.update(f"[{colour}]{escape(s.outcome)}[/] · [b]esc[/] close")

    def action_cancel(self) -> None:
        if self.state.running:
            self.post_message(StopTraining())
        else:
            self.dismiss(None)

    def action_hide(self) -> None:
        self.dismiss(None)
