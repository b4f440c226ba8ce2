"""Which keys change the project: the one classification the TUI's read-only mode goes by.

Every Binding id of every screen is in `MUTATING_KEYS` or `READING_KEYS` (a `prefix.*` entry
classes a whole screen); tests/tui/test_readonly.py fails on an id in neither. In read-only
mode (`workbench --read-only`, WORKBENCH_READ_ONLY=1, `[tui] read_only = true`) the App's
`run_action` looks up the binding an action belongs to (`refused_binding`) and, when it is
mutating, only notifies `read-only: <what> is disabled`. The CLI's counterpart is
`workbench.cli.mutating`.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from textual import actions
from textual.binding import Binding
from textual.dom import DOMNode

#: Keys that change the project: they train, move aliases, stop or start jobs and servers,
#: change traffic, record drift checks, or confirm such a change.
MUTATING_KEYS: frozenset[str] = frozenset(
    {
        "app.train",
        "models.promote",
        "models.rollback",
        "models.approve",
        "models.reject",
        "jobs.stop",
        "jobs.restart",
        "deployments.traffic_up",
        "deployments.traffic_down",
        "deployments.promote",
        "deployments.rollback",
        "deployments.canary",
        "deployments.serve",
        "deployments.stop_server",
        # `r` records the check in the drift log (looking, and `w`, record nothing)
        "drift.recheck",
        # a monitor round records its check and may retrain and deploy
        "drift.monitor",
        # stops the training job (the panel opens only from app.train)
        "train.cancel",
        # the dialogs confirm a change; only mutating keys open them
        "dialog.confirm",
        "canary_dialog.confirm",
    }
)

#: Keys that only read (moving around, filtering, querying, refreshing a local cache).
READING_KEYS: frozenset[str] = frozenset(
    {
        "app.overview",
        "app.experiments",
        "app.models",
        "app.jobs",
        "app.deployments",
        "app.sql",
        "app.drift",
        # syncs the runs index, a local cache of the MLflow store (as `workbench sync`)
        "app.refresh",
        "app.help",
        "app.quit",
        "experiments.*",
        "runs.*",
        "compare.*",
        "models.card",
        "models.lineage",
        "card.*",
        "jobs.search",
        "jobs.follow",
        "jobs.clear_search",
        "jobs.focus_log",
        "jobs.lineage",
        "deployments.window",
        # read-only SQL over the logs
        "sql.*",
        "drift.window",
        "drift.select",
        "drift.segments",
        # the Segments screen reads the logs: window, refresh, back
        "segments.*",
        "dialog.cancel",
        "canary_dialog.cancel",
        "train.hide",
        "help.*",
        "lineage.*",
    }
)


def _matches(binding_id: str, classes: frozenset[str]) -> bool:
    return binding_id in classes or any(
        "*" in pattern and fnmatchcase(binding_id, pattern) for pattern in classes
    )


def is_mutating(binding_id: str) -> bool:
    return _matches(binding_id, MUTATING_KEYS)


def is_classified(binding_id: str) -> bool:
    return _matches(binding_id, MUTATING_KEYS) or _matches(binding_id, READING_KEYS)


def bindings_of(node: DOMNode) -> list[Binding]:
    """The Bindings a node's class declares (its own and its bases')."""
    found: list[Binding] = []
    for cls in type(node).__mro__:
        for item in cls.__dict__.get("BINDINGS", ()):
            if isinstance(item, Binding):
                found.append(item)
    return found


def refused_binding(
    node: DOMNode, action_name: str, params: tuple[object, ...] = ()
) -> Binding | None:
    """The mutating binding of `node` whose action is `action_name` (with these parameters,
    else any), if any. An action no binding names is not refused: it is not a key."""
    named: list[Binding] = []
    for binding in bindings_of(node):
        _, name, bound = actions.parse(binding.action)
        if name == action_name and binding.id and is_mutating(binding.id):
            if bound == tuple(params):
                return binding
            named.append(binding)
    return named[0] if named else None


def refusal(binding: Binding) -> str:
    """The one line a refused key notifies."""
    return f"read-only: {binding.description or binding.action} ({binding.id}) is disabled"
