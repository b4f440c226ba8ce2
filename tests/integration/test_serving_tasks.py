"""Serving follows the model's task, for real: three projects trained on scikit-learn's bundled
data sets (breast cancer: binary with string classes and column names with spaces; wine:
multiclass with string classes; diabetes: regression), each served by a real server on
loopback, with labels, a canary and the live metric checked against scikit-learn."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tests.integration.test_serving import Server, cli, start_server
from workbench.project import Project
from workbench.registry import versions as registry
from workbench.serving import deployments
from workbench.serving.predictors import model_dir_for
from workbench.store import mlflow_tables as mlflow_store
from workbench.store.db import Db
from workbench.tasks import ModelTask

pytestmark = pytest.mark.integration

TASKS = ("binary", "multiclass", "regression")
DATASETS = {"binary": "breast_cancer", "multiclass": "wine", "regression": "diabetes"}


def _write_project(root: Path, task: str) -> None:
    """A project folder from a scikit-learn data set: classes as their names (strings)."""
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{DATASETS[task]}")(as_frame=True)
    frame = bunch.frame
    if task != "regression":
        frame["target"] = [str(bunch.target_names[i]) for i in frame["target"]]
    (root / "data").mkdir(parents=True)
    pl.from_pandas(frame).write_parquet(root / "data" / "data.parquet")
    kind = {c: "float" for c in frame.columns}
    kind["target"] = "float" if task == "regression" else "str"
    schema = "".join(f'[schema."{c}"]\ntype = "{kind[c]}"\n' for c in frame.columns)
    (root / "workbench.toml").write_text(
        f'[project]\nname = "{DATASETS[task]}"\n'
        '[data]\npath = "data/data.parquet"\ntarget = "target"\nsplit = "random"\n'
        f'[task]\ntype = "{task}"\n[validation]\nmin_rows = 10\n'
        "[trainer.params]\nnum_iterations = 15\n"
        "[serving.canary]\nmin_requests = 20\nwindow_s = 30\n" + schema
    )


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Project]:
    """Each task's project, trained once (v1, production) and its model registered again as
    v2 (a second version for the canary)."""
    out = {}
    for task in TASKS:
        root = tmp_path_factory.mktemp(task) / DATASETS[task]
        _write_project(root, task)
        assert cli(Project.load(root), "pipeline", "run", "--runner", "local", "-q",
                   "--auto-promote") == 0  # fmt: skip
        project = Project.load(root)
        v1 = mlflow_store.read_model_versions(project.mlflow_db, project.config.model_name)[0]
        assert v1.run_id and v1.source
        assert registry.register(project, v1.run_id, v1.source) == 2
        out[task] = project
    return out


@pytest.fixture(scope="module", params=TASKS)
def served(request: pytest.FixtureRequest, projects: dict[str, Project]) -> Iterator[Server]:
    server = start_server(projects[request.param])
    yield server
    server.stop()


def _task(server: Server) -> ModelTask:
    return ModelTask.load(model_dir_for(server.project, 1))


def _expected(server: Server, records: list[dict[str, Any]]) -> np.ndarray:
    """What MLflow's own loader scores for these records."""
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(str(model_dir_for(server.project, 1)))
    return np.asarray(model.predict(pd.DataFrame(records)), dtype=float)


def _targets(server: Server, n: int) -> list[Any]:
    return pl.read_parquet(server.project.data_path)["target"].head(n).to_list()


def _logged(project: Project, prefix: str, n: int, timeout: float = 15) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        db = Db(project.logs)
        try:
            rows = db.rows(
                "SELECT * FROM predictions WHERE request_id LIKE $1 ORDER BY request_id",
                [f"{prefix}%"],
            )
        finally:
            db.close()
        if len(rows) >= n:
            return rows
        time.sleep(0.2)
    raise AssertionError(f"{len(rows)} of {n} predictions {prefix}* logged")


def _labels_log(project: Project, prefix: str) -> dict[str, float]:
    db = Db(project.logs)
    try:
        rows = db.rows("SELECT request_id, label FROM labels WHERE request_id LIKE $1", [prefix])
    finally:
        db.close()
    return {r["request_id"]: r["label"] for r in rows}


# --- responses per task ---------------------------------------------------------------------


