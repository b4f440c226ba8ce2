"""Every mutating CLI action writes its audit row, into one hash chain that `workbench audit
verify` replays (one trained project for the module); and two writers on an S3 log."""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import audit_rows, cli_json, run_cli
from workbench.project import LogsRoot, Project
from workbench.registry import audit, audit_chain, audit_verify
from workbench.store.parquet_log import ParquetLog

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def project(_trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("audited") / "trained"
    shutil.copytree(_trained_template, root)
    return Project.load(root)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _actions_after(project: Project, seen: int) -> list[str]:
    return [r["action"] for r in sorted(audit_rows(project), key=lambda r: r["seq"])[seen:]]


def test_each_mutating_action_writes_its_row(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ("--project", str(project.root))
    rows = audit_rows(project)
    # the pipeline that trained v1 and v2 registered them, audited
    assert [r["to_version"] for r in rows if r["action"] == "register"] == [1, 2]
    v1_run = json.loads(next(r for r in rows if r["action"] == "register")["details"])["run_id"]
    steps: list[tuple[tuple[str, ...], list[str]]] = [
        (("promote", "2", "--reason", "a"), ["promote"]),
        (("rollback", "--reason", "b"), ["rollback"]),
        (("deploy", "2", "--reason", "c", "--wait", "0"), ["promote", "deploy"]),
        (("deploy", "1", "--canary", "--traffic", "20", "--wait", "0"), ["canary.start", "deploy"]),
        (("canary", "traffic", "30", "--wait", "0"), ["canary.traffic"]),
        (("canary", "promote", "--reason", "d", "--wait", "0"), ["canary.promote"]),
        (("deploy", "2", "--canary", "--wait", "0"), ["canary.start", "deploy"]),
        (("canary", "rollback", "--reason", "e", "--wait", "0"), ["canary.rollback"]),
        (("register", f"runs:/{v1_run}", "--reason", "again"), ["register"]),
    ]
    for argv, expected in steps:
        seen = len(audit_rows(project))
        code, _, err = run_cli(capsys, *argv, *where)
        assert code == 0, (argv, err)
        assert _actions_after(project, seen) == expected, argv

    seen = len(audit_rows(project))
    port = str(_free_port())
    code, out, err = run_cli(
        capsys, "serve", "--detach", "--runner", "local", "--port", port, *where
    )
    assert code == 0, err
    job_id = out.split("(job ")[1].split(",")[0]
    assert _actions_after(project, seen) == ["serve.start"]
    code, _, err = run_cli(capsys, "stop", job_id, *where)
    assert code == 0, err
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(_actions_after(project, seen)) < 2:
        time.sleep(0.2)
    assert _actions_after(project, seen) == ["serve.start", "serve.stop"]
    start, stop = sorted(audit_rows(project), key=lambda r: r["seq"])[-2:]
    assert json.loads(start["details"]) == {
        "job_id": job_id,
        "version": 1,  # production since the canary's promotion
        "port": int(port),
        "runner": "local",
    }
    assert json.loads(stop["details"])["job_id"] == job_id

    # all of it one chain, which the CLI verifies
    head = cli_json(capsys, "audit", "head", *where)
    assert head["seq"] == len(audit_rows(project))
    code, out, _ = run_cli(capsys, "audit", "verify", "--head", head["hash"], *where)
    assert code == 0 and out.startswith(f"audit chain intact: {head['seq']} records, head ")
    listed = cli_json(capsys, "audit", "--limit", "3", *where)
    assert listed[0]["action"] == "serve.stop" and len(listed) == 3


def test_verify_exits_1_naming_the_tampered_record(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from workbench.store.parquet_log import SCHEMAS

    where = ("--project", str(project.root))
    plog = ParquetLog(project.logs_root, "audit")
    plog.compact()
    (path,) = plog.files()
    original = path.read_bytes()
    rows = sorted(pq.read_table(path, partitioning=None).to_pylist(), key=lambda r: r["seq"])
    rows[1]["reason"] = "nothing happened"
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMAS["audit"]), path)
    try:
        code, out, _ = run_cli(capsys, "audit", "verify", *where)
        assert code == 1
        assert out.startswith("audit chain broken at seq 2 (") and "changed" in out
        report = cli_json(capsys, "audit", "verify", *where, code=1)
        assert report["ok"] is False and report["problem"]["seq"] == 2
        code, _, err = run_cli(capsys, "audit", "verify", "--head", "abc", *where)
        assert code == 2 and "--head" in err
    finally:
        path.write_bytes(original)
    assert run_cli(capsys, "audit", "verify", *where)[0] == 0


def _s3_writer(local: str, uri: str, w: int, n: int, go: Any) -> None:
    go.wait()
    root = LogsRoot(Path(local), uri)
    for i in range(n):
        audit_chain.append(root, audit.make_row("set", "fraud", f"w{w}", None, i, f"{w}/{i}"))


def test_two_writers_on_an_s3_log_make_one_chain(s3_bucket: str, tmp_path: Path) -> None:
    uri = f"{s3_bucket}/team"
    ctx = mp.get_context("spawn")  # no S3 client crosses a fork
    go = ctx.Event()
    procs = [
        ctx.Process(target=_s3_writer, args=(str(tmp_path / f"w{w}"), uri, w, 6, go))
        for w in range(2)
    ]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    root = LogsRoot(tmp_path / "reader", uri)
    report = audit_verify.verify(root)
    assert report.ok, report.problem
    assert report.records == 12 and report.head_seq == 12
    reasons = sorted(r["reason"] for r in audit_chain.read_rows(root))
    assert reasons == sorted(f"{w}/{i}" for w in range(2) for i in range(6))
    assert ParquetLog(root, "audit").compact() == 12
    assert audit_verify.verify(root, report.head).ok
