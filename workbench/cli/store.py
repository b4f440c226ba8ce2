"""The project's store: `store migrate` (the embedded store copied to a team's MLflow)."""

from __future__ import annotations

import sys

import click

from workbench.cli.common import Commands, load_project, print_json

commands = Commands()

store = commands.group("store", "the project's MLflow store: migrate it to a team's MLflow")


@store.action("migrate", "copy the embedded store to a team's MLflow and verify it", json=True)
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URI",
    help="postgresql+psycopg2://user@host/db or http(s)://host:port",
)
@click.option(
    "--artifacts-destination",
    metavar="URI",
    help="where new experiments keep artifacts (needed for a database target): "
    "s3://bucket/prefix or a folder",
)
@click.option(
    "--name-prefix",
    default="",
    metavar="TEXT",
    help="put TEXT before every experiment and registered model name in the target",
)
@click.option("--dry-run", is_flag=True, help="print what would be copied; change nothing")
@click.option(
    "--progress-every",
    type=int,
    default=50,
    metavar="N",
    help="a progress line on stderr per N runs (default 50)",
)
@click.option(
    "--switch",
    is_flag=True,
    help="after a verified copy, set [store] tracking_uri in workbench.toml to the target",
)
def store_migrate(
    target: str,
    artifacts_destination: str | None,
    name_prefix: str,
    dry_run: bool,
    progress_every: int,
    switch: bool,
    as_json: bool,
) -> int:
    from workbench.errors import UsageError
    from workbench.registry import migrate

    if switch and dry_run:
        raise UsageError("--switch cannot go with --dry-run")
    project = load_project()
    opts = migrate.Options(
        target=target,
        artifacts_destination=artifacts_destination,
        prefix=name_prefix,
        dry_run=dry_run,
        every=progress_every,
    )
    result = migrate.migrate(project, opts, switch=switch)
    if switch and not result.differs:
        migrate.switch_config(project, target)
        result.switched = True
    if as_json:
        print_json(result.to_dict())
    else:
        _print(result)
    migrate.check(result)
    return 0


def _print(result: object) -> None:
    from rich.text import Text

    from workbench.cli.tables import Col, num, show
    from workbench.registry.migrate import Result

    assert isinstance(result, Result)
    if result.dry_run:
        rows = [[what, num(n)] for what, n in result.copy.items()]
        cols = [Col("what"), Col("would be copied", right=True)]
        show(cols, rows, title=f"dry run: to {result.target}")
        print("nothing was changed")
        return
    cols = [Col("what"), Col("source", right=True), Col("target", right=True), Col("check")]
    counts: list[list[str | Text]] = [
        [
            row["what"],
            num(row["source"]),
            num(row["target"]),
            Text("ok", style="green") if row["ok"] else Text("DIFFERS", style="red"),
        ]
        for row in result.counts
    ]
    show(cols, counts, title=f"migrated to {result.target}")
    copied = ", ".join(f"{n} {what}" for what, n in result.copy.items()) or "nothing new"
    print(f"copied now: {copied}")
    print(f"id mapping: {result.mapping_file}")
    if result.differs:
        return
    if result.switched:
        print("workbench.toml now has:")
    else:
        print("to use the target, put in workbench.toml (or rerun with --switch):")
    sys.stdout.write("\n".join(f"  {line}" for line in result.toml.splitlines()) + "\n")
