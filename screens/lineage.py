"""Lineage: where a thing came from and what came of it, as a tree (widgets/lineage_tree.py).

Opened on a THING (anything `workbench lineage` takes: a version such as `fraud_detection/3`,
an alias, a job, run, digest, drift check or request id) from the Models (`L` on a version),
Experiments (`L` on a run) and Jobs (`L` on a job) screens. enter shows
the selected node's details, `r` builds the graph again around the selected node
(`backspace` goes back to the previous root), `+`/`-` change the depth, `/` asks for another
THING, escape closes the details, then the screen.

The graph is built by `workbench.lineage.graph.build` (it reads DuckDB over the Parquet logs
and MLflow's SQLite store) in a thread worker: the screen paints a "loading" line first and
an error (an unknown THING) as one line. The builder is imported in the worker only; a
screen may be given another one (`builder=`), which tests do."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static, Tree
from workbench_tui.base import describe_error, is_text_input
from workbench_tui.widgets.lineage_tree import LineageTree, detail_rows

if TYPE_CHECKING:
    from workbench_tui.app_state import WorkbenchAppLike

    from workbench.lineage.model import Lineage
    from workbench.project import Project

#: build(project, thing, depth) -> Lineage
Builder = Callable[["Project", str, int], "Lineage"]

DEFAULT_DEPTH = 5  # graph.DEPTH: from a request id to the data
MAX_DEPTH = 10


def default_builder(project: Project, thing: str, depth: int) -> Lineage:
    """`workbench.lineage.graph.build`, imported on first use (in the worker)."""
    from workbench.lineage import graph

    return graph.build(project, thing, depth=depth)


#: Kinds whose key names a THING `workbench lineage` looks up: the id after the colon.
_BY_ID = ("job", "serving", "run", "dataset", "drift", "request", "retrain")


def thing_for(key: str) -> str | None:
    """The THING to build a node's lineage from (what `workbench lineage` takes), or None for
    a node it cannot look up by itself (an approval, a deployment).

    `version:m/3` -> `m/3`; `alias:m/production@<ts>` -> `models:/m@production` (the
    alias's latest move); a job, run, dataset, drift check, request or retraining: its id."""
    kind, _, ident = key.partition(":")
    if not ident:
        return None
    if kind == "version":
        return ident
    if kind == "alias":
        model, _, alias = ident.partition("@")[0].rpartition("/")
        return f"models:/{model}@{alias}" if model and alias else None
    return ident if kind in _BY_ID else None


def open_lineage(node: DOMNode, thing: str) -> None:
    """Push a Lineage screen on `thing` over whatever screen `node` is on."""
    node.app.push_screen(LineageScreen(thing))


class LineageScreen(Screen[None]):
    CSS_PATH = "lineage.tcss"
    AUTO_FOCUS = "#lineage-tree"
    #: Which help section lists this screen's keys first (the App's `?` reads it).
    HELP_SECTION: ClassVar[str] = "lineage"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "enter",
            "details",
            "Details",
            id="lineage.details",
            tooltip="Show the selected node's details (every node has some)",
        ),
        Binding(
            "r",
            "reroot",
            "Re-root",
            id="lineage.reroot",
            tooltip="Build the lineage again around the selected node",
        ),
        Binding(
            "backspace",
            "previous",
            "Previous",
            show=False,
            id="lineage.previous",
            tooltip="Back to the root shown before the last re-root or /",
        ),
        Binding(
            "plus,equals_sign",
            "depth(1)",
            "Deeper",
            id="lineage.deeper",
            tooltip="One more step up and down from the root",
        ),
        Binding(
            "minus",
            "depth(-1)",
            "Shallower",
            id="lineage.shallower",
            tooltip="One step less up and down from the root",
        ),
        Binding(
            "slash",
            "find",
            "Thing",
            id="lineage.find",
            tooltip="Show the lineage of another thing: digest, run, version, alias, job, "
            "request id",
        ),
        Binding(
            "escape",
            "back",
            "Back",
            id="lineage.back",
            tooltip="Close the details or the input; else back to the screen before",
        ),
    ]

    class Built(Message):
        """A build finished: the lineage, or an error line."""

        def __init__(self, seq: int, lineage: Lineage | None, error: str = "") -> None:
            super().__init__()
            self.seq = seq
            self.lineage = lineage
            self.error = error

    def __init__(
        self, thing: str, depth: int = DEFAULT_DEPTH, builder: Builder | None = None
    ) -> None:
        super().__init__()
        self.thing = thing
        self.depth = max(1, min(depth, MAX_DEPTH))
        self.builder: Builder = builder or default_builder
        self.lineage: Lineage | None = None
        self.history: list[str] = []  # the roots before this one (re-root, /)
        self.error = ""
        self._seq = 0

    @property
    def project(self) -> Project:
        return cast("WorkbenchAppLike", self.app).project

    def compose(self) -> ComposeResult:
        yield Header()
        self.thing_input = Input(
            placeholder="/ thing: digest, run, version (model/3), alias, job or request id",
            id="lineage-input",
        )
        yield self.thing_input
        self.status = Static("", id="lineage-status", markup=False)
        yield self.status
        self.lineage_tree = LineageTree(id="lineage-tree")
        yield self.lineage_tree
        with Vertical(id="lineage-details-box") as box:
            self.details_box = box
            box.border_title = "Details"
            self.details: DataTable[Any] = DataTable(
                cursor_type="row", show_header=False, id="lineage-details"
            )
            yield self.details
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.title = "Workbench"
        self.sub_title = "Lineage"
        self.thing_input.display = False
        self.details_box.display = False
        self.details.add_column("field", width=16, key="field")
        self.details.add_column("value", key="value")
        self.build()

    # --- building ------------------------------------------------------------------------
    def build(self) -> None:
        """Paint the loading line, then build the graph around `thing` in a worker."""
        self._seq += 1
        self.sub_title = f"Lineage of {self.thing}"
        self.status.update(f"loading the lineage of {self.thing} (depth {self.depth})…")
        self.status.set_class(False, "-error")
        self._build(self._seq, self.thing, self.depth)

    @work(thread=True, exclusive=True, group="lineage-build", exit_on_error=False)
    def _build(self, seq: int, thing: str, depth: int) -> None:
        try:
            lineage = self.builder(self.project, thing, depth)
        except Exception as exc:
            self.post_message(self.Built(seq, None, describe_error(exc)))
        else:
            self.post_message(self.Built(seq, lineage))

    def on_lineage_screen_built(self, message: Built) -> None:
        if message.seq != self._seq:
            return  # an older build, overtaken by a newer one
        if message.lineage is None:
            self._show_error(message.error)
            return
        self.error = ""
        lineage = self.lineage = message.lineage
        root = self.lineage_tree.show(lineage)
        ups = len(lineage.upstream(lineage.root))
        downs = len(lineage.downstream(lineage.root))
        self.status.update(
            f"{lineage.root} · depth {self.depth} · {len(lineage.nodes)} nodes "
            f"(↑{ups} ↓{downs}) · enter: details"
        )
        if root is None:
            self.status.update(f"{lineage.root}: not in the graph built for {self.thing}")
        else:
            self.lineage_tree.cursor_to_root()
        if self.details_box.display:
            self.call_after_refresh(self.show_details)

    def _show_error(self, text: str) -> None:
        self.error = text
        self.status.update(f"error: {text}")
        self.status.set_class(True, "-error")

    # --- the selected node ---------------------------------------------------------------
    @property
    def selected_key(self) -> str | None:
        node = self.lineage_tree.cursor_node
        return node.data if node is not None else None

    def show_details(self) -> None:
        key = self.selected_key
        if self.lineage is None or key is None or key not in self.lineage.nodes:
            return
        node = self.lineage.nodes[key]
        self.details_box.border_title = f"Details · {key}"
        self.details.clear()
        for field, value in detail_rows(node):
            self.details.add_row(Text(field, style="bold"), Text(value), key=field)
        self.details_box.display = True

    @on(Tree.NodeSelected, "#lineage-tree")
    def _selected(self, event: Tree.NodeSelected[str]) -> None:
        event.stop()
        self.action_details()

    @on(Tree.NodeHighlighted, "#lineage-tree")
    def _highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        if self.details_box.display:
            self.show_details()

    # --- actions -------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While the input has focus, the keys type into it.
        return not (is_text_input(self.focused) and action in ("reroot", "previous", "depth"))

    def action_details(self) -> None:
        if self.selected_key is None:
            self.notify("no node selected", severity="warning")
            return
        self.show_details()

    def action_reroot(self) -> None:
        key = self.selected_key
        if key is None or key == (self.lineage.root if self.lineage else None):
            return
        thing = thing_for(key)
        if thing is None:
            kind = key.partition(":")[0]
            self._show_error(f"{key}: {kind}s are not looked up by themselves; re-root on another")
            return
        self._go(thing)

    def action_previous(self) -> None:
        if self.history:
            self.thing = self.history.pop()
            self.build()

    def action_depth(self, step: int) -> None:
        depth = max(1, min(self.depth + step, MAX_DEPTH))
        if depth != self.depth:
            self.depth = depth
            self.build()

    def action_find(self) -> None:
        self.thing_input.display = True
        self.thing_input.value = ""
        self.thing_input.focus()

    @on(Input.Submitted, "#lineage-input")
    def _thing_entered(self, event: Input.Submitted) -> None:
        thing = event.value.strip()
        self._close_input()
        if thing:
            self._go(thing)

    def _go(self, thing: str) -> None:
        self.history.append(self.thing)
        self.thing = thing
        self.build()

    def _close_input(self) -> None:
        self.thing_input.display = False
        self.lineage_tree.focus()

    def action_back(self) -> None:
        if self.thing_input.display:
            self._close_input()
        elif self.details_box.display:
            self.details_box.display = False
            self.lineage_tree.focus()
        else:
            self.dismiss(None)
