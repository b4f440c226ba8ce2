"""SQL over the logs: read-only queries on the DuckDB views of every log (runs, metrics,
predictions, labels, drift, jobs, audit, ...), their output as a table, CSV or JSON, and a
per-project query history. Used by `workbench sql` and the TUI's SQL screen.

Only read-only statements run (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE,
EXPLAIN of one of those, PRAGMA without an assignment): the views live in the connection
the rest of Workbench queries, so nothing may drop or replace them, and nothing may write
files (COPY, EXPORT) or attach databases. Statements are classified by DuckDB's own parser,
not by matching words, so comments and case do not matter. Any error becomes one line.
"""

from __future__ import annotations

import base64
import csv
import fcntl
import io
import json
import math
import os
import re
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any
from uuid import UUID

import duckdb

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.store.db import Db

#: Rows a query returns at most by default (the TUI's table shows this many).
DEFAULT_LIMIT = 10_000
#: Queries kept in the history.
HISTORY_MAX = 200
HISTORY_FILE = "sql_history.json"
FORMATS = ("table", "csv", "json")
#: The views listed first, in this order; any other view follows, by name.
MAIN_VIEWS = ("runs", "metrics", "predictions", "labels", "drift", "jobs", "audit")
READ_ONLY = "only read-only queries are allowed (SELECT, WITH, DESCRIBE, SHOW, EXPLAIN, PRAGMA, SUMMARIZE, FROM)"  # noqa: E501
#: A cell wider than this is cut (with an ellipsis) in the plain-text table.
TABLE_CELL_MAX = 40

# Counting the rows past the limit reads them as Arrow batches (no Python objects); DuckDB
# warns that this copies them, which is what counting needs.
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)


class SqlError(WorkbenchError):
    """A query was refused or failed; the message is one line."""


@dataclass
class QueryResult:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    #: More rows than `rows` holds (the limit cut them).
    truncated: bool
    seconds: float
    #: Rows the query returned in all (== len(rows) unless truncated).
    row_count: int


# --- read-only check --------------------------------------------------------------------

_LEADING = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.S)
_EXPLAIN = re.compile(r"\Aexplain\b\s*(?:analy[sz]e\b\s*)?(?:\([^)]*\)\s*)?", re.I)
_PRAGMA = re.compile(r"\Apragma\s+(\w+)\s*(\(|;|\Z)", re.I)
#: PRAGMAs that only read (others change settings, or import a database over the views).
READ_PRAGMAS = frozenset(
    {
        "collations", "database_list", "database_size", "functions", "metadata_info",
        "platform", "show", "show_databases", "show_tables", "show_tables_expanded",
        "storage_info", "table_info", "user_agent", "version",
    }
)  # fmt: skip


def _strip_leading(sql: str) -> str:
    """The statement without the comments and whitespace before it."""
    return sql[_LEADING.match(sql).end() :]  # type: ignore[union-attr]


def _statements(sql: str) -> list[Any]:
    try:
        return list(duckdb.extract_statements(sql))
    except duckdb.Error as exc:
        raise SqlError(_one_line(exc)) from None


def check_read_only(sql: str) -> None:
    """Raise SqlError unless `sql` is exactly one read-only statement."""
    statements = _statements(sql)
    if not statements:
        raise SqlError("the query is empty")
    if len(statements) > 1:
        raise SqlError(f"one statement at a time (found {len(statements)})")
    _check_statement(statements[0], depth=0)


def _check_statement(statement: Any, depth: int) -> None:
    kind = statement.type
    text = _strip_leading(statement.query)
    if kind == duckdb.StatementType.SELECT:
        return
    if kind == duckdb.StatementType.PRAGMA:
        pragma = _PRAGMA.match(text)
        if pragma and pragma.group(1).lower() in READ_PRAGMAS:
            return
        which = f"PRAGMA {pragma.group(1)}" if pragma else "this PRAGMA"
        raise SqlError(
            f"{READ_ONLY}; {which} is not a read-only one ({', '.join(sorted(READ_PRAGMAS))})"
        )
    explain = _EXPLAIN.match(text)
    if kind == duckdb.StatementType.EXPLAIN and explain and depth == 0:
        # EXPLAIN ANALYZE runs what it explains: that must be read-only too.
        inner = _statements(text[explain.end() :])
        if len(inner) == 1:
            _check_statement(inner[0], depth + 1)
            return
    name = str(getattr(kind, "name", kind)).upper()
    raise SqlError(f"{READ_ONLY} (got {name})")


