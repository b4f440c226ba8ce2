"""SQL over the logs (workbench.store.sql_console): real DuckDB over real Parquet logs written with
ParquetLog, a real project store for the history."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from workbench.project import Project
from workbench.store import sql_console
from workbench.store.db import Db
from workbench.store.parquet_log import ParquetLog
from workbench.store.sql_console import (
    HISTORY_MAX,
    QueryResult,
    SqlError,
    add_history,
    check_read_only,
    format_result,
    load_history,
    run_query,
    views,
)

T0 = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)
RUNS = 5
POINTS = 30  # metric points per run
CONFIG = """\
[project]
name = "sqltest"

[data]
path = "data/x.parquet"
target = "y"
timestamp = "ts"
"""


def write_logs(logs: Path) -> None:
    """5 runs with metrics, 4 predictions (one failed) with 3 labels, 2 audit events, a job."""
    runs = []
    points = []
    for i in range(RUNS):
        runs.append(
            {
                "synced_at": T0,
                "run_id": f"run{i}",
                "experiment_id": "1",
                "experiment": "sqltest",
                "run_name": f"run-{i}",
                "status": "FINISHED" if i else "FAILED",
                "lifecycle_stage": "active",
                "user": "tester",
                "source": "test",
                "start_time": T0 + timedelta(minutes=i),
                "end_time": T0 + timedelta(minutes=i, seconds=30),
                "metrics": {"auc": 0.8 + i / 100, "logloss": 0.3 - i / 100},
                "params": {"lr": str(0.1 * (i + 1))},
                "tags": {},
                "fingerprint": f"fp{i}",
            }
        )
        for step in range(POINTS):
            points.append(
                {
                    "synced_at": T0,
                    "run_id": f"run{i}",
                    "key": "valid_auc",
                    "step": step,
                    "value": 0.5 + step / 100,
                    "timestamp": T0 + timedelta(minutes=i, seconds=step),
                }
            )
    ParquetLog(logs, "runs").append(runs, partition={"date": "2026-02-01"})
    ParquetLog(logs, "metrics").append(points, partition={"date": "2026-02-01"})
    predictions = [
        {
            "ts": T0 + timedelta(seconds=k),
            "request_id": f"r{k}",
            "model": "m",
            "version": 1 if k < 3 else 2,
            "variant": "production" if k < 3 else "canary",
            "features": json.dumps({"amount": k}),
            "output": None if k == 3 else 0.1 * k,
            "latency_ms": 2.0 + k,
            "status": 500 if k == 3 else 200,
            "error": "boom" if k == 3 else None,
        }
        for k in range(4)
    ]
    ParquetLog(logs, "predictions").append(predictions, partition={"date": "2026-02-01"})
    labels = [
        {"ts": T0 + timedelta(hours=1), "request_id": f"r{k}", "label": float(k % 2), "source": "t"}
        for k in range(3)
    ]
    ParquetLog(logs, "labels").append(labels, partition={"date": "2026-02-01"})
    audit = [
        {
            "ts": T0 + timedelta(minutes=10 * k),
            "actor": "tester",
            "action": action,
            "model": "m",
            "alias": "production",
            "from_version": None if k == 0 else 1,
            "to_version": k + 1,
            "reason": 'why, "quoted"\nand a second line',
            "details": "{}",
        }
        for k, action in enumerate(["promote", "rollback"])
    ]
    ParquetLog(logs, "audit").append(audit, partition={"date": "2026-02-01"})


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "workbench.toml").write_text(CONFIG)
    project = Project.load(root)
    project.ensure_store()
    write_logs(project.logs)
    return project


@pytest.fixture
def db(project: Project) -> Iterator[Db]:
    db = Db(project.logs)
    yield db
    db.close()


# --- results ----------------------------------------------------------------------------


def test_a_query_returns_columns_types_and_rows(db: Db) -> None:
    result = run_query(
        db,
        "SELECT run_name, status, metrics['auc'] AS auc, start_time, params "
        "FROM runs ORDER BY run_name",
    )
    assert result.columns == ["run_name", "status", "auc", "start_time", "params"]
    assert result.types == [
        "VARCHAR",
        "VARCHAR",
        "DOUBLE",
        "TIMESTAMP WITH TIME ZONE",
        "MAP(VARCHAR, VARCHAR)",
    ]
    assert result.row_count == len(result.rows) == RUNS
    assert not result.truncated
    assert result.seconds >= 0
    first = result.rows[0]
    assert first[:3] == ("run-0", "FAILED", pytest.approx(0.8))
    assert first[3] == T0 and first[3].utcoffset() == timedelta(0)  # read as UTC
    assert first[4] == {"lr": "0.1"}


def test_views_join_like_tables(db: Db) -> None:
    """Predictions joined with their labels: the point of SQL over every log."""
    result = run_query(
        db,
        "SELECT p.variant, count(*) AS n, count(l.label) AS labelled, "
        "sum(CASE WHEN p.status >= 500 THEN 1 ELSE 0 END) AS errors "
        "FROM predictions p LEFT JOIN labels l USING (request_id) GROUP BY 1 ORDER BY 1",
    )
    assert result.rows == [("canary", 1, 0, 1), ("production", 3, 3, 0)]
    assert result.types[1] == "BIGINT"


def test_views_lists_every_view_with_its_columns(db: Db) -> None:
    found = views(db)
    names = list(found)
    main = [n for n in names if n in sql_console.MAIN_VIEWS]
    assert {"runs", "metrics", "predictions", "labels", "jobs", "audit"} <= set(main)
    assert names[: len(main)] == main  # the main views come first
    assert main == [n for n in sql_console.MAIN_VIEWS if n in names]  # in the order
    assert "runs_versions" in names and "jobs_events" in names
    assert not any(n.startswith("_empty") for n in names)
    assert ("run_name", "VARCHAR") in found["runs"]
    assert ("metrics", "MAP(VARCHAR, DOUBLE)") in found["runs"]
    assert [c for c, _ in found["metrics"]] == ["run_id", "key", "step", "value", "timestamp"]
    assert found["jobs"], "a log with no files still has its columns"


def test_truncation_keeps_the_limit_and_counts_them_all(db: Db) -> None:
    total = RUNS * POINTS
    result = run_query(db, "SELECT * FROM metrics ORDER BY run_id, step", limit=10)
    assert result.truncated
    assert len(result.rows) == 10
    assert result.row_count == total
    assert [r[2] for r in result.rows] == list(range(10))
    assert sql_console.summary(result).startswith(f"first 10 of {total} rows in ")

    exact = run_query(db, "SELECT * FROM metrics", limit=total)
    assert not exact.truncated and exact.row_count == total == len(exact.rows)

    everything = run_query(db, "SELECT * FROM metrics", limit=0)
    assert not everything.truncated and len(everything.rows) == total


def test_the_default_limit_is_ten_thousand(db: Db) -> None:
    result = run_query(db, "SELECT * FROM range(10001)")
    assert result.truncated and len(result.rows) == 10_000 and result.row_count == 10_001


# --- read-only --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "DROP VIEW runs",
        "CREATE OR REPLACE VIEW runs AS SELECT 1",
        "CREATE TABLE t AS SELECT * FROM runs",
        "INSERT INTO _empty_audit SELECT * FROM _empty_audit",
        "DELETE FROM _empty_audit",
        "COPY (SELECT * FROM runs) TO '{out}'",
        "EXPORT DATABASE '{out}'",
        "ATTACH '{out}' AS other",
        "SET threads = 1",
        "EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}'",
        "PRAGMA threads = 2",
        "PRAGMA import_database('{out}')",
        "  -- a comment first\n  /* and another */ drop view runs",
        "CALL pragma_version()",
        "INSTALL httpfs",
    ],
)
def test_only_read_only_statements_run(db: Db, tmp_path: Path, sql: str) -> None:
    out = tmp_path / "written"
    with pytest.raises(SqlError) as err:
        run_query(db, sql.format(out=out))
    message = str(err.value)
    assert message.startswith("only read-only queries are allowed (SELECT, WITH, DESCRIBE")
    assert "\n" not in message
    assert not out.exists()
    assert run_query(db, "SELECT count(*) FROM runs").rows == [(RUNS,)]  # views intact


def test_one_statement_at_a_time(db: Db) -> None:
    with pytest.raises(SqlError, match=r"^one statement at a time \(found 2\)$"):
        run_query(db, "SELECT 1; DROP VIEW runs")
    assert run_query(db, "SELECT count(*) FROM runs").rows == [(RUNS,)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "WITH a AS (SELECT 1 AS x) SELECT x FROM a",
        "FROM runs",
        "DESCRIBE runs",
        "SHOW TABLES",
        "SUMMARIZE predictions",
        "EXPLAIN SELECT * FROM runs",
        "PRAGMA table_info('runs')",
        "VALUES (1, 'a')",
        "-- the newest runs\nSELECT * FROM runs;",
        "(SELECT 1) UNION ALL (SELECT 2)",
    ],
)
def test_read_only_statements_run(db: Db, sql: str) -> None:
    check_read_only(sql)
    result = run_query(db, sql)
    assert result.columns


# --- errors -----------------------------------------------------------------------------


def test_a_missing_table_names_the_views(db: Db) -> None:
    with pytest.raises(SqlError) as err:
        run_query(db, "SELECT * FROM nope")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("Catalog Error: Table with name nope does not exist!")
    assert "(views: runs, metrics, predictions, labels" in message
    assert "pg_" not in message  # DuckDB's own catalog tables are not suggested


def test_a_near_miss_suggests_the_view(db: Db) -> None:
    with pytest.raises(SqlError, match='Did you mean "runs"'):
        run_query(db, "SELECT * FROM run")


@pytest.mark.parametrize(
    ("sql", "start", "where"),
    [
        ("SELEC * FROM runs", "Parser Error: syntax error at or near", "(line 1, column 1)"),
        ("SELECT nope FROM runs", "Binder Error: Referenced column", "(line 1, column 8)"),
        ("SELECT 1 +", "Parser Error:", ""),
        ("SELECT * FROM read_parquet('/no/such/file.parquet')", "IO Error:", ""),
    ],
)
def test_errors_are_one_line(db: Db, sql: str, start: str, where: str) -> None:
    with pytest.raises(SqlError) as err:
        run_query(db, sql)
    message = str(err.value)
    assert message.startswith(start)
    assert "\n" not in message and "LINE 1" not in message
    assert where in message


def test_empty_query(db: Db) -> None:
    with pytest.raises(SqlError, match="empty"):
        run_query(db, "  -- nothing\n ")


def test_a_running_query_can_be_cancelled(db: Db) -> None:
    def cancel_soon(cursor: Any) -> None:
        threading.Timer(0.3, cursor.interrupt).start()

    started = time.monotonic()
    with pytest.raises(SqlError, match=r"^the query was cancelled$"):
        run_query(
            db,
            "SELECT sum(a.range * b.range) FROM range(1000000000) a, range(1000) b",
            on_cursor=cancel_soon,
        )
    assert time.monotonic() - started < 30
    assert run_query(db, "SELECT count(*) FROM runs").rows == [(RUNS,)]


# --- formats ----------------------------------------------------------------------------


def _mixed(db: Db) -> QueryResult:
    return run_query(
        db,
        "SELECT run_name, metrics, start_time, metrics['auc'] AS auc, NULL AS nothing, "
        "true AS flag, 'nan'::DOUBLE AS nan, 1.50::DECIMAL(5, 2) AS price, [1, 2] AS list "
        "FROM runs ORDER BY run_name",
    )


def test_csv_round_trip(db: Db) -> None:
    result = _mixed(db)
    text = format_result(result, "csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == result.columns
    assert len(rows) == RUNS + 1
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["run_name"] == "run-0"
    assert json.loads(first["metrics"]) == {"auc": 0.8, "logloss": 0.3}
    assert datetime.fromisoformat(first["start_time"]) == T0
    assert float(first["auc"]) == 0.8
    assert first["nothing"] == "" and first["flag"] == "true" and first["price"] == "1.50"
    assert json.loads(first["list"]) == [1, 2]
    # Quotes, commas and newlines survive (the audit reasons hold all three).
    audit = run_query(db, "SELECT reason FROM audit")
    parsed = list(csv.reader(io.StringIO(format_result(audit, "csv"))))
    assert parsed[1] == ['why, "quoted"\nand a second line']


def test_json_round_trip(db: Db) -> None:
    result = _mixed(db)
    objects = json.loads(format_result(result, "json"))
    assert isinstance(objects, list) and len(objects) == RUNS
    first = objects[0]
    assert list(first) == result.columns
    assert first["run_name"] == "run-0"
    assert first["metrics"] == {"auc": 0.8, "logloss": 0.3}
    assert datetime.fromisoformat(first["start_time"]) == T0
    assert first["auc"] == 0.8
    assert first["nothing"] is None and first["flag"] is True
    assert first["nan"] is None  # NaN is not JSON
    assert first["price"] == 1.5
    assert first["list"] == [1, 2]


def test_json_keeps_every_column_of_the_same_name(db: Db) -> None:
    result = run_query(db, "SELECT 1 AS a, 2 AS a")
    assert json.loads(format_result(result, "json")) == [{"a": 1, "a_1": 2}]


def test_plain_table(db: Db) -> None:
    result = run_query(db, "SELECT run_name, metrics['auc'] AS auc, NULL AS n FROM runs LIMIT 2")
    lines = format_result(result, "table").splitlines()
    assert lines[0].split() == ["run_name", "auc", "n"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == 4
    assert "NULL" in lines[2]
    auc_end = lines[0].index("auc") + len("auc")
    assert lines[2][auc_end - 1] != " "  # numbers right-aligned under their header


def test_unknown_format(db: Db) -> None:
    with pytest.raises(SqlError, match="unknown format"):
        format_result(run_query(db, "SELECT 1"), "xml")


# --- history ----------------------------------------------------------------------------


def test_history_is_newest_last_and_deduped(project: Project) -> None:
    assert load_history(project) == []
    add_history(project, "SELECT 1")
    add_history(project, "  SELECT 2\n")
    add_history(project, "SELECT 1")
    add_history(project, "   ")
    assert load_history(project) == ["SELECT 2", "SELECT 1"]
    path = project.store / "sql_history.json"
    assert path.is_file()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_history_keeps_the_newest(project: Project) -> None:
    for i in range(HISTORY_MAX + 25):
        add_history(project, f"SELECT {i}")
    history = load_history(project)
    assert len(history) == HISTORY_MAX
    assert history[0] == "SELECT 25" and history[-1] == f"SELECT {HISTORY_MAX + 24}"


def test_a_broken_history_file_reads_as_empty(project: Project) -> None:
    (project.store / "sql_history.json").write_text("{not json")
    assert load_history(project) == []
    add_history(project, "SELECT 1")
    assert load_history(project) == ["SELECT 1"]


def test_history_from_threads_loses_nothing(project: Project) -> None:
    def add(k: int) -> None:
        for i in range(10):
            add_history(project, f"SELECT {k}, {i}")

    threads = [threading.Thread(target=add, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(load_history(project)) == 40
