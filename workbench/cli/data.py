"""The data: `validate` (exit 2 for a config problem, 1 when the data fails) and
`schema infer` (the [schema] block a data file suggests)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from workbench.cli.common import Commands, console, load_project, print_json
from workbench.errors import WorkbenchError

commands = Commands()


@commands.command("validate", "validate the data snapshot (exit 1 when it fails)", json=True)
def validate(as_json: bool) -> int:
    """Exit 2 for a config problem (one line naming the key), 1 when the data fails. With
    --json the report is printed on stdout whatever happens (an error as `error`)."""
    if not as_json:
        return _validate(as_json=False)
    try:
        return _validate(as_json=True)
    except WorkbenchError as exc:
        print_json({"passed": False, "error": str(exc), "exit_code": exc.exit_code, "checks": []})
        print(f"workbench: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _validate(as_json: bool) -> int:
    from workbench.config import CONFIG_FILE
    from workbench.data.validation import check_config, render_report
    from workbench.pipeline import flow

    project = load_project()
    check_config(project.config, str(project.root / CONFIG_FILE))  # before reading the data
    report = flow.validate(project)
    if as_json:
        print_json(report.to_dict())
    else:
        con = console()
        con.print(render_report(report))
        verdict = "[green]passed[/]" if report.passed else "[red]FAILED[/]"
        con.print(
            f"{project.data_path.name}: {report.rows:,} rows, {verdict}: "
            f"{len(report.failures)} failure(s), {len(report.warnings)} warning(s)"
        )
    return 0 if report.passed else 1


schema = commands.group("schema", "the [schema] a data file suggests (schema infer FILE)")


@schema.action("infer", "print the [schema] block inferred from a data file")
@click.argument("file", metavar="FILE")
@click.option("--target", metavar="COLUMN", help="the target (its task is printed on stderr)")
@click.option("--timestamp", metavar="COLUMN", help="the time column (default: guessed)")
@click.option("--id", "id_column", metavar="COLUMN", help="the id column (default: guessed)")
def infer(file: str, target: str | None, timestamp: str | None, id_column: str | None) -> int:
    """Notes (guessed roles, columns left out, values that do not parse) go to stderr, so
    stdout is the TOML alone: `workbench schema infer data.csv >> workbench.toml`."""
    from workbench.data.infer import infer as infer_schema
    from workbench.data.snapshot import read_data
    from workbench.data.toml_text import schema_block

    read = read_data(Path(file).expanduser())
    result = infer_schema(
        read.frame, target=target, timestamp=timestamp, id_column=id_column, notes=read.notes
    )
    if result.task is not None:
        print(f"task: {result.task} ({result.task_reason})", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    sys.stdout.write(schema_block(result))
    return 0
