"""Shared logs in S3 (`[logs] uri`) against the real S3 server (seaweedfs): appends and reads
through the Db views, 8 writer processes with compactions running and a reader watching,
a writer killed with SIGKILL, `workbench sql` on a project with `[logs] uri`, bad buckets and
unreachable endpoints as one line."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_sql_console import CONFIG
from workbench.cli.main import main
from workbench.errors import DataError
from workbench.project import LogsRoot, Project
from workbench.store import s3_log
from workbench.store.db import Db
from workbench.store.parquet_log import ParquetLog, utcnow

pytestmark = pytest.mark.integration

WRITERS, APPENDS, ROWS = 8, 15, 10
COUNT = "SELECT count(*) AS n, count(DISTINCT request_id) AS d FROM predictions"


def _rows(tag: str, n: int) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {
            "ts": now,
            "request_id": f"{tag}-{i}",
            "model": "fraud",
            "version": 1,
            "variant": "production",
            "features": '{"amount": 1.0}',
            "output": 0.5,
            "latency_ms": 1.0,
            "status": 200,
        }
        for i in range(n)
    ]


def _count(root: LogsRoot) -> tuple[int, int]:
    with Db(root) as db:
        row = db.rows(COUNT)[0]
    return int(row["n"]), int(row["d"])


def _writer(root: LogsRoot, w: int, go: Any) -> None:
    s3_log.COMPACT_CHANCE = 0.3  # writers compact too, and race each other doing it
    s3_log.COMPACT_AT = 4
    go.wait()
    for i in range(APPENDS):
        ParquetLog(root, "predictions").append(_rows(f"w{w}-{i}", ROWS))


def _forever(root: LogsRoot, done: Any) -> None:
    """Appends 2000-row batches and compacts, until killed."""
    i = 0
    while True:
        ParquetLog(root, "predictions").append(_rows(f"k{i}", 2000))
        done.value = i = i + 1
        ParquetLog(root, "predictions").compact()


@pytest.fixture
def root(s3_bucket: str, tmp_path: Path) -> LogsRoot:
    return LogsRoot(tmp_path / "logs", f"{s3_bucket}/team")


def test_append_and_read_through_the_views(root: LogsRoot) -> None:
    ParquetLog(root, "predictions").append(_rows("a", 30))
    ParquetLog(root, "predictions").append(_rows("b", 10), partition={"date": "2026-01-02"})
    ParquetLog(root, "predictions").append(_rows("c", 10))
    ParquetLog(root, "labels").append(
        [{"ts": utcnow(), "request_id": "a-1", "label": 1.0, "source": "t"}]
    )
    ParquetLog(root, "runs").append([{"synced_at": utcnow(), "run_id": "r1"}])
    with Db(root) as db:
        assert db.rows(COUNT) == [{"n": 50, "d": 50}]
        got = db.rows(
            "SELECT p.request_id, l.label FROM predictions p JOIN labels l USING (request_id)"
        )
        assert got == [{"request_id": "a-1", "label": 1.0}]
        # a filter on a partition, in a worker thread's cursor
        cur = db.cursor()
        assert cur.execute("SELECT count(*) FROM predictions WHERE ts IS NOT NULL").fetchone()
    # shared logs are in S3, the runs index (a cache of MLflow) stays local
    assert all(u.startswith(root.uri or "-") for u in ParquetLog(root, "predictions").uris())
    assert not (root.local / "predictions").exists()
    assert len(ParquetLog(root, "runs").files()) == 1
    assert len(ParquetLog(root, "predictions").uris()) == 3
    assert ParquetLog(root, "predictions").compact() == 2  # today's two parts
    assert _count(root) == (50, 50)
    assert len(ParquetLog(root, "predictions").uris()) == 2  # one per partition


def test_eight_writers_with_compactions_and_a_reader(root: LogsRoot) -> None:
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(root, w, go)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    go.set()
    seen, reads, compactions = 0, 0, 0
    with Db(root) as db:
        while any(p.is_alive() for p in procs):
            n, d = (int(v) for v in db.query(COUNT).fetchone() or (0, 0))
            assert n == d, "a row counted twice"
            assert n % ROWS == 0, "half a file read"
            assert n >= seen, "rows went missing"
            seen, reads = n, reads + 1
            compactions += ParquetLog(root, "predictions").compact() > 0
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert _count(root) == (WRITERS * APPENDS * ROWS,) * 2
    assert reads >= 3 and compactions >= 1
    ParquetLog(root, "predictions").compact()
    assert _count(root) == (WRITERS * APPENDS * ROWS,) * 2
    assert len(ParquetLog(root, "predictions").uris()) == 1


def test_a_writer_killed_mid_append(root: LogsRoot) -> None:
    ctx = mp.get_context("spawn")
    done = ctx.Value("i", 0)
    proc = ctx.Process(target=_forever, args=(root, done))
    proc.start()
    deadline = time.monotonic() + 60
    while done.value < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.03)  # somewhere inside an append or a compaction
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    n, d = _count(root)
    assert n == d and n % 2000 == 0 and n >= 3 * 2000
    ParquetLog(root, "predictions").append(_rows("after", 5))
    ParquetLog(root, "predictions").compact()
    assert _count(root) == (n + 5, n + 5)


def _project(tmp_path: Path, uri: str) -> Project:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "workbench.toml").write_text(CONFIG + f'\n[logs]\nuri = "{uri}"\n')
    project = Project.load(root)
    project.ensure_store()
    return project


def test_sql_cli_reads_the_s3_log(
    s3_bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path, f"{s3_bucket}/team/")
    assert project.logs_root.uri == f"{s3_bucket}/team"
    # another server, elsewhere, writes to the same shared log
    ParquetLog(LogsRoot(tmp_path / "other", f"{s3_bucket}/team"), "predictions").append(
        _rows("srv2", 7)
    )
    capsys.readouterr()
    code = main(["sql", "--project", str(project.root), "--format", "csv", COUNT])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines() == ["n,d", "7,7"]


@pytest.mark.parametrize("where", ["bucket", "endpoint"])
def test_bad_bucket_or_endpoint_is_one_line(
    where: str,
    s3_bucket: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uri = "s3://wb-no-such-bucket-4f1e/p" if where == "bucket" else f"{s3_bucket}/p"
    if where == "endpoint":
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens
    project = _project(tmp_path, uri)
    with pytest.raises(DataError, match=r"^logs s3://"):
        ParquetLog(project.logs_root, "audit").append(
            [{"ts": utcnow(), "actor": "t", "action": "x"}]
        )
    capsys.readouterr()
    code = main(["sql", "--project", str(project.root), COUNT])
    _out, err = capsys.readouterr()
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and uri.split("/")[2] in lines[0] and "Traceback" not in err


def test_drift_reads_and_writes_the_s3_logs(
    trained_project: Project, s3_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.integration.test_drift_monitor import _rows as traffic
    from workbench.serving.prediction_log import PredictionLogger
    from workbench.serving.predictors import load_predictor, model_dir_for

    toml = trained_project.root / "workbench.toml"
    toml.write_text(toml.read_text() + f'\n[logs]\nuri = "{s3_bucket}/team"\n')
    project = Project.load(trained_project.root)
    frame = traffic(project, 500, drifted=True)
    records = frame.select(project.config.features).to_dicts()
    outputs = load_predictor(model_dir_for(project, 1), 1).predict(records)
    ids = [f"moved-{i}" for i in range(len(records))]
    with PredictionLogger(project.logs_root) as log:
        log.log_many(ids, project.config.model_name, 1, "production", records, outputs, 1.0)
    capsys.readouterr()
    assert main(["drift", "--last", "500", "--json", "--project", str(project.root)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["n_rows"] == 500 and report["status"] == "alert"
    with Db(project.logs_root) as db:
        logged = db.rows("SELECT feature FROM drift WHERE check_id = ?", [report["check_id"]])
    assert "amount" in {r["feature"] for r in logged}
    assert ParquetLog(project.logs_root, "drift").uris()[0].startswith(s3_bucket)
    assert not (project.logs / "predictions").exists() and not (project.logs / "drift").exists()