def test_single_and_batch_responses_follow_the_task(served: Server) -> None:
    task = _task(served)
    records = served.records[:40]
    expected = _expected(served, records)
    tagged = [{**r, "request_id": f"resp-{i:03d}"} for i, r in enumerate(records)]
    status, one = served.call("POST", "/predict", tagged[0])
    assert status == 200, one
    status, batch = served.call("POST", "/predict", tagged[1:])
    assert status == 200, batch
    rest = expected[1:]
    if task.type == "binary":
        assert task.classes == ["benign", "malignant"]
        assert one["prediction"] == pytest.approx(expected[0], abs=1e-9)
        assert one["label"] == ("malignant" if expected[0] >= 0.5 else "benign")
        assert batch["predictions"] == pytest.approx(list(rest), abs=1e-9)
        assert batch["labels"] == [task.classes[int(p >= 0.5)] for p in rest]
        assert set(batch["labels"]) == {"benign", "malignant"}
        logged = list(expected)
    elif task.type == "multiclass":
        assert task.classes == ["class_0", "class_1", "class_2"]
        assert expected.shape == (40, 3)
        assert one["prediction"] == task.classes[int(expected[0].argmax())]
        assert list(one["probabilities"]) == task.classes
        assert list(one["probabilities"].values()) == pytest.approx(list(expected[0]), abs=1e-9)
        assert batch["predictions"] == [task.classes[int(i)] for i in rest.argmax(axis=1)]
        got = np.array([list(p.values()) for p in batch["probabilities"]])
        assert np.abs(got - rest).max() < 1e-9
        logged = [float(i) for i in expected.argmax(axis=1)]
    else:
        assert one["prediction"] == pytest.approx(expected[0], abs=1e-9)
        assert batch["predictions"] == pytest.approx(list(rest), abs=1e-9)
        assert "label" not in one and "probabilities" not in one
        logged = list(expected)
    # the prediction log keeps one number per record: probability, class index, value
    rows = _logged(served.project, "resp-", 40)
    assert [r["output"] for r in rows] == pytest.approx(logged, abs=1e-9)


def test_column_names_with_spaces(served: Server) -> None:
    """Breast cancer's columns are "mean radius", "worst concave points"...: a record with
    them is answered 200, with MLflow's own probability, in every request format."""
    if _task(served).type != "binary":
        pytest.skip("the breast cancer data (binary) has the names with spaces")
    records = served.records[:5]
    assert any(" " in name for name in records[0])
    expected = _expected(served, records)
    status, body = served.call("POST", "/predict", records)
    assert status == 200 and body["predictions"] == pytest.approx(list(expected), abs=1e-9)
    cols = list(records[0])
    split = {"columns": cols, "data": [[r[c] for c in cols] for r in records]}
    status, body = served.call("POST", "/invocations", {"dataframe_split": split})
    assert status == 200 and body["predictions"] == pytest.approx(list(expected), abs=1e-9)
    missing = {k: v for k, v in records[0].items() if k != "mean radius"}
    status, body = served.call("POST", "/predict", missing)
    assert status == 422 and body["error"].startswith('["mean radius"]: missing')


# --- labels -----------------------------------------------------------------------------------


def test_labels_name_classes_as_clients_know_them(served: Server, tmp_path: Path) -> None:
    task = _task(served)
    n = 6
    targets = _targets(served, n)
    for i in range(n):
        status, _ = served.call("POST", "/predict", {**served.records[i], "request_id": f"lab-{i}"})
        assert status == 200
    labels = [{"request_id": f"lab-{i}", "label": y} for i, y in enumerate(targets)]
    assert served.call("POST", "/labels", labels) == (200, {"accepted": n})
    stored = _labels_log(served.project, "lab-%")
    if task.type == "regression":
        assert stored == {f"lab-{i}": pytest.approx(y) for i, y in enumerate(targets)}
        status, body = served.call("POST", "/labels", [{"request_id": "x", "label": "high"}])
        assert status == 422 and body["error"] == "labels[0].label: expected a number, got 'high'"
        return
    assert stored == {f"lab-{i}": float(task.classes.index(y)) for i, y in enumerate(targets)}
    bad = [labels[0], {"request_id": "r-9", "label": "maybe"}]
    status, body = served.call("POST", "/labels", bad)
    classes = ", ".join(json.dumps(c) for c in task.classes)
    assert status == 422
    assert body["error"] == (
        f"labels[1].label: 'maybe' (request_id 'r-9') is not a class of the model "
        f"(classes: {classes})"
    )
    # `workbench labels ingest` reads the class names too, and refuses what is not a class
    csv = tmp_path / "labels.csv"
    pl.DataFrame({"request_id": ["f-0", "f-1"], "label": task.classes[:2]}).write_csv(csv)
    assert cli(served.project, "labels", "ingest", str(csv)) == 0
    assert _labels_log(served.project, "f-%") == {"f-0": 0.0, "f-1": 1.0}
    pl.DataFrame({"request_id": ["g-0", "g-1"], "label": [task.classes[0], "nope"]}).write_csv(csv)
    assert cli(served.project, "labels", "ingest", str(csv)) == 1
    assert _labels_log(served.project, "g-%") == {}


