"""SQL: read-only queries over the views of every log (runs, metrics, predictions, labels,
drift, jobs, audit), with an editor, a results table, the views and their columns, and the
query history.

ctrl+r (or ctrl+enter, where the terminal sends it) runs the editor's query in a thread
worker through the app's shared DuckDB connection; escape cancels a running query (DuckDB's
interrupt), so a runaway join never holds up the other screens. At most TABLE_LIMIT rows
reach the table; cells are formatted in the worker, not on the event loop. An error shows
in place, in one line above the table, and the last results stay. ctrl+up / ctrl+down walk
the history (kept per project in the store, shared with `workbench sql`), ctrl+t shows the
views; enter on a view or a column writes its name into the query.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Label, TextArea, Tree
from textual.worker import get_current_worker
from workbench_tui.base import WorkbenchScreen, describe_error

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    import duckdb

    from workbench.store.sql_console import QueryResult

#: Rows shown in the table at most (the status line says how many there were).
TABLE_LIMIT = 10_000
#: Rows put in the table at once: the first chunk, then CHUNK every CHUNK_PAUSE_S.
FIRST_CHUNK = 200
CHUNK = 250
CHUNK_PAUSE_S = 0.01
#: A column is at most this wide; longer cells end in an ellipsis.
CELL_MAX = 40
INITIAL_QUERY = "SELECT * FROM runs LIMIT 100"
EDITOR_HINT = "esc leaves the editor, then 1-7 switch screens"
#: Queries ctrl+up walks back through (the file keeps sql_console.HISTORY_MAX, the same).
HISTORY_KEEP = 200
HISTORY_GROUP = Binding.Group("history", compact=True)


@dataclass
class Shown:
    """A result made ready for the table in the worker: labels, widths, cells."""

    columns: list[str]
    widths: list[int]
    cells: list[list[Text]]
    status: str


def _cell(value: Any, width: int) -> str:
    from workbench.store.sql_console import cell_text

    text = cell_text(value).replace("\r", " ").replace("\n", " ").replace("\t", " ")
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def prepare(result: QueryResult, null_style: Style) -> Shown:
    """Cells as text, numbers right-aligned, NULL styled, every column CELL_MAX at most."""
    from workbench.store.sql_console import is_numeric, summary

    ncols = len(result.columns)
    widths = [min(CELL_MAX, max(4, len(name))) for name in result.columns]
    texts = [[_cell(v, CELL_MAX) for v in row] for row in result.rows]
    for row_texts in texts:
        for i in range(ncols):
            widths[i] = max(widths[i], len(row_texts[i]))
    numeric = [is_numeric(kind) for kind in result.types]
    # Text, not str: DataTable reads a str cell as markup, and values hold brackets.
    null = Text("NULL", style=null_style, end="")
    cells: list[list[Text]] = []
    for row, row_texts in zip(result.rows, texts, strict=True):
        out: list[Text] = []
        for i, value in enumerate(row):
            if value is None:
                out.append(null)
            elif numeric[i]:
                out.append(Text(row_texts[i].rjust(widths[i]), end=""))
            else:
                out.append(Text(row_texts[i], end=""))
        cells.append(out)
    status = summary(result) if result.columns else f"done in {result.seconds:.3f} s"
    return Shown(list(result.columns), widths, cells, status)


class SqlResults(DataTable[Any]):
    """The results; NULL takes its style from the theme, through a component class."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"sql-results--null"}


