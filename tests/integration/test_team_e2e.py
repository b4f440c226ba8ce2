"""The whole loop on a team's services, all real and on 127.0.0.1: the authenticated MLflow
tracking server (PostgreSQL behind it, artifacts proxied to the S3 server), the logs in S3, a
Ray cluster for training, a server with two workers.

init -> pipeline on the Ray runner (the model lands in S3) -> promote as a user who may and
one who may not -> serve with two workers -> predictions into the shared logs -> drift ->
monitor. Nothing of it is written to the project's own `.workbench/` but caches.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.helpers import cli_json, free_port, one_connection_per_worker, run_cli
from tests.services import ALICE, BOB, ray_python, s3_keys, unique
from workbench.project import Project

pytestmark = pytest.mark.integration

ROWS = 1_500
REQUESTS = 240


def _team_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], store: str, logs: str, ray: str
) -> Project:
    root = tmp_path / "team"
    code, _, err = run_cli(
        capsys, "init", str(root), "--sample", "fraud_detection", "--rows", str(ROWS)
    )
    assert code == 0, err
    name = unique("wbteam_")
    toml = root / "workbench.toml"
    text = toml.read_text(encoding="utf-8")
    text = text.replace('name = "fraud_detection"', f'name = "{name}"', 1)
    text = text.replace('model_name = "fraud_detection"', f'model_name = "{name}"')
    text = re.sub(r"num_iterations = \d+", "num_iterations = 20", text)
    text += (
        f'\n[store]\ntracking_uri = "{store}"\n'
        f'\n[logs]\nuri = "{logs}"\n'
        f'\n[ray]\naddress = "{ray}"\npython = "{ray_python()}"\npending_timeout_s = 60\n'
        "\n[monitor]\nmin_rows = 100\n"
    )
    toml.write_text(text, encoding="utf-8")
    return Project.load(root)


def _as(monkeypatch: pytest.MonkeyPatch, who: tuple[str, str]) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", who[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", who[1])


def _call(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any, str]:
    """Status, body and the answering worker's pid (the x-worker-pid header)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={"content-type": "application/json"})
        resp = conn.getresponse()
        text = resp.read()
    finally:
        conn.close()
    is_json = "json" in (resp.getheader("content-type") or "")
    body = json.loads(text) if is_json else text.decode()
    return resp.status, body, resp.getheader("x-worker-pid") or ""


def _serve(project: Project, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    """`workbench serve --workers N` in the background, once every worker serves."""
    from workbench.serving import deployments

    port = free_port()
    cmd = [sys.executable, "-m", "workbench", "serve", "--project", str(project.root)]
    cmd += ["--port", str(port), "--runner", "local", "--workers", str(workers)]
    out = open(project.root / "serve.out", "wb")  # noqa: SIM115 - written until the server stops
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {(project.root / 'serve.out').read_text()}")
        report = deployments.read_server(project) or {}
        if (
            report.get("applied_generation", -1) >= 0
            and len(report.get("worker_pids", [])) == workers
        ):
            return proc, port
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("the workers were not ready in time")


def test_the_whole_loop_on_the_team_services(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    mlflow_server: str,
    s3_bucket: str,
    ray_address: str,
) -> None:
    project = _team_project(tmp_path, capsys, mlflow_server, f"{s3_bucket}/logs", ray_address)
    where = ["--project", str(project.root)]
    model = project.config.model_name

    # Train on the Ray cluster; the run and the model are on the tracking server, in S3.
    code, out, err = run_cli(capsys, *where, "pipeline", "run", "--runner", "ray", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["version"] == 1 and result["model"] == model
    assert not project.mlflow_db.exists()  # nothing in the embedded store
    run_id = result["run_id"]
    stored = [k for k in s3_keys("mlflow", "artifacts/") if f"/{run_id}/" in k or "/m-" in k]
    assert any(k.endswith("MLmodel") for k in stored), stored[:20]
    jobs = cli_json(capsys, *where, "jobs")
    assert any(j["runner"] == "ray" and j["status"] == "succeeded" for j in jobs)

    # Promote: alice may (she registered it), bob may not (READ only), in one line.
    code, _, err = run_cli(capsys, *where, "promote", "1", "--reason", "ship v1")
    assert code == 0, err
    _as(monkeypatch, BOB)
    code, _, err = run_cli(capsys, *where, "promote", "1", "--alias", "canary", "--reason", "b")
    assert code != 0 and err.strip().startswith("workbench: error: permission denied: user bob")
    assert "\n" not in err.strip()
    _as(monkeypatch, ALICE)
    moves = cli_json(capsys, *where, "history")
    assert ("production", 1) in [(m["alias"], m["to_version"]) for m in moves]

    # Serve with two workers; every prediction lands once in the shared (S3) log.
    data = pl.read_parquet(project.data_path) if project.data_path.suffix == ".parquet" else None
    if data is None:
        data = pl.read_csv(project.data_path)
    records = data.select(project.config.features).tail(REQUESTS).to_dicts()
    proc, port = _serve(project, workers=2)
    try:
        conns = one_connection_per_worker(
            lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=30), workers=2
        )
        for i, record in enumerate(records):
            pid, conn = list(conns.items())[i % 2]
            conn.request(
                "POST", "/predict", json.dumps(record), {"content-type": "application/json"}
            )
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200, body
            assert int(resp.getheader("x-worker-pid") or 0) == pid  # both workers answered
        for conn in conns.values():
            conn.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    code, out, err = run_cli(
        capsys, *where, "sql", "SELECT count(*) AS n FROM predictions", "--format", "json"
    )
    assert code == 0, err
    assert json.loads(out)[0]["n"] == REQUESTS
    bucket = s3_bucket.removeprefix("s3://")
    assert any(k.startswith("logs/predictions/") for k in s3_keys(bucket))
    assert not list((project.logs / "predictions").rglob("*.parquet"))  # none kept locally

    # Drift of those predictions against v1's reference, and the monitor's check, both
    # reading the shared log; the drift result is appended there too.
    code, out, err = run_cli(capsys, *where, "drift", "--last", str(REQUESTS), "--json")
    assert code in (0, 1), err  # 1: a feature alerts (the sample's last rows drift)
    report = json.loads(out)
    assert report["version"] == 1 and report["n_rows"] == REQUESTS
    assert any(k.startswith("logs/drift/") for k in s3_keys(bucket))
    code, out, err = run_cli(capsys, *where, "monitor", "--once", "--dry-run", "--json")
    assert code == 0, err
    checked = json.loads(out)
    assert checked["check"]["rows"] == REQUESTS and checked["error"] is None
