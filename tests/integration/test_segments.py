"""Segments for real: the inference server (in process, its real reconciler and logger)
labels the predictions it logs, labels arrive through `labels ingest`, `report()` and
`workbench segments` read them back; a freshly trained version stores its holdout's
fairness (fairness.json) beside the model."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.helpers import run_cli
from workbench.monitoring import segments
from workbench.project import Project
from workbench.serving import labels
from workbench.serving.prediction_log import PredictionLogger
from workbench.serving.server import InferenceServer

pytestmark = pytest.mark.integration

MONITORING = """
[monitoring]
segments = ["merchant_category", "is_foreign", "amount"]
sensitive = ["is_foreign"]
min_count = 30
bootstrap = 50
"""


async def _post(app: InferenceServer, body: bytes) -> dict[str, Any]:
    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": []}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 200, sent
    return json.loads(b"".join(m.get("body", b"") for m in sent[1:]))  # type: ignore[no-any-return]


def _serve_and_label(project: Project, frame: pl.DataFrame, tmp_path: Path) -> list[str]:
    """Serve the frame's rows (one batch request per 200) and ingest their true labels."""
    cfg = project.config
    logger = PredictionLogger(project.logs_root, interval_s=0.05)
    app = InferenceServer(project, logger)
    thread = threading.Thread(target=app.reconcile_forever, kwargs={"poll_s": 0.05})
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while app.routes is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.routes is not None, app.last_error
        ids: list[str] = []
        records = frame.select(cfg.features).to_dicts()
        for lo in range(0, len(records), 200):
            body = json.dumps({"dataframe_records": records[lo : lo + 200]}).encode()
            ids += asyncio.run(_post(app, body))["request_ids"]
    finally:
        app._stop.set()
        thread.join(timeout=30)
        logger.close()
    path = tmp_path / "labels.csv"
    pl.DataFrame({"request_id": ids, "label": frame[cfg.data.target].to_list()}).write_csv(path)
    assert labels.ingest(project, path) == len(ids)
    return ids


def test_segments_live_and_holdout(
    trained_project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(trained_project.root)
    code, out, err = run_cli(capsys, "--project", root, "segments")
    assert code == 2 and "[monitoring] segments" in err + out
    toml = trained_project.root / "workbench.toml"
    toml.write_text(toml.read_text().replace("num_iterations = 150", "num_iterations = 20"))
    toml.write_text(toml.read_text() + MONITORING)
    project = Project.load(trained_project.root)
    frame = pl.read_parquet(project.data_path).tail(1200)
    _serve_and_label(project, frame, tmp_path)
    # the server labelled every logged prediction; the amounts by the profile's quartiles
    rep = segments.report(project, window="1h").to_dict()
    assert rep["version"] == 1 and rep["task"] == "binary" and rep["metric"] == "auc"
    features = {g["feature"] for g in rep["groups"]}
    assert features == {"merchant_category", "is_foreign", "amount"}
    amounts = sorted(g["group"] for g in rep["groups"] if g["feature"] == "amount")
    assert len(amounts) == 4 and amounts[0].startswith("<")
    assert sum(g["count"] for g in rep["groups"] if g["feature"] == "is_foreign") == 1200
    online = next(g for g in rep["groups"] if g["group"] == "online_retail")
    assert online["labelled"] == online["count"] and online["positive_rate_ci"] is not None
    assert {f["measure"] for f in rep["fairness"]} >= {"demographic_parity_difference"}
    assert all(f["source"] == "live" for f in rep["fairness"])  # v1: trained before
    code, out, _ = run_cli(capsys, "--project", root, "segments", "--window", "1h")
    assert code == (1 if rep["alerts"] else 0)
    assert max(len(line) for line in out.splitlines()) <= 80 and "online_retail" in out
    # a version trained now stores the holdout's specs, groups and fairness with it
    from workbench.jobs.control import resolve_runner
    from workbench.pipeline import flow
    from workbench.serving.predictors import model_dir_for
    from workbench.training import fairness

    result = flow.run(project, resolve_runner(project, "local"), auto_promote=False)
    assert result.version is not None
    stored = fairness.load(model_dir_for(project, result.version))
    assert stored is not None and stored["segments"]["is_foreign"]["kind"] == "discrete"
    assert len(stored["segments"]["amount"]["edges"]) == 3
    assert {g["group"] for g in stored["groups"] if g["feature"] == "is_foreign"} == {"0", "1"}
    assert stored["fairness"] and stored["fairness"][0]["source"] == "holdout"
    held = segments.report(project, window="1h", version=result.version).to_dict()
    assert held["groups"] == []  # nothing served by it yet
    assert {f["source"] for f in held["fairness"]} == {"holdout"}