class SqlScreen(WorkbenchScreen):
    MODE_TITLE = "SQL"
    CSS_PATH = "sql.tcss"
    AUTO_FOCUS = "#sql-editor"
    LEAVE_INPUT_ACTION = "leave_editor"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+r,ctrl+enter",
            "run",
            "Run",
            id="sql.run",
            tooltip="Run the query (ctrl+enter does the same where the terminal sends it)",
        ),
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="sql.cancel",
            tooltip="Cancel the running query (shown while one runs)",
        ),
        Binding(
            "escape",
            "leave_editor",
            "Leave editor",
            id="sql.leave_editor",
            tooltip="Leave the editor for the results, where 1-7 switch screens again",
        ),
        Binding(
            "ctrl+up",
            "history(-1)",
            "Older",
            id="sql.history_back",
            tooltip="Put the previous query of the history in the editor",
            group=HISTORY_GROUP,
        ),
        Binding(
            "ctrl+down",
            "history(1)",
            "Newer",
            id="sql.history_forward",
            tooltip="Put the next query of the history in the editor (past the newest: yours)",
            group=HISTORY_GROUP,
        ),
        Binding(
            "ctrl+t",
            "toggle_views",
            "Views",
            id="sql.views",
            tooltip="Show or hide the views and their columns (enter writes a name into the "
            "query, space opens a view)",
        ),
        Binding(
            "e",
            "edit",
            "Edit",
            id="sql.edit",
            tooltip="Back to the editor (from the results or the views)",
        ),
    ]

    class Ran(Message):
        """A query finished: what to show, or a one-line error."""

        def __init__(self, run_id: int, shown: Shown | None, error: str = "") -> None:
            super().__init__()
            self.run_id = run_id
            self.shown = shown
            self.error = error

    class ViewsLoaded(Message):
        def __init__(
            self,
            found: dict[str, list[tuple[str, str]]] | None,
            history: list[str] | None,
            error: str = "",
        ) -> None:
            super().__init__()
            self.found = found
            self.history = history
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.history: list[str] = []
        #: Where ctrl+up/down are in the history; len(history) is the query being written.
        self.history_pos = 0
        self._draft = ""
        self._history_note = ""  # where ctrl+up/down are, in the editor's subtitle
        self._history_loaded = False
        self.running = False
        self._run_id = 0
        self._ran_once = False
        #: The running query's cursor, with its run id (escape interrupts it).
        self._cursor: tuple[int, duckdb.DuckDBPyConnection] | None = None
        self._cursor_lock = threading.Lock()
        self._show_gen = 0
        self.error = ""
        #: Views and their columns, as last loaded.
        self.views: dict[str, list[tuple[str, str]]] = {}
        #: Results shown (for tests): columns and rows of the last successful query.
        self.shown: Shown | None = None

    # --- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="sql-body"):
            with Vertical(id="sql-main"):
                self.editor = self._make_editor()
                yield self.editor
                self.status_line = Label("", id="sql-status")
                yield self.status_line
                self.error_line = Label("", id="sql-error")
                yield self.error_line
                self.results = SqlResults(cursor_type="cell", zebra_stripes=True, id="sql-results")
                yield self.results
            self.views_tree: Tree[str] = Tree("views", id="sql-views")
            yield self.views_tree
        yield Footer(compact=True)

    def _make_editor(self) -> TextArea:
        editor = TextArea(
            INITIAL_QUERY,
            id="sql-editor",
            show_line_numbers=False,
            soft_wrap=True,
            tab_behavior="focus",
        )
        # SQL highlighting needs tree-sitter's SQL grammar (textual[syntax]); without it the
        # editor is plain text.
        if "sql" in editor.available_languages:
            editor.language = "sql"
        editor.border_title = "query · ctrl+r runs it"
        return editor

    def on_mount(self) -> None:
        # (WorkbenchScreen.on_mount runs too, after this one.)
        self.error_line.display = False
        self.views_tree.display = False
        self.views_tree.show_root = False
        self.views_tree.auto_expand = False
        self.views_tree.guide_depth = 2
        self.editor.move_cursor(self.editor.document.end)
        self.status_line.update(Text("ctrl+r runs the query · ctrl+t views · ctrl+↑ history"))
        self.watch(self, "focused", self._show_editor_hint)

    def _show_editor_hint(self) -> None:
        """The editor's subtitle: the history position, and how to leave while it has focus
        (there the number keys type, they do not switch screens)."""
        hint = EDITOR_HINT if self.focused is self.editor else "e edits"
        self.editor.border_subtitle = " · ".join(p for p in (self._history_note, hint) if p)

    def on_unmount(self) -> None:
        self._interrupt()  # the app is closing: let go of the shared connection

    # --- loading views and history -------------------------------------------------------
    def reload(self) -> None:
        self._load_views()
        if not self._ran_once:
            self._ran_once = True
            self._start(self.editor.text)  # the initial query: not one for the history

    @work(thread=True, exclusive=True, group="sql-views", exit_on_error=False)
    def _load_views(self) -> None:
        from workbench.store import sql_console

        history = None if self._history_loaded else sql_console.load_history(self.project)
        try:
            with self.wb.database() as db:
                found = sql_console.views(db)
        except Exception as exc:
            message = self.ViewsLoaded(None, history, describe_error(exc))
        else:
            message = self.ViewsLoaded(found, history)
        if not get_current_worker().is_cancelled:
            self.post_message(message)

    def on_sql_screen_views_loaded(self, message: ViewsLoaded) -> None:
        if message.history is not None and not self._history_loaded:
            self._history_loaded = True
            # Queries run before the file was read stay the newest.
            earlier = [q for q in message.history if q not in self.history]
            self.history = earlier + self.history
            self.history_pos = len(self.history)
        if message.found is None:
            self.notify(f"views: {message.error}", severity="error", markup=False)
            return
        self.views = message.found
        self._fill_tree()

    def _fill_tree(self) -> None:
        expanded = {str(node.data) for node in self.views_tree.root.children if node.is_expanded}
        self.views_tree.clear()
        for view, columns in self.views.items():
            label = Text(view, style="bold")
            label.append(f" {len(columns)}", style="dim")
            node = self.views_tree.root.add(label, data=view, expand=view in expanded)
            for column, kind in columns:
                leaf = Text(column)
                kind = kind.lower().replace("timestamp with time zone", "timestamptz")
                leaf.append(f" {kind}", style="dim")
                node.add_leaf(leaf, data=column)

    # --- running -------------------------------------------------------------------------
    def action_run(self) -> None:
        sql = self.editor.text
        if not sql.strip():
            self._show_error("the query is empty")
            return
        self._remember(sql)
        self._start(sql, remember=True)

    def _start(self, sql: str, remember: bool = False) -> None:
        self._interrupt()
        self._run_id += 1
        self.running = True
        self.status_line.update(Text("running… (escape cancels)"))
        self.refresh_bindings()
        null_style = self.results.get_component_rich_style("sql-results--null", partial=True)
        self._run(self._run_id, sql, null_style, remember)

    def _set_cursor(self, run_id: int, cursor: duckdb.DuckDBPyConnection | None) -> None:
        with self._cursor_lock:
            if cursor is not None:
                self._cursor = (run_id, cursor)
            elif self._cursor is not None and self._cursor[0] == run_id:
                self._cursor = None

    def _interrupt(self) -> bool:
        with self._cursor_lock:
            held = self._cursor
        if held is None:
            return False
        try:
            held[1].interrupt()
        except Exception:
            return False  # it had just finished
        return True

    @work(thread=True, exclusive=True, group="sql-run", exit_on_error=False)
    def _run(self, run_id: int, sql: str, null_style: Style, remember: bool) -> None:
        from workbench.store import sql_console

        if remember:
            with contextlib.suppress(OSError):  # a read-only store: the query still runs
                sql_console.add_history(self.project, sql)
        try:
            with self.wb.database() as db:
                if get_current_worker().is_cancelled:
                    return  # a newer query was asked for while this one waited
                result = sql_console.run_query(
                    db, sql, TABLE_LIMIT, on_cursor=lambda cur: self._set_cursor(run_id, cur)
                )
            message = self.Ran(run_id, prepare(result, null_style))
        except WorkbenchError as exc:
            message = self.Ran(run_id, None, str(exc))
        except Exception as exc:
            message = self.Ran(run_id, None, describe_error(exc))
        finally:
            self._set_cursor(run_id, None)
        self.post_message(message)

    def on_sql_screen_ran(self, message: Ran) -> None:
        if message.run_id != self._run_id:
            return  # an older query, cancelled by a newer one
        self.running = False
        self.refresh_bindings()
        if message.shown is None:
            self._show_error(message.error)
            return
        self.error = ""
        self.error_line.display = False
        self._show(message.shown)

    def _show_error(self, error: str) -> None:
        self.error = error
        self.error_line.update(Text(error))  # wraps (up to a few lines, then cut)
        self.error_line.tooltip = error
        self.error_line.display = True
        kept = " · the results below are the last query's" if self.shown else ""
        self.status_line.update(Text(f"the query failed{kept}"))

    def _show(self, shown: Shown) -> None:
        self.shown = shown
        self._show_gen += 1
        table = self.results
        table.clear(columns=True)
        for i, (name, width) in enumerate(zip(shown.columns, shown.widths, strict=True)):
            table.add_column(Text(name), width=width, key=f"c{i}")
        self.status_line.update(Text(shown.status))
        self._add_rows(self._show_gen, 0)

    def _add_rows(self, gen: int, start: int) -> None:
        """Rows go in a chunk at a time: DataTable measures every cell it is given on the
        event loop, and 10,000 rows at once would freeze the screen for a second or more."""
        shown = self.shown
        if gen != self._show_gen or shown is None or not self.is_attached:
            return  # a newer result replaced this one
        end = start + (FIRST_CHUNK if start == 0 else CHUNK)
        self.results.add_rows(shown.cells[start:end])
        if end < len(shown.cells):
            self.set_timer(CHUNK_PAUSE_S, lambda: self._add_rows(gen, end))

    @property
    def rows_added(self) -> int:
        """Rows in the table so far (all of them, once the chunks are in)."""
        return self.results.row_count

    # --- actions -------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # False hides the binding and lets escape fall through to the next one.
        if action == "edit":
            return not self.editor.has_focus
        if action == "cancel":
            return self.running
        if action == "leave_editor":
            return not self.running and self.editor.has_focus
        return super().check_action(action, parameters)

    def action_cancel(self) -> None:
        if self._interrupt():
            self.status_line.update(Text("cancelling…"))

    def action_leave_editor(self) -> None:
        self.results.focus()

    def action_edit(self) -> None:
        self.editor.focus()

    def action_toggle_views(self) -> None:
        self.views_tree.display = not self.views_tree.display
        if self.views_tree.display:
            self.views_tree.focus()
        else:
            self.editor.focus()

    def action_history(self, step: int) -> None:
        if not self.history:
            self.notify("no queries in the history yet", markup=False)
            return
        if self.history_pos == len(self.history):
            self._draft = self.editor.text
        pos = max(0, min(len(self.history), self.history_pos + step))
        if step < 0 and pos == len(self.history) - 1 and self.history[pos] == self._draft.strip():
            pos = max(0, pos - 1)  # the editor holds the newest query already: go past it
        if pos == self.history_pos:
            self.app.bell()
            return
        self.history_pos = pos
        text = self._draft if pos == len(self.history) else self.history[pos]
        self._set_text(text)
        where = "your query" if pos == len(self.history) else f"{pos + 1}/{len(self.history)}"
        self._history_note = f"history {where}"
        self._show_editor_hint()

    def _set_text(self, text: str) -> None:
        self.editor.text = text
        self.editor.move_cursor(self.editor.document.end)
        self.editor.focus()

    def _remember(self, sql: str) -> None:
        sql = sql.strip()
        self.history = [q for q in self.history if q != sql]
        self.history.append(sql)
        self.history = self.history[-HISTORY_KEEP:]
        self.history_pos = len(self.history)
        self._draft = ""
        self._history_note = ""
        self._show_editor_hint()

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        event.stop()
        name = event.node.data
        if not name:
            return
        quoted = name if name.isidentifier() and name.islower() else f'"{name}"'
        editor = self.editor
        row, col = editor.cursor_location
        before = editor.document.get_line(row)[:col]
        if before and not before[-1].isspace() and before[-1] not in "(,.":
            quoted = " " + quoted  # after a word: keep the two apart
        editor.insert(quoted)
        editor.focus()
