"""`workbench serve --workers 2` for real: two worker processes on one loopback port, a real
trained model, real Parquet prediction logs, the canary rule judged over both workers."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import helpers
from tests.helpers import free_port
from tests.integration.test_serving import Server, _register_failing_model, cli, predict_rows
from workbench.project import Project
from workbench.serving import deployments
from workbench.store.db import Db

pytestmark = pytest.mark.integration


def start_workers(root: Path, workers: int = 2, timeout: float = 90) -> Server:
    project = Project.load(root)
    port = free_port()
    cmd = [sys.executable, "-m", "workbench", "serve", "--project", str(root)]
    cmd += ["--port", str(port), "--runner", "local", "--workers", str(workers)]
    out = open(root / "serve.out", "wb")  # noqa: SIM115 - the server writes it until it stops
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(project, port, proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, (root / "serve.out").read_text()
        report = deployments.read_server(project)
        ready = report and report.get("applied_generation", -1) >= 0
        if ready and report and len(report.get("worker_pids", [])) == workers:
            break
        time.sleep(0.1)
    else:
        server.stop()
        raise AssertionError("the workers were not ready in time: " + output(server))
    import polars as pl

    path = project.data_path
    data = pl.read_csv(path) if path.suffix == ".csv" else pl.read_parquet(path)
    server.records = data.select(project.config.features).head(200).to_dicts()
    return server


def output(server: Server) -> str:
    return (server.project.root / "serve.out").read_text(errors="replace")


def one_connection_per_worker(server: Server, workers: int = 2) -> dict[int, Any]:
    return helpers.one_connection_per_worker(server.conn, workers, tries=200)


def post(conn: http.client.HTTPConnection, record: dict[str, Any]) -> tuple[int, Any, int]:
    conn.request("POST", "/predict", json.dumps(record), {"content-type": "application/json"})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    return resp.status, body, int(resp.getheader("x-worker-pid") or 0)


def metric_total(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pids: list[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids), pids


@pytest.fixture
def root(_trained_template: Path, tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "proj"
    shutil.copytree(_trained_template, root)
    config = root / "workbench.toml"
    config.write_text(config.read_text() + "\n[serving.canary]\nmin_requests = 20\nwindow_s = 30\n")
    yield root


def test_both_workers_answer_log_once_and_metrics_add_up(root: Path) -> None:
    server = start_workers(root)
    try:
        conns = one_connection_per_worker(server)
        report = deployments.read_server(server.project)
        assert report is not None and sorted(report["worker_pids"]) == sorted(conns)
        assert report["pid"] not in conns and report["workers"] == 2  # the supervisor's
        sent = 0
        for pid, conn in conns.items():
            for i in range(60):
                record = {**server.records[i], "request_id": f"w-{pid}-{i}"}
                status, body, answered_by = post(conn, record)
                assert status == 200 and answered_by == pid, body
                sent += 1
        # /metrics from either worker is the sum over both
        for conn in conns.values():
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
            got = metric_total(text, "workbench_requests_total", endpoint="/predict", status="200")
            assert got == sent
            assert metric_total(text, "workbench_predictions_total") == sent
            assert metric_total(text, "workbench_request_duration_seconds_count") == sent
            assert metric_total(text, "workbench_workers_up") == 2
            conn.close()
        pids = list(conns)
    finally:
        assert server.stop() == 0
    wait_gone(pids)
    rows = predict_rows(server.project, "request_id LIKE 'w-%'")
    assert len(rows) == sent and len({r["request_id"] for r in rows}) == sent
    text = output(server)
    assert "2 workers listen at" in text
    assert re.search(rf"stopped; {sent} predictions logged by 2 workers", text), text
    assert deployments.read_server(server.project) is None


def test_a_failing_canary_is_rolled_back_once_on_both_workers_counts(
    root: Path, tmp_path: Path
) -> None:
    server = start_workers(root)
    project = server.project
    try:
        version = _register_failing_model(project, tmp_path)
        production = deployments.production_version(project)
        deploy = ("deploy", str(version), "--canary", "--traffic", "100", "--wait", "120")
        if cli(project, *deploy) != 0 or not deployments.wait_applied(project, 1, 1):
            for pid in (deployments.read_server(project) or {}).get("worker_pids", []):
                os.kill(pid, signal.SIGUSR1)  # their stacks, in the output
            time.sleep(1)
            raise AssertionError("not applied by both workers: " + output(server))
        conns = one_connection_per_worker(server)
        # 12 failing requests on each worker: 24 >= min_requests (20), but neither worker
        # alone has 20, so only the merged counts can decide the rollback
        failures: dict[int, int] = {}
        for pid, conn in conns.items():
            for i in range(12):
                status, body, by = post(conn, server.records[i])
                assert status == 500 and "boom" in body["error"] and by == pid
                failures[pid] = failures.get(pid, 0) + 1
        assert sorted(failures.values()) == [12, 12]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and deployments.read_state(project).canary:
            time.sleep(0.1)
        state = deployments.read_state(project)
        assert state.canary is None, output(server)
        assert state.reason.startswith("auto-rollback: canary error rate 100.0%")
        assert "over 24 requests" in state.reason and "over 2 workers" in state.reason
        assert deployments.wait_applied(project, state.generation, 10)
        for pid, conn in conns.items():  # both workers route to production only now
            for i in range(10):
                status, body, by = post(conn, server.records[i])
                assert status == 200 and by == pid
                assert (body["variant"], body["version"]) == ("production", production)
            conn.close()
    finally:
        assert server.stop() == 0
    db = Db(project.logs)
    rows = db.rows("SELECT * FROM audit WHERE action = 'canary.rollback'")
    db.close()
    assert len(rows) == 1  # decided once
    assert json.loads(rows[0]["details"])["automatic"] is True
    assert [h["action"] for h in state.history].count("canary.rollback") == 1


def test_a_killed_worker_is_restarted_and_sigterm_stops_all(root: Path) -> None:
    server = start_workers(root)
    project = server.project
    try:
        conns = one_connection_per_worker(server)
        victim, survivor = list(conns)
        answered: list[str] = []
        for pid, conn in conns.items():
            for i in range(50):
                rid = f"k-{pid}-{i}"
                assert post(conn, {**server.records[i], "request_id": rid})[0] == 200
                answered.append(rid)
        time.sleep(2.0)  # twice the flush interval (1 s): those rows are on disk
        os.kill(victim, signal.SIGKILL)
        # the server keeps answering: new connections go to a live worker
        after: list[str] = []
        for i in range(40):
            conn = server.conn()
            rid = f"after-{i}"
            status, _, by = post(conn, {**server.records[i], "request_id": rid})
            conn.close()
            assert status == 200 and by != victim
            after.append(rid)
        deadline = time.monotonic() + 30
        report = deployments.read_server(project)
        while time.monotonic() < deadline:
            report = deployments.read_server(project)
            pids = set(report.get("worker_pids", [])) if report else set()
            if len(pids) == 2 and victim not in pids and report["applied_generation"] >= 0:
                break
            time.sleep(0.1)
        assert report is not None
        workers = set(report["worker_pids"])
        assert survivor in workers and victim not in workers and len(workers) == 2, output(server)
        assert f"(pid {victim}) was killed by SIGKILL; restarting it" in output(server)
        fresh = one_connection_per_worker(server)
        assert set(fresh) == workers  # the new worker answers too
        for conn in fresh.values():
            assert post(conn, server.records[0])[0] == 200
            conn.close()
        # SIGTERM to the supervisor alone: it stops both workers, which flush their logs
        os.kill(int(report["pid"]), signal.SIGTERM)
        wait_gone([int(report["pid"]), *workers])
        server.proc.wait(timeout=30)
    finally:
        if server.proc.poll() is None:
            server.stop()
    ids = {r["request_id"] for r in predict_rows(project, "request_id LIKE 'k-%'")}
    assert ids == set(answered)  # flushed before the kill, or by the survivor's stop
    later = {r["request_id"] for r in predict_rows(project, "request_id LIKE 'after-%'")}
    assert later == set(after)
    assert deployments.read_server(project) is None
    assert "stopped; " in output(server) and "by 2 workers" in output(server)
