"""The command palette (ctrl+p): every Workbench action, by name."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from screens.app import WorkbenchApp


class WorkbenchCommands(Provider):
    """Switch screens, train, promote, roll back, compare, filter, jobs, canary, SQL, refresh,
    help, quit."""

    def commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app = cast("WorkbenchApp", self.app)
        return [
            (
                "Go to overview",
                "Production, staging, latest runs, audit",
                partial(app.switch_mode, "overview"),
            ),
            (
                "Go to experiments",
                "Every run: filter, sort, mark, compare",
                partial(app.switch_mode, "experiments"),
            ),
            (
                "Go to models",
                "Registered versions and alias history",
                partial(app.switch_mode, "models"),
            ),
            (
                "Go to jobs",
                "Jobs with status and resources; the selected job's live log",
                partial(app.switch_mode, "jobs"),
            ),
            (
                "Go to deployments",
                "Production and canary live: traffic, latency, errors, promote, roll back",
                partial(app.switch_mode, "deployments"),
            ),
            (
                "Go to SQL",
                "Query the logs with SQL: runs, metrics, predictions, labels, drift, jobs, audit",
                partial(app.switch_mode, "sql"),
            ),
            (
                "Run SQL query",
                "Run the SQL screen's query (ctrl+r there)",
                partial(app.run_in_mode, "sql", "run"),
            ),
            (
                "Show SQL views and columns",
                "The views of every log and their columns, beside the SQL editor",
                partial(app.run_in_mode, "sql", "toggle_views"),
            ),
            (
                "Go to drift",
                "Features by drift score, histograms, prediction drift, performance, monitor",
                partial(app.switch_mode, "drift"),
            ),
            (
                "Re-check drift",
                "Run the drift check now and record it in the drift log",
                partial(app.run_in_mode, "drift", "recheck"),
            ),
            (
                "Run a monitor round now",
                "Check drift; retrain when the [monitor] policy fires; asks first",
                partial(app.run_in_mode, "drift", "monitor_round"),
            ),
            (
                "Start the inference server",
                "Serve production in the background on [serving] host and port",
                partial(app.run_in_mode, "deployments", "serve"),
            ),
            (
                "Stop the inference server",
                "Stop it gracefully (its prediction log is flushed); asks first",
                partial(app.run_in_mode, "deployments", "stop_server"),
            ),
            (
                "Deploy a canary",
                "Serve a version beside production on a share of traffic; asks which",
                partial(app.run_in_mode, "deployments", "canary"),
            ),
            (
                "Promote the canary",
                "The canary takes the production alias and all traffic; asks why",
                partial(app.run_in_mode, "deployments", "promote"),
            ),
            (
                "Roll back the canary",
                "Drop the canary: production takes all traffic; asks why",
                partial(app.run_in_mode, "deployments", "rollback"),
            ),
            (
                "More canary traffic",
                "Five more points of traffic to the canary",
                partial(app.run_in_mode, "deployments", "traffic(5)"),
            ),
            (
                "Less canary traffic",
                "Five fewer points of traffic to the canary",
                partial(app.run_in_mode, "deployments", "traffic(-5)"),
            ),
            (
                "Stop selected job",
                "On the jobs screen; asks first",
                partial(app.run_in_mode, "jobs", "stop"),
            ),
            (
                "Restart selected job",
                "Run it again as a new job with the same arguments; asks first",
                partial(app.run_in_mode, "jobs", "restart"),
            ),
            (
                "Search job log",
                "Show only the selected job's log lines that contain some text",
                partial(app.run_in_mode, "jobs", "search"),
            ),
            (
                "Toggle job log follow",
                "Keep the newest log line in view, or not",
                partial(app.run_in_mode, "jobs", "toggle_follow"),
            ),
            (
                "Train a model",
                "Run the pipeline: validate, train, evaluate, gate, register",
                app.action_train,
            ),
            (
                "Promote selected version to production",
                "On the models screen; asks why",
                partial(app.run_in_mode, "models", "promote"),
            ),
            (
                "Roll back production",
                "Back to the version that served before; asks why",
                partial(app.run_in_mode, "models", "rollback"),
            ),
            (
                "Compare marked runs",
                "Side by side, with only-what-differs",
                partial(app.run_in_mode, "experiments", "compare"),
            ),
            (
                "Filter runs",
                "Words, key=value, auc>0.9",
                partial(app.run_in_mode, "experiments", "filter"),
            ),
            (
                "Sort runs by the next column",
                "Start time, name, status, metrics",
                partial(app.run_in_mode, "experiments", "cycle_sort"),
            ),
            ("Refresh", "Sync the runs index from MLflow and reload", app.action_refresh),
            ("Help: keys", "Every key binding, per screen", app.action_help),
            ("Quit Workbench", "Stop training if any and quit", app.action_quit),
        ]

    async def discover(self) -> Hits:
        for name, help_text, callback in self.commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
