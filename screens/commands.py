"""The command palette (ctrl+p): every Workbench action, by name."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from workbench_tui.app_state import WorkbenchAppLike


#: The palette's commands: (name, help, what). `what` is a mode to switch to, "mode action"
#: to run one of that screen's actions there, or "!name" for the App's `action_name`.
PALETTE: tuple[tuple[str, str, str], ...] = (
    ("Go to overview", "Production, staging, latest runs, audit", "overview"),
    ("Go to experiments", "Every run: filter, sort, mark, compare", "experiments"),
    ("Go to models", "Registered versions and alias history", "models"),
    ("Go to jobs", "Jobs with status and resources; the selected job's live log", "jobs"),
    (
        "Go to deployments",
        "Production and canary live: traffic, latency, errors, promote, roll back",
        "deployments",
    ),
    (
        "Go to SQL",
        "Query the logs with SQL: runs, metrics, predictions, labels, drift, jobs, audit",
        "sql",
    ),
    ("Run SQL query", "Run the SQL screen's query (ctrl+r there)", "sql run"),
    (
        "Show SQL views and columns",
        "The views of every log and their columns, beside the SQL editor",
        "sql toggle_views",
    ),
    (
        "Go to drift",
        "Features by drift score, histograms, prediction drift, performance, monitor",
        "drift",
    ),
    ("Re-check drift", "Run the drift check now and record it in the drift log", "drift recheck"),
    (
        "Run a monitor round now",
        "Check drift; retrain when the [monitor] policy fires; asks first",
        "drift monitor_round",
    ),
    (
        "Show segments",
        "The metric per group of traffic, worst first, and the fairness gaps",
        "drift segments",
    ),
    (
        "Start the inference server",
        "Serve production in the background on [serving] host and port",
        "deployments serve",
    ),
    (
        "Stop the inference server",
        "Stop it gracefully (its prediction log is flushed); asks first",
        "deployments stop_server",
    ),
    (
        "Deploy a canary",
        "Serve a version beside production on a share of traffic; asks which",
        "deployments canary",
    ),
    (
        "Promote the canary",
        "The canary takes the production alias and all traffic; asks why",
        "deployments promote",
    ),
    (
        "Roll back the canary",
        "Drop the canary: production takes all traffic; asks why",
        "deployments rollback",
    ),
    ("More canary traffic", "Five more points of traffic to the canary", "deployments traffic(5)"),
    (
        "Less canary traffic",
        "Five fewer points of traffic to the canary",
        "deployments traffic(-5)",
    ),
    ("Stop selected job", "On the jobs screen; asks first", "jobs stop"),
    (
        "Restart selected job",
        "Run it again as a new job with the same arguments; asks first",
        "jobs restart",
    ),
    (
        "Search job log",
        "Show only the selected job's log lines that contain some text",
        "jobs search",
    ),
    ("Toggle job log follow", "Keep the newest log line in view, or not", "jobs toggle_follow"),
    ("Train a model", "Run the pipeline: validate, train, evaluate, gate, register", "!train"),
    ("Promote selected version to production", "On the models screen; asks why", "models promote"),
    ("Roll back production", "Back to the version that served before; asks why", "models rollback"),
    ("Compare marked runs", "Side by side, with only-what-differs", "experiments compare"),
    ("Filter runs", "Words, key=value, auc>0.9", "experiments filter"),
    ("Sort runs by the next column", "Start time, name, status, metrics", "experiments cycle_sort"),
    ("Refresh", "Sync the runs index from MLflow and reload", "!refresh"),
    ("Help: keys", "Every key binding, per screen", "!help"),
    ("Quit Workbench", "Stop training if any and quit", "!quit"),
)


def _callback(app: WorkbenchAppLike, what: str) -> Callable[[], Any]:
    if what.startswith("!"):  # through run_action, which read-only mode checks
        return partial(cast(Any, app).run_action, what[1:])
    mode, _, action = what.partition(" ")
    return partial(app.run_in_mode, mode, action) if action else partial(app.switch_mode, mode)


class WorkbenchCommands(Provider):
    """Switch screens, train, promote, roll back, compare, filter, jobs, canary, SQL, refresh,
    help, quit."""

    def commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app = cast("WorkbenchAppLike", self.app)
        return [(name, help_text, _callback(app, what)) for name, help_text, what in PALETTE]

    async def discover(self) -> Hits:
        for name, help_text, callback in self.commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
