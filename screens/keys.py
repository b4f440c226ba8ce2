"""Every key binding: the App's (switching screens, train, refresh, help, quit), and each
screen's, gathered for the help screen and for checking `[tui].keys` ids."""

from __future__ import annotations

from textual.binding import Binding, BindingType

SCREENS_GROUP = Binding.Group("screens", compact=True)

APP_BINDINGS: list[BindingType] = [
    Binding(
        "1",
        "switch_mode('overview')",
        "Overview",
        id="app.overview",
        tooltip="Show the overview: production and staging models, latest runs, audit",
        group=SCREENS_GROUP,
    ),
    Binding(
        "2",
        "switch_mode('experiments')",
        "Experiments",
        id="app.experiments",
        tooltip="Show every run: filter, sort, mark and compare",
        group=SCREENS_GROUP,
    ),
    Binding(
        "3",
        "switch_mode('models')",
        "Models",
        id="app.models",
        tooltip="Show registered versions: promote and roll back",
        group=SCREENS_GROUP,
    ),
    Binding(
        "4",
        "switch_mode('jobs')",
        "Jobs",
        id="app.jobs",
        tooltip="Show jobs: status, resources, live logs; stop and restart",
        group=SCREENS_GROUP,
    ),
    Binding(
        "5",
        "switch_mode('deployments')",
        "Deployments",
        id="app.deployments",
        tooltip="Show production and canary live: traffic share, promote, roll back",
        group=SCREENS_GROUP,
    ),
    Binding(
        "6",
        "switch_mode('sql')",
        "SQL",
        id="app.sql",
        tooltip="Query the logs with SQL: runs, metrics, predictions, labels, drift, jobs, audit",
        group=SCREENS_GROUP,
    ),
    Binding(
        "7",
        "switch_mode('drift')",
        "Drift",
        id="app.drift",
        tooltip="Show drift: features by drift score, histograms, prediction drift, "
        "performance, the monitor",
        group=SCREENS_GROUP,
    ),
    Binding("t", "train", "Train", id="app.train", tooltip="Run the pipeline: train a model"),
    Binding(
        "ctrl+r",
        "refresh",
        "Refresh",
        show=False,
        id="app.refresh",
        tooltip="Sync the runs index from MLflow and reload",
    ),
    Binding("question_mark", "help", "Help", id="app.help", tooltip="List every key"),
    Binding("q", "quit", "Quit", show=False, id="app.quit", tooltip="Quit Workbench"),
]


def help_sections(current_mode: str = "") -> list[tuple[str, list[BindingType]]]:
    """Bindings per screen, the current one first."""
    from workbench_tui.card_view import CardScreen
    from workbench_tui.compare import CompareScreen
    from workbench_tui.deploy_dialog import CanaryDialog
    from workbench_tui.deployments import DeploymentsScreen
    from workbench_tui.dialogs import ConfirmDialog
    from workbench_tui.drift import DriftScreen
    from workbench_tui.experiments import ExperimentsScreen
    from workbench_tui.help import HelpScreen
    from workbench_tui.jobs import JobsScreen
    from workbench_tui.lineage import LineageScreen
    from workbench_tui.models import ModelsScreen
    from workbench_tui.overview import OverviewScreen
    from workbench_tui.segments import SegmentsScreen
    from workbench_tui.sql import SqlScreen
    from workbench_tui.train import TrainScreen
    from workbench_tui.widgets.column_chooser import ColumnChooser
    from workbench_tui.widgets.runs_table import RunsTable

    sections: list[tuple[str, str, list[BindingType]]] = [
        ("overview", "Overview", list(OverviewScreen.BINDINGS)),
        (
            "experiments",
            "Experiments",
            list(ExperimentsScreen.BINDINGS) + list(RunsTable.BINDINGS),
        ),
        ("columns", "Column chooser (C on Experiments)", list(ColumnChooser.BINDINGS)),
        ("compare", "Compare runs", list(CompareScreen.BINDINGS)),
        ("models", "Models", list(ModelsScreen.BINDINGS)),
        ("jobs", "Jobs", list(JobsScreen.BINDINGS)),
        ("deployments", "Deployments", list(DeploymentsScreen.BINDINGS)),
        ("sql", "SQL", list(SqlScreen.BINDINGS)),
        ("drift", "Drift", list(DriftScreen.BINDINGS)),
        ("segments", "Segments", list(SegmentsScreen.BINDINGS)),
        ("lineage", "Lineage", list(LineageScreen.BINDINGS)),
        ("card", "Model card", list(CardScreen.BINDINGS)),
        ("dialog", "Confirm dialog", list(ConfirmDialog.BINDINGS)),
        ("canary_dialog", "Deploy canary dialog", list(CanaryDialog.BINDINGS)),
        ("train", "Training panel", list(TrainScreen.BINDINGS)),
        ("help", "This help", list(HelpScreen.BINDINGS)),
    ]
    current = [(title, b) for name, title, b in sections if name == current_mode]
    others = [(title, b) for name, title, b in sections if name != current_mode]
    return [*current, ("Everywhere", list(APP_BINDINGS)), *others]


def binding_ids() -> list[str]:
    ids: list[str] = []
    for _, bindings in help_sections():
        for b in bindings:
            if isinstance(b, Binding) and b.id:
                ids.append(b.id)
    return ids
