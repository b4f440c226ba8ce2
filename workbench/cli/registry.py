"""The model registry: `models`, `register`, `promote`, `rollback`, `history`, `whoami`."""

from __future__ import annotations

import click

from workbench.cli.common import Commands, console, fmt, load_project, print_json

commands = Commands()

_ALIAS_HELP = "default: [registry].production_alias (production)"


@commands.command("models", "list registered versions with aliases and metrics", json=True)
def models(as_json: bool) -> int:
    from workbench.registry import versions as registry

    project = load_project()
    versions = registry.list_versions(project)
    metric = f"holdout_{project.config.metric}"
    if as_json:
        print_json(
            {"model": project.config.model_name, "versions": [v.to_dict() for v in versions]}
        )
        return 0
    from workbench.cli.tables import Col, show
    from workbench.tasks import METRICS

    if not versions:
        console().print("no registered versions yet (run `workbench pipeline run`)")
        return 0
    second = f"holdout_{next(m for m in METRICS[project.config.task.type] if m != metric[8:])}"
    cols = [
        Col("version", right=True),
        Col("aliases"),
        Col("run id", optional=True),
        Col(metric, right=True),
        Col("prod then", right=True),
        Col(second, right=True, optional=True),
    ]
    rows = []
    for v in versions:
        champ = v.champion(metric)
        rows.append(
            [
                str(v.version),
                ", ".join(v.aliases) or "-",
                (v.run_id or "-")[:12],
                fmt(v.metrics.get(metric)),
                f"{fmt(champ[1])} (v{champ[0]})" if champ else "-",
                fmt(v.metrics.get(second)),
            ]
        )
    show(cols, rows, title=f"model {project.config.model_name}")
    console().print(
        f"prod then: production's {metric} on the same holdout when registered",
        markup=False,
    )
    return 0


@commands.command(
    "register",
    "adopt a model trained elsewhere as a new version (runs:/..., models:/..., a model folder)",
    json=True,
    epilog="MODEL_URI: runs:/<run id>/<path>, runs:/<run id> (the model that run logged), "
    "models:/<name>/<version>, models:/m-<id>, or a local MLflow model folder. The model is "
    "checked against the project's features, scored on its holdout and logged as a new run "
    "with its drift profile; no alias moves (promote it when you want it served).",
)
@click.argument("model_uri", metavar="MODEL_URI")
@click.option("--reason", default="", help="why (kept in the audit log and the version)")
def register(model_uri: str, reason: str, as_json: bool) -> int:
    from workbench.pipeline.adopt import adopt

    project = load_project()
    result = adopt(project, model_uri, reason)
    if as_json:
        print_json(result.to_dict())
        return 0
    metric = f"holdout_{project.config.metric}"
    print(
        f"{result.model} v{result.version} registered from {result.imported_from} "
        f"({result.flavor}, run {result.run_id[:8]}): {metric} = {fmt(result.metrics.get(metric))}"
    )
    return 0


@commands.command(
    "promote",
    "point an alias at a version (or ask for approval, when [governance] requires it)",
)
@click.argument("version", type=int, metavar="VERSION")
@click.option("--alias", help=_ALIAS_HELP)
@click.option("--reason", required=True)
def promote(version: int, alias: str | None, reason: str) -> int:
    from workbench import names
    from workbench.registry import approvals

    if alias is not None:
        names.check_alias(alias)
    project = load_project()
    print(approvals.promote(project, version, reason, alias=alias).line())
    return 0


@commands.command("rollback", "move an alias back to the version that held it before")
@click.option("--alias", help=_ALIAS_HELP)
@click.option("--reason", required=True)
def rollback(alias: str | None, reason: str) -> int:
    from workbench import names
    from workbench.registry import versions as registry

    if alias is not None:
        names.check_alias(alias)
    project = load_project()
    row = registry.rollback(project, reason, alias=alias)
    print(
        f"{row['model']}@{row['alias']} rolled back: v{row['from_version']} -> v{row['to_version']}"
    )
    return 0


@commands.command("history", "alias moves over time", json=True)
@click.option("--alias", default=None, help="only this alias")
def history(alias: str | None, as_json: bool) -> int:
    from workbench import names
    from workbench.registry import versions as registry

    if alias is not None:
        names.check_alias(alias)
    project = load_project()
    rows = registry.alias_history(project, alias)
    if as_json:
        print_json(rows)
        return 0
    from workbench.cli.tables import Col, show

    cols = [
        Col("when (UTC)"),
        Col("alias"),
        Col("action"),
        Col("from", right=True),
        Col("to", right=True),
        Col("who", cut=10),
        Col("reason", cut=16),
    ]
    cells = [
        [
            r["ts"].strftime("%Y-%m-%d %H:%M"),
            r["alias"],
            r["action"],
            fmt(r["from_version"]),
            fmt(r["to_version"]),
            r["actor"],
            " ".join(str(r["reason"] or "").split()),
        ]
        for r in rows
    ]
    show(cols, cells, title=f"alias history of {project.config.model_name}")
    return 0


@commands.command(
    "whoami", "who you are on the project's MLflow store and what you may do", json=True
)
def whoami(as_json: bool) -> int:
    from workbench.registry.identity import identity

    project = load_project()
    me = identity(project)
    if as_json:
        print_json(me.to_dict())
        return 0
    print(f"user:  {me.user or 'anonymous'}")
    print(f"store: {me.store_location}")
    perm = f" ({me.permission})" if me.permission else ""
    print(f"model: {me.model}: {me.may()}{perm if me.can_edit_model else ''}")
    return 0
