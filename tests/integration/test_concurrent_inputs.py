"""Runs logging the same dataset at once (a sweep's parallel trials on Ray, two pipelines on
a shared server) all get their input: MLflow's store checks for the dataset row, then inserts
it, so concurrent writers race on its unique key; the training job's `log_inputs` tries
again. Real processes on a real MLflow SQLite store, released together."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

WRITERS = 6


def _log_one(uri: str, start_at: float, out: multiprocessing.Queue[str]) -> None:
    import mlflow
    import pandas as pd
    from mlflow.data.pandas_dataset import from_pandas

    from workbench.training.job import _log_input

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("race")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    dataset = from_pandas(frame, source="data.parquet", targets="y", name="data", digest="d1")
    with mlflow.start_run() as run:
        time.sleep(max(0.0, start_at - time.time()))
        try:
            _log_input(dataset)
            out.put(f"ok {run.info.run_id}")
        except Exception as exc:  # reported to the test, which fails on it
            out.put(f"failed {type(exc).__name__}: {str(exc)[:200]}")


def test_concurrent_runs_logging_one_dataset_all_get_it(tmp_path: Path) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.MlflowClient(tracking_uri=uri).create_experiment("race")  # the store made once
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[str] = ctx.Queue()
    start_at = time.time() + 12  # every process has imported mlflow and opened its run by then
    procs = [ctx.Process(target=_log_one, args=(uri, start_at, out)) for _ in range(WRITERS)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    assert [r for r in results if not r.startswith("ok ")] == []
    client = mlflow.MlflowClient(tracking_uri=uri)
    for line in results:
        run = client.get_run(line.split()[1])
        assert [d.dataset.digest for d in run.inputs.dataset_inputs] == ["d1"]