# --- running ----------------------------------------------------------------------------


def _view_names(cur: duckdb.DuckDBPyConnection) -> list[str]:
    names = [
        row[0]
        for row in cur.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main'"
        ).fetchall()
    ]
    rank = {name: i for i, name in enumerate(MAIN_VIEWS)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


_LINE = re.compile(r"^LINE (\d+): ?(.*)$")


def _one_line(exc: BaseException, view_names: Sequence[str] = ()) -> str:
    """DuckDB's message in one line: its first line, the hints after it (did you mean,
    candidate bindings), where it happened, and for a missing table the views there are."""
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    parts = [lines[0].strip()]
    where = ""
    missing_table = lines[0].startswith("Catalog Error: Table") and "does not exist" in lines[0]
    for i, line in enumerate(lines[1:], start=1):
        line = line.rstrip()
        match = _LINE.match(line)
        if match:
            caret = lines[i + 1] if i + 1 < len(lines) else ""
            col = caret.find("^") - (len(line) - len(match.group(2)))
            where = f"line {match.group(1)}" + (f", column {col + 1}" if col >= 0 else "")
            break
        if not line.strip():
            continue
        hint = line.strip()
        if missing_table and hint.startswith("Did you mean"):
            # DuckDB may suggest a catalog table (pg_collation): only views are worth naming.
            quoted = re.findall(r'"([^"]+)"', hint)
            if not quoted or quoted[0] not in view_names:
                continue
        parts.append(hint)
    text = " ".join(parts)
    if where:
        text += f" ({where})"
    if missing_table and view_names:
        text += f" (views: {', '.join(view_names)})"
    return text


def run_query(
    db: Db,
    sql: str,
    limit: int = DEFAULT_LIMIT,
    on_cursor: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> QueryResult:
    """Run one read-only statement; at most `limit` rows come back (0: all of them).

    `on_cursor` gets the cursor before the query starts (call its `interrupt()` from another
    thread to cancel). Raises SqlError, with one line, when the query is refused or fails."""
    check_read_only(sql)
    started = perf_counter()
    cursors: list[duckdb.DuckDBPyConnection] = []

    def attempt() -> QueryResult:
        cur = db.cursor()
        cursors.append(cur)
        cur.execute("SET TimeZone = 'UTC'")  # this cursor only: timestamps read as UTC
        if on_cursor is not None:
            on_cursor(cur)
        return _fetch(cur, sql, limit, started)

    try:
        # A file listed by a view vanished (deleted by hand, long after compaction, or an
        # S3 object gone since the listing): Db lists the files again and retries.
        return db.retrying(attempt)
    except duckdb.InterruptException:
        raise SqlError("the query was cancelled") from None
    except duckdb.Error as exc:
        try:
            views_there = _view_names(cursors[-1]) if cursors else []
        except duckdb.Error:
            views_there = []
        raise SqlError(_one_line(exc, views_there)) from None
    finally:
        for cur in cursors:
            cur.close()


def _fetch(cur: duckdb.DuckDBPyConnection, sql: str, limit: int, started: float) -> QueryResult:
    res = cur.execute(sql)
    description = res.description or []
    columns = [str(d[0]) for d in description]
    types = [str(d[1]) for d in description]
    if not description:
        rows: list[tuple[Any, ...]] = []
    elif limit > 0:
        rows = res.fetchmany(limit + 1)
    else:
        rows = res.fetchall()
    truncated = limit > 0 and len(rows) > limit
    count = len(rows)
    if truncated:
        rows = rows[:limit]
        # Count the rest without turning it into Python objects.
        reader = res.to_arrow_reader(100_000)
        count += sum(batch.num_rows for batch in reader) if reader is not None else 0
    return QueryResult(
        columns=columns,
        types=types,
        rows=[tuple(r) for r in rows],
        truncated=truncated,
        seconds=perf_counter() - started,
        row_count=count,
    )


def views(db: Db) -> dict[str, list[tuple[str, str]]]:
    """Every view, in a helpful order (runs, metrics, ... first): its (column, type) pairs."""
    cur = db.cursor()
    try:
        names = _view_names(cur)
        found: dict[str, list[tuple[str, str]]] = {name: [] for name in names}
        rows = cur.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE schema_name = 'main' ORDER BY table_name, column_index"
        ).fetchall()
    finally:
        cur.close()
    for table, column, kind in rows:
        if table in found:
            found[table].append((str(column), str(kind)))
    return found


# --- formatting -------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """A value JSON can hold: datetimes as ISO text, decimals as numbers, maps as objects,
    NaN and infinities as null."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    return str(value)


def cell_text(value: Any) -> str:
    """A value as text for a table or a CSV cell: NULL as '' (the table shows NULL), floats
    in full, datetimes in ISO form, lists and maps as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, dict | list | tuple):
        return json.dumps(jsonable(value), ensure_ascii=False)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def unique_names(columns: Sequence[str]) -> list[str]:
    """Column names made unique (`a`, `a_1`), so a JSON object keeps every column."""
    seen: set[str] = set()
    out = []
    for name in columns:
        new, n = name, 0
        while new in seen:
            n += 1
            new = f"{name}_{n}"
        seen.add(new)
        out.append(new)
    return out


def is_numeric(kind: str) -> bool:
    kind = kind.upper()
    return kind.startswith(("DECIMAL", "DOUBLE", "FLOAT", "REAL", "NUMERIC")) or kind in {
        "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
        "UINTEGER", "UBIGINT", "UHUGEINT",
    }  # fmt: skip


def format_result(result: QueryResult, fmt: str) -> str:
    """The rows as `table` (plain aligned text), `csv` (header row first) or `json` (a list
    of objects). Ends with a newline unless empty."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(result.columns)
        for row in result.rows:
            writer.writerow([cell_text(v) for v in row])
        return buf.getvalue()
    if fmt == "json":
        names = unique_names(result.columns)
        objects = [
            {name: jsonable(v) for name, v in zip(names, row, strict=True)} for row in result.rows
        ]
        return json.dumps(objects, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "table":
        return _plain_table(result)
    raise SqlError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")


def _ellipsize(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _plain_table(result: QueryResult) -> str:
    if not result.columns:
        return ""
    cells = [
        [_ellipsize("NULL" if v is None else cell_text(v), TABLE_CELL_MAX) for v in row]
        for row in result.rows
    ]
    widths = [len(c) for c in result.columns]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    numeric = [is_numeric(t) for t in result.types]

    def line(texts: Sequence[str]) -> str:
        out = [
            t.rjust(w) if num else t.ljust(w)
            for t, w, num in zip(texts, widths, numeric, strict=True)
        ]
        return "  ".join(out).rstrip()

    lines = [line(result.columns), "  ".join("-" * w for w in widths)]
    lines += [line(row) for row in cells]
    return "\n".join(lines) + "\n"


def summary(result: QueryResult) -> str:
    """'12 rows in 0.004 s', or 'first 10,000 of 52,311 rows in 0.3 s'."""
    rows = "row" if result.row_count == 1 else "rows"
    if result.truncated:
        head = f"first {len(result.rows):,} of {result.row_count:,} {rows}"
    else:
        head = f"{result.row_count:,} {rows}"
    return f"{head} in {result.seconds:.3f} s"


# --- history ----------------------------------------------------------------------------


def history_path(project: Project) -> Path:
    return project.store / HISTORY_FILE


def load_history(project: Project) -> list[str]:
    """The queries run before, oldest first, newest last (an unreadable file reads as none)."""
    try:
        data = json.loads(history_path(project).read_text())
    except (OSError, ValueError):
        return []
    items = data.get("queries", []) if isinstance(data, dict) else data
    if not isinstance(items, list):
        return []
    return [q for q in items if isinstance(q, str) and q.strip()][-HISTORY_MAX:]


def add_history(project: Project, sql: str) -> None:
    """Append `sql` as the newest query (an earlier copy of it is dropped); keep HISTORY_MAX.
    Written atomically under a lock: the CLI and the TUI may both add at once."""
    sql = sql.strip()
    if not sql:
        return
    path = history_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / "sql_history.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            queries = [q for q in load_history(project) if q != sql]
            queries.append(sql)
            tmp = path.parent / f".{HISTORY_FILE}.{uuid.uuid4().hex}.tmp"
            try:
                tmp.write_text(json.dumps({"queries": queries[-HISTORY_MAX:]}, indent=1))
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