# --- the canary's live metric -----------------------------------------------------------------


def _sklearn_metrics(task: ModelTask, y: list[Any], outs: list[dict[str, Any]]) -> dict[str, float]:
    from sklearn.metrics import (
        accuracy_score,
        mean_absolute_error,
        mean_squared_error,
        roc_auc_score,
    )

    if task.type == "binary":
        truth = [task.classes.index(v) for v in y]
        return {"auc": roc_auc_score(truth, [o["prediction"] for o in outs])}
    if task.type == "multiclass":
        return {"accuracy": accuracy_score(y, [o["prediction"] for o in outs])}
    pred = [o["prediction"] for o in outs]
    return {
        "rmse": math.sqrt(mean_squared_error(y, pred)),
        "mae": mean_absolute_error(y, pred),
    }


def test_canary_status_reports_the_tasks_metric(
    served: Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    task = _task(served)
    project = served.project
    assert cli(project, "deploy", "2", "--canary", "--traffic", "50") == 0
    try:
        n = min(160, len(served.records))
        targets = _targets(served, n)
        answers: dict[str, list[tuple[Any, dict[str, Any]]]] = {"production": [], "canary": []}
        for i in range(n):
            record = {**served.records[i], "request_id": f"can-{i:03d}"}
            status, body = served.call("POST", "/predict", record)
            assert status == 200, body
            answers[body["variant"]].append((targets[i], body))
        labels = [{"request_id": f"can-{i:03d}", "label": y} for i, y in enumerate(targets)]
        assert served.call("POST", "/labels", labels)[0] == 200
        _logged(project, "can-", n)
        capsys.readouterr()
        assert cli(project, "canary", "status", "--json", "--window", "300") == 0
        report = json.loads(capsys.readouterr().out)
        assert report["task"]["type"] == task.type
        assert deployments.read_state(project).canary is not None  # not rolled back
        for variant, pairs in answers.items():
            assert len(pairs) >= 20, answers.keys()
            stats = report["variants"][variant]
            want = _sklearn_metrics(task, [y for y, _ in pairs], [b for _, b in pairs])
            assert stats["metric_name"] == next(iter(want))
            assert stats["labeled"] == len(pairs)
            assert stats["metrics"] == pytest.approx(want, abs=1e-9)
            assert stats["metric"] == pytest.approx(want[stats["metric_name"]], abs=1e-9)
            if variant == "production":  # its histogram holds the earlier tests' requests too
                continue
            assert sum(stats["prediction_hist"]) == len(pairs)
            if task.type == "multiclass":
                assert stats["hist_labels"] == task.classes
                counts = [sum(b["prediction"] == c for _, b in pairs) for c in task.classes]
                assert stats["prediction_hist"] == counts
                assert stats["prediction_mean"] is None
            elif task.type == "regression":
                values = [b["prediction"] for _, b in pairs]
                assert stats["hist_edges"][0] <= min(values)
                assert stats["hist_edges"][-1] >= max(values) > 1
        # the table names the metric too
        monkeypatch.setenv("COLUMNS", "200")  # rich's width: no cell cut short
        assert cli(project, "canary", "status", "--window", "300") == 0
        assert next(iter(want)) in capsys.readouterr().out
    finally:
        assert cli(project, "canary", "rollback", "--reason", "test done") == 0


def test_a_failing_canary_is_rolled_back_whatever_the_task(served: Server, tmp_path: Path) -> None:
    """The automatic rollback reads error rates and latencies, which every task has."""
    from tests.integration.test_serving import Load, _register_failing_model

    project = served.project
    version = _register_failing_model(project, tmp_path)
    assert cli(project, "deploy", str(version), "--canary", "--traffic", "50") == 0
    with Load(served, threads=2, prefix="auto") as load:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and deployments.read_state(project).canary:
            time.sleep(0.1)
    state = deployments.read_state(project)
    assert state.canary is None and state.reason.startswith("auto-rollback: canary error rate")
    assert load.failures and all(status == 500 for status, _ in load.failures)


def _register_sklearn_model(project: Project, task: ModelTask) -> tuple[int, Any, list[str]]:
    """A scikit-learn model fitted on the project's data, logged as MLflow's sklearn flavour
    (a classifier's pyfunc gives hard labels: serving must use predict_proba), its task
    file beside it; registered. Returns (version, the model, its feature columns)."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from workbench.store import tracking

    frame = pl.read_parquet(project.data_path).to_pandas()
    features = [c for c in frame.columns if c != "target"]
    model: Any = LinearRegression() if task.type == "regression" else LogisticRegression()
    if task.type != "regression":
        model.set_params(max_iter=5000)
    model.fit(frame[features], frame["target"])
    tracking.setup(project)
    with mlflow.start_run() as run:
        signature = infer_signature(frame[features].head(5))
        info = mlflow.sklearn.log_model(model, name="model", signature=signature)
    version = registry.register(project, run.info.run_id, info.model_uri)
    task.save(model_dir_for(project, version))
    return version, model, features


def test_an_sklearn_model_serves_through_the_scorer(served: Server) -> None:
    """Not a LightGBM model: scored through training.scoring (predict_proba for a classifier,
    its classes lined up with the task's), answered per the task like any other."""
    task = _task(served)
    project = served.project
    version, model, features = _register_sklearn_model(project, task)
    assert cli(project, "deploy", str(version), "--canary", "--traffic", "100") == 0
    try:
        records = served.records[:8]
        frame = pd.DataFrame(records)[features]
        status, body = served.call("POST", "/predict", records)
        assert status == 200, body
        assert body["version"] == version and body["variant"] == "canary"
        if task.type == "regression":
            assert body["predictions"] == pytest.approx(list(model.predict(frame)), abs=1e-9)
            return
        proba = model.predict_proba(frame)
        order = [list(model.classes_).index(c) for c in task.classes]
        proba = proba[:, order]
        if task.type == "binary":
            assert body["predictions"] == pytest.approx(list(proba[:, 1]), abs=1e-9)
            assert body["labels"] == [task.classes[int(p >= 0.5)] for p in proba[:, 1]]
        else:
            got = np.array([list(p.values()) for p in body["probabilities"]])
            assert np.abs(got - proba).max() < 1e-9
            assert body["predictions"] == [task.classes[i] for i in proba.argmax(axis=1)]
    finally:
        assert cli(project, "canary", "rollback", "--reason", "test done") == 0


# --- OpenAPI ----------------------------------------------------------------------------------


def test_openapi_follows_the_task(served: Server) -> None:
    import jsonschema_rs
    import schemathesis

    task = _task(served)
    status, spec = served.call("GET", "/openapi.json")
    assert status == 200
    schema = schemathesis.openapi.from_dict(spec)
    assert {op.ok().path for op in schema.get_all_operations()} >= {"/predict", "/labels"}
    schemas = spec["components"]["schemas"]
    assert set(schemas["Record"]["properties"]) >= set(served.records[0])
    one, batch = schemas["Prediction"]["properties"], schemas["BatchPrediction"]["properties"]
    if task.type == "binary":
        assert one["label"]["enum"] == task.classes and one["prediction"]["maximum"] == 1
        assert "mean radius" in schemas["Record"]["required"]
    elif task.type == "multiclass":
        assert one["prediction"]["enum"] == task.classes
        assert one["probabilities"]["required"] == task.classes
        assert batch["probabilities"]["items"]["required"] == task.classes
    else:
        assert one["prediction"] == {"type": "number"} and "label" not in one
    label = schemas["Label"]["properties"]["label"]
    if task.type == "regression":
        assert label["type"] == "number"
    else:
        assert label == {"enum": task.classes}

    # the server's answers are what the spec says
    def valid(name: str, value: Any) -> bool:
        ref = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        return bool(jsonschema_rs.validator_for(ref).is_valid(value))

    status, body = served.call("POST", "/predict", served.records[0])
    assert status == 200 and valid("Prediction", body) and not valid("BatchPrediction", body)
    status, body = served.call("POST", "/predict", served.records[:3])
    assert status == 200 and valid("BatchPrediction", body)
    assert valid("Record", served.records[0])
    assert valid("Label", {"request_id": "a", "label": _targets(served, 1)[0]})
    assert not valid("Label", {"request_id": "a", "label": "surely not a class"})
