"""The inference server for real: `workbench serve` on loopback (a local process), a real
trained model, real Parquet prediction logs read back through DuckDB."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import free_port
from workbench.cli.main import main
from workbench.project import Project
from workbench.registry import versions as registry
from workbench.serving import deployments
from workbench.store.db import Db

pytestmark = pytest.mark.integration


@dataclass
class Server:
    project: Project
    port: int
    proc: subprocess.Popen[bytes]
    records: list[dict[str, Any]] = field(default_factory=list)

    def conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        conn = self.conn()
        try:
            data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            conn.request(method, path, body=data, headers=headers or {})
            resp = conn.getresponse()
            text = resp.read()
        finally:
            conn.close()
        ctype = resp.getheader("content-type") or ""
        return resp.status, json.loads(text) if "json" in ctype else text.decode()

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout=30)


def start_server(
    project: Project, env: dict[str, str] | None = None, timeout: float = 60
) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "workbench", "serve", "--project", str(project.root)]
    cmd += ["--port", str(port), "--runner", "local"]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    server = Server(project, port, proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"the server exited: {out}")
        try:
            status, _ = server.call("GET", "/ready")
            if status == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        server.stop()
        raise AssertionError("the server was not ready in time")
    data = pl.read_csv(project.data_path) if project.data_path.suffix == ".csv" else None
    if data is None:
        data = pl.read_parquet(project.data_path)
    server.records = data.select(project.config.features).head(500).to_dicts()
    return server


@pytest.fixture(scope="module")
def served(_trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("served") / "proj"
    shutil.copytree(_trained_template, root)
    # judge the canary quickly in tests
    config = root / "workbench.toml"
    config.write_text(config.read_text() + "\n[serving.canary]\nmin_requests = 20\nwindow_s = 30\n")
    server = start_server(Project.load(root))
    yield server
    server.stop()


def predict_rows(project: Project, where: str = "TRUE") -> list[dict[str, Any]]:
    db = Db(project.logs)
    try:
        return db.rows(f"SELECT * FROM predictions WHERE {where}")
    finally:
        db.close()


# --- endpoints --------------------------------------------------------------------------


def test_health_ready_version_metrics_docs(served: Server) -> None:
    assert served.call("GET", "/health") == (200, {"status": "ok"})
    status, ready = served.call("GET", "/ready")
    assert status == 200 and ready["ready"] is True and ready["production"]["version"] == 1
    status, version = served.call("GET", "/version")
    assert status == 200 and version["model"] == served.project.config.model_name
    status, spec = served.call("GET", "/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.")
    assert "/predict" in spec["paths"] and "/labels" in spec["paths"]
    status, page = served.call("GET", "/docs")
    assert status == 200 and "/openapi.json" in page
    served.call("POST", "/predict", served.records[0])
    status, text = served.call("GET", "/metrics")
    assert status == 200
    assert "# TYPE workbench_requests_total counter" in text
    assert 'workbench_requests_total{endpoint="/predict",variant="production"' in text
    assert "workbench_request_duration_seconds_bucket" in text


def test_single_and_batch_predictions_match_the_model(served: Server) -> None:
    from workbench.serving.predictors import load_predictor, model_dir_for

    predictor = load_predictor(model_dir_for(served.project, 1), 1)
    expected = predictor.predict(served.records[:50])
    status, one = served.call("POST", "/predict", served.records[0])
    assert status == 200
    assert one["prediction"] == pytest.approx(expected[0], abs=1e-12)
    assert one["version"] == 1 and one["variant"] == "production" and one["request_id"]
    status, batch = served.call("POST", "/predict", served.records[:50])
    assert status == 200 and batch["predictions"] == pytest.approx(expected, abs=1e-12)
    assert len(set(batch["request_ids"])) == 50
    # MLflow's /invocations formats work unchanged
    status, mlf = served.call("POST", "/invocations", {"dataframe_records": served.records[:5]})
    assert status == 200 and mlf["predictions"] == pytest.approx(expected[:5], abs=1e-12)
    cols = list(served.records[0])
    split = {"columns": cols, "data": [[r[c] for c in cols] for r in served.records[:5]]}
    status, mlf = served.call("POST", "/invocations", {"dataframe_split": split})
    assert status == 200 and mlf["predictions"] == pytest.approx(expected[:5], abs=1e-12)


@pytest.mark.parametrize(
    ("mutate", "names"),
    [
        (lambda r: {**r, "amount": "lots"}, "amount"),
        (lambda r: {k: v for k, v in r.items() if k != "hour"}, "hour"),
        (lambda r: {**r, "hour": True}, "hour"),
        (lambda r: {**r, "merchant_category": 7}, "merchant_category"),
        (lambda r: {**r, "amout": 1.0}, "amout"),
    ],
)
def test_invalid_records_get_a_422_naming_the_field(
    served: Server, mutate: Any, names: str
) -> None:
    status, body = served.call("POST", "/predict", mutate(served.records[0]))
    assert status == 422
    assert body["error"].startswith(names + ":")
    assert body["detail"][0]["loc"] == ["body", names]
    # inside a batch the record's index is named too
    batch = [served.records[1], mutate(served.records[0])]
    status, body = served.call("POST", "/predict", batch)
    assert status == 422 and body["error"].startswith(f"records[1].{names}:")
    assert served.call("GET", "/health")[0] == 200


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"not json", b"[]", b"42", b'"x"', b"\xff\xfe", b'{"amount": NaN}', b"[1, 2]"],
)
def test_malformed_bodies_get_a_422_and_the_server_stays_up(served: Server, raw: bytes) -> None:
    status, body = served.call("POST", "/predict", raw=raw)
    assert status == 422, body
    assert isinstance(body["error"], str) and "\n" not in body["error"]
    assert served.call("GET", "/health")[0] == 200


def test_unknown_paths_and_methods(served: Server) -> None:
    assert served.call("GET", "/nope")[0] == 404
    assert served.call("GET", "/predict")[0] == 405
    assert served.call("DELETE", "/labels")[0] == 405


def test_labels_endpoint_joins_by_request_id(served: Server) -> None:
    ids = []
    for i in range(6):
        status, body = served.call(
            "POST", "/predict", {**served.records[i], "request_id": f"lab-{i}"}
        )
        assert status == 200
        ids.append(body["request_id"])
    assert ids == [f"lab-{i}" for i in range(6)]
    labels = [{"request_id": rid, "label": i % 2} for i, rid in enumerate(ids)]
    assert served.call("POST", "/labels", {"labels": labels}) == (200, {"accepted": 6})
    status, body = served.call("POST", "/labels", [{"request_id": "x", "label": "yes"}])
    assert status == 422 and "label" in body["error"]
    deadline = time.monotonic() + 10
    joined: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(joined) < 6:
        db = Db(served.project.logs)
        joined = db.rows(
            "SELECT p.request_id, l.label FROM predictions p JOIN labels l USING (request_id) "
            "WHERE p.request_id LIKE 'lab-%' ORDER BY 1"
        )
        db.close()
        time.sleep(0.2)
    assert [(r["request_id"], r["label"]) for r in joined] == [
        (f"lab-{i}", float(i % 2)) for i in range(6)
    ]


# --- load, logging, canary --------------------------------------------------------------


class Load:
    """Threads sending predict requests on keep-alive connections until stopped."""

    def __init__(self, server: Server, threads: int = 4, prefix: str = "load") -> None:
        self.server, self.prefix = server, prefix
        self.sent = 0
        self.failures: list[tuple[int, str]] = []
        self.variants: dict[tuple[str, int], int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(k,)) for k in range(threads)]

    def _run(self, k: int) -> None:
        conn = self.server.conn()
        i = 0
        while not self._stop.is_set():
            record = {**self.server.records[i % len(self.server.records)]}
            record["request_id"] = f"{self.prefix}-{k}-{i}"
            conn.request(
                "POST", "/predict", json.dumps(record), {"content-type": "application/json"}
            )
            resp = conn.getresponse()
            body = json.loads(resp.read())
            with self._lock:
                self.sent += 1
                if resp.status != 200:
                    self.failures.append((resp.status, str(body)))
                else:
                    key = (body["variant"], body["version"])
                    self.variants[key] = self.variants.get(key, 0) + 1
            i += 1
        conn.close()

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def wait_for(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        start = self.sent
        while self.sent - start < n and time.monotonic() < deadline:
            time.sleep(0.02)


def cli(project: Project, *args: str) -> int:
    return main([*args, "--project", str(project.root)])


def test_canary_split_sticky_promote_and_rollback_under_load(served: Server) -> None:
    project = served.project
    assert cli(project, "deploy", "2", "--canary", "--traffic", "30") == 0
    with Load(served, prefix="split") as load:
        load.wait_for(2000)
    assert not load.failures
    canary = load.variants.get(("canary", 2), 0)
    share = canary / load.sent
    assert abs(share - 0.30) < 0.05, load.variants  # binomial sd ~0.01 at 2,000 requests
    assert load.variants.get(("production", 1), 0) + canary == load.sent

    # sticky: the same key always gets the same variant
    assert cli(project, "canary", "rollback", "--reason", "switch to sticky") == 0
    assert cli(project, "deploy", "2", "--canary", "--traffic", "50", "--sticky-key", "hour") == 0
    seen: dict[Any, set[str]] = {}
    for record in served.records[:120]:
        status, body = served.call("POST", "/predict", record)
        assert status == 200
        seen.setdefault(record["hour"], set()).add(body["variant"])
    assert all(len(v) == 1 for v in seen.values())
    assert {v for vs in seen.values() for v in vs} == {"production", "canary"}

    # promote under load: no failed request, then everything is v2 production
    with Load(served, prefix="promote") as load:
        load.wait_for(300)
        assert cli(project, "canary", "promote", "--reason", "better auc") == 0
        load.wait_for(300)
    assert not load.failures
    assert registry.aliases(project)["production"] == 2
    status, ready = served.call("GET", "/ready")
    assert ready["production"]["version"] == 2 and ready["canary"] is None
    after = [served.call("POST", "/predict", r)[1] for r in served.records[:20]]
    assert {(b["variant"], b["version"]) for b in after} == {("production", 2)}

    # rollback under load: deploy v1 as the canary, then roll it back
    assert cli(project, "deploy", "1", "--canary", "--traffic", "50") == 0
    with Load(served, prefix="rollback") as load:
        load.wait_for(300)
        assert cli(project, "canary", "rollback", "--reason", "not needed") == 0
        load.wait_for(300)
    assert not load.failures
    assert ("canary", 1) in load.variants
    after = [served.call("POST", "/predict", r)[1] for r in served.records[:20]]
    assert {(b["variant"], b["version"]) for b in after} == {("production", 2)}

    db = Db(project.logs)
    actions = [r["action"] for r in db.rows("SELECT action FROM audit ORDER BY ts")]
    db.close()
    for action in ("canary.start", "canary.promote", "canary.rollback"):
        assert action in actions


def _register_failing_model(project: Project, tmp: Path) -> int:
    import mlflow
    from mlflow.models import Model

    from workbench.serving.predictors import model_dir_for
    from workbench.store import tracking

    signature = Model.load(str(model_dir_for(project, 1))).signature
    code = tmp / "failing_model.py"
    code.write_text(
        "import mlflow\n"
        "from mlflow.pyfunc import PythonModel\n\n"
        "class Failing(PythonModel):\n"
        "    def predict(self, context, model_input, params=None):\n"
        "        raise RuntimeError('boom: this model always fails')\n\n"
        "mlflow.models.set_model(Failing())\n"
    )
    tracking.setup(project)
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=str(code), signature=signature)
    return registry.register(project, run.info.run_id, info.model_uri)


def test_a_failing_canary_is_rolled_back_automatically(served: Server, tmp_path: Path) -> None:
    project = served.project
    version = _register_failing_model(project, tmp_path)
    production = deployments.production_version(project)
    assert cli(project, "deploy", str(version), "--canary", "--traffic", "50") == 0
    with Load(served, prefix="auto") as load:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and deployments.read_state(project).canary:
            time.sleep(0.1)
        load.wait_for(50)
    state = deployments.read_state(project)
    assert state.canary is None
    assert state.reason.startswith("auto-rollback: canary error rate")
    failures = [f for f in load.failures if f[0] == 500]
    assert failures and "boom" in failures[0][1]
    # after the rollback, production answers everything
    after = [served.call("POST", "/predict", r)[1] for r in served.records[:20]]
    assert {(b["variant"], b["version"]) for b in after} == {("production", production)}
    db = Db(project.logs)
    rows = db.rows("SELECT * FROM audit WHERE action = 'canary.rollback' ORDER BY ts DESC")
    db.close()
    assert json.loads(rows[0]["details"])["automatic"] is True
    assert rows[0]["actor"] == "auto-rollback"


def test_concurrent_load_every_prediction_is_logged(
    _trained_template: Path, tmp_path: Path
) -> None:
    root = tmp_path / "proj"
    shutil.copytree(_trained_template, root)
    server = start_server(Project.load(root))
    try:
        with Load(server, threads=8, prefix="all") as load:
            load.wait_for(3000)
        batch_ids = []
        for i in range(5):
            status, body = server.call("POST", "/predict", server.records[i * 100 : i * 100 + 100])
            assert status == 200
            batch_ids += body["request_ids"]
    finally:
        assert server.stop() == 0
    assert not load.failures
    rows = predict_rows(server.project, "request_id LIKE 'all-%'")
    assert len(rows) == load.sent
    assert len({r["request_id"] for r in rows}) == load.sent
    logged = predict_rows(server.project, "status = 200")
    assert {r["request_id"] for r in logged} >= set(batch_ids)
    row = rows[0]
    assert row["model"] == server.project.config.model_name and row["version"] == 1
    assert set(json.loads(row["features"])) == set(server.project.config.features)
    assert 0.0 <= row["output"] <= 1.0 and row["latency_ms"] > 0


def test_kill_9_mid_stream_leaves_readable_logs(_trained_template: Path, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    shutil.copytree(_trained_template, root)
    server = start_server(Project.load(root))
    report = deployments.read_server(server.project)
    assert report is not None
    with Load(server, threads=4, prefix="k9") as load:
        load.wait_for(1500)
        answered_before = load.sent
        time.sleep(2.0)  # twice the flush interval (1 s): those rows must be on disk
        os.kill(int(report["pid"]), signal.SIGKILL)  # the server process itself
        server.proc.wait(timeout=30)  # its starter notices and records the job
    rows = predict_rows(server.project, "request_id LIKE 'k9-%'")  # every file opens
    assert answered_before <= len(rows) <= load.sent  # lost: at most the last interval
    assert len({r["request_id"] for r in rows}) == len(rows)  # no duplicate from a half write
    assert deployments.read_server(server.project) is None  # its report is known stale
    # the dead server's report goes stale; a new server starts on the same project
    again = start_server(Project.load(root))
    assert again.stop() == 0


def test_bearer_token(_trained_template: Path, tmp_path: Path) -> None:
    root = tmp_path / "proj"
    shutil.copytree(_trained_template, root)
    server = start_server(Project.load(root), env={"WORKBENCH_SERVE_TOKEN": "s3cret"})
    try:
        record = server.records[0]
        assert server.call("GET", "/health")[0] == 200  # probes stay open
        assert server.call("POST", "/predict", record)[0] == 401
        wrong = {"authorization": "Bearer nope"}
        assert server.call("POST", "/predict", record, wrong)[0] == 401
        right = {"authorization": "Bearer s3cret"}
        assert server.call("POST", "/predict", record, right)[0] == 200
        assert server.call("GET", "/metrics")[0] == 401
    finally:
        server.stop()


def test_serve_errors_are_one_line(
    trained_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli(trained_project, "serve", "--port", str(port), "--runner", "local") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("workbench: error: cannot listen on 127.0.0.1:")
    assert str(port) in err and "\n" not in err
    assert cli(trained_project, "serve", "--alias", "nosuch", "--runner", "local") == 2
    assert "no version with alias 'nosuch'" in capsys.readouterr().err
    assert cli(trained_project, "deploy", "9", "--canary") == 2
    assert "has no version 9" in capsys.readouterr().err
    assert cli(trained_project, "deploy", "2", "--canary", "--traffic", "0") == 2
    assert "--traffic" in capsys.readouterr().err
    assert cli(trained_project, "canary", "promote", "--reason", "x") == 2
    assert "no canary" in capsys.readouterr().err


# --- property-based: whatever the body, a 200 or a one-line 422, never a 500 ---------------

# Non-finite floats have no JSON spelling (json.dumps writes Infinity, which the body parser
# rejects as a whole: test_malformed_bodies covers that), so field values stay finite.
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_json)
def test_any_json_body_gets_a_200_or_a_one_line_422(served: Server, body: Any) -> None:
    status, answer = served.call("POST", "/predict", raw=json.dumps(body).encode())
    assert status in (200, 422), answer
    if status == 422:
        assert answer["error"] and "\n" not in answer["error"] and answer["detail"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_records_with_fields_of_any_type(served: Server, data: st.DataObject) -> None:
    record = dict(served.records[data.draw(st.integers(0, len(served.records) - 1))])
    names = sorted(record)
    for name in data.draw(st.lists(st.sampled_from(names), max_size=3, unique=True)):
        record[name] = data.draw(_json)
    status, answer = served.call("POST", "/predict", record)
    assert status in (200, 422), answer
    if status == 422:
        bad = answer["detail"][0]["loc"][-1]
        assert bad in names and answer["error"].startswith(f"{bad}:")
    assert served.call("GET", "/health")[0] == 200
