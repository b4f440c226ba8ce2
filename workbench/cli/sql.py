"""`workbench sql`: read-only SQL over the views of every log."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import click

from workbench.cli.common import Commands, load_project
from workbench.errors import UsageError

commands = Commands()

# \b keeps click from rewrapping the examples
EPILOG = """\
\b
views: runs, metrics, predictions, labels, drift, jobs, audit (and the raw jobs_events,
runs_versions); `workbench sql "SHOW TABLES"` lists them, `workbench sql "DESCRIBE runs"`
a view's columns. Only read-only statements run. Examples:
  workbench sql "SELECT run_name, metrics['holdout_auc'] AS auc FROM runs ORDER BY auc DESC"
  workbench sql "SELECT variant, count(*), avg(latency_ms) FROM predictions GROUP BY 1"
  echo "FROM audit" | workbench sql - --format csv > audit.csv
"""


def _read_query(query: str) -> str:
    sql: str = sys.stdin.read() if query == "-" else query
    if not sql.strip():
        raise UsageError("the query is empty (pass it as an argument, or - to read stdin)")
    return sql


@commands.command(
    "sql", "run a read-only SQL query over the logs (runs, metrics, ...)", json=True, epilog=EPILOG
)
@click.argument("query", metavar="QUERY", help="the SQL statement, or - to read it from stdin")
@click.option(
    "--format",
    "format_",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    help="table (default), csv (with a header row) or json (a list of objects)",
)
@click.option(
    "--limit",
    type=int,
    default=10_000,
    metavar="N",
    help="print at most N rows (default 10000; 0: all); the count goes to stderr",
)
def sql(query: str, format_: str, limit: int, as_json: bool) -> int:
    from workbench.store import sql_console
    from workbench.store.db import Db

    if limit < 0:
        raise UsageError(f"--limit must be 0 (no limit) or more (got {limit})")
    fmt = "json" if as_json else format_
    project = load_project()
    text = _read_query(query)
    with contextlib.suppress(OSError):  # a read-only store: the query still runs
        sql_console.add_history(project, text)
    db = Db(project.logs_root)
    try:
        result = sql_console.run_query(db, text, limit=limit)
    finally:
        db.close()
    if fmt == "table":
        _print_table(result)
    else:
        sys.stdout.write(sql_console.format_result(result, fmt))
        sys.stdout.flush()
    note = sql_console.summary(result)
    if result.truncated:
        note += " (--limit 0 for all of them)"
    print(note, file=sys.stderr)
    return 0


def _print_table(result: Any) -> None:
    """The result as a table that fits the terminal (`tables.show`: a row per record, or
    `column  value` lines when too wide); piped, every column whole, however wide."""
    from rich.console import Console
    from rich.text import Text

    from workbench.cli.tables import Col, natural_width, show
    from workbench.store.sql_console import cell_text, is_numeric

    if not result.columns:
        return
    cols = [  # text may be cut (to 12), numbers and times never: too wide, a record a block
        Col(
            f"{name}\n{kind.lower()}",
            right=is_numeric(kind),
            cut=12 if kind.upper() in ("VARCHAR", "TEXT", "STRING", "JSON") else 0,
        )
        for name, kind in zip(result.columns, result.types, strict=True)
    ]
    rows = [
        [Text("NULL", style="dim") if v is None else Text(cell_text(v)) for v in row]
        for row in result.rows
    ]
    console = Console(highlight=False)
    if not console.is_terminal:  # piped: every column whole, however wide
        console.width = max(console.width, natural_width(cols, rows))
    show(cols, rows, out=console)
