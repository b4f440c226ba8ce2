"""Predictors on the real registered LightGBM models: the fast path scores exactly like
`mlflow.pyfunc` (Workbench's loader in the model's code/ folder); the pyfunc fallback serves
other models, including MLflow 3 logged models registered as `models:/m-<id>`."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from workbench.data.snapshot import load_frame
from workbench.project import Project
from workbench.serving.payloads import parse_records
from workbench.serving.predictors import (
    LightGBMPredictor,
    PyfuncPredictor,
    load_predictor,
    model_dir_for,
)
from workbench.serving.signature import Field, ModelError, read_signature
from workbench.store import mlflow_tables as mlflow_store
from workbench.tasks import ModelTask

pytestmark = pytest.mark.integration

FEATURES = [
    "amount",
    "merchant_category",
    "card_age_days",
    "hour",
    "distance_from_home_km",
    "num_tx_last_24h",
    "avg_amount_30d",
    "is_foreign",
    "device_score",
]


def data_records(project: Project, n: int) -> list[dict[str, Any]]:
    """`n` rows of the project's data as a client would send them (through JSON and
    parse_records, so types are what the server hands the predictor)."""
    frame = load_frame(project.data_path).select(FEATURES).drop_nulls().head(n)
    sig = read_signature(model_dir_for(project, 1))
    return parse_records(json.dumps(frame.to_dicts()).encode(), sig).records


def pyfunc_predict(model_dir: Path, records: list[dict[str, Any]]) -> list[float]:
    import mlflow.pyfunc

    out = mlflow.pyfunc.load_model(str(model_dir)).predict(pd.DataFrame(records))
    return [float(v) for v in out]


def doubler() -> Any:
    """A plain MLflow pyfunc model returning a one-column DataFrame."""
    import mlflow.pyfunc

    class Doubler(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def predict(self, context: Any, model_input: pd.DataFrame) -> pd.DataFrame:
            return model_input[["x"]] * 2.0

    return Doubler()


def assert_close(a: list[float], b: list[float]) -> None:
    assert len(a) == len(b)
    worst = max(abs(x - y) for x, y in zip(a, b, strict=True))
    assert worst <= 1e-9, worst


def test_model_dir_for_registered_versions(trained_project: Project) -> None:
    versions = {
        v.version: v.source
        for v in mlflow_store.read_model_versions(trained_project.mlflow_db, "fraud_detection")
    }
    assert set(versions) >= {1, 2}
    dirs = {v: model_dir_for(trained_project, v) for v in (1, 2)}
    assert dirs[1] != dirs[2]
    for version, path in dirs.items():
        assert (path / "MLmodel").is_file()
        assert (path / "model.lgb").is_file()
        assert versions[version] == path.as_uri()


def test_unknown_version_is_one_line(trained_project: Project) -> None:
    with pytest.raises(ModelError) as info:
        model_dir_for(trained_project, 7)
    assert str(info.value) == "model fraud_detection has no version 7"


def test_read_signature_of_the_real_model(trained_project: Project) -> None:
    sig = read_signature(model_dir_for(trained_project, 2))
    assert sig.names == FEATURES
    types = {f.name: f.type for f in sig.inputs}
    assert types["amount"] == "double"
    assert types["merchant_category"] == "string"
    assert types["card_age_days"] == "long"
    assert Field("amount", "double") in sig.inputs


def test_fast_path_agrees_with_mlflow_pyfunc(trained_project: Project) -> None:
    records = data_records(trained_project, 1500)
    # an unseen category and the categories at both ends of the trained list
    records[0] = {**records[0], "merchant_category": "never_seen_before"}
    records[1] = {**records[1], "merchant_category": "electronics"}
    records[2] = {**records[2], "merchant_category": "travel"}
    for version in (1, 2):
        model_dir = model_dir_for(trained_project, version)
        predictor = load_predictor(model_dir, version)
        assert isinstance(predictor, LightGBMPredictor)
        assert (predictor.version, predictor.model_dir) == (version, model_dir)
        assert predictor.signature == read_signature(model_dir)
        expected = pyfunc_predict(model_dir, records)
        # a single record, a small batch (one thread), a large batch (all threads)
        for start, stop in ((0, 1), (1, 2), (2, 3), (0, 50), (0, len(records))):
            got = predictor.predict(records[start:stop])
            assert all(type(v) is float for v in got)
            assert_close(got, expected[start:stop])
        assert_close(predictor.predict([records[0]]), [expected[0]])
        assert predictor.predict([]) == []


def test_unseen_category_scores_as_missing(trained_project: Project) -> None:
    model_dir = model_dir_for(trained_project, 2)
    predictor = load_predictor(model_dir, 2)
    rec = data_records(trained_project, 1)[0]
    unseen = predictor.predict([{**rec, "merchant_category": "zzz"}])
    assert unseen == pyfunc_predict(model_dir, [{**rec, "merchant_category": None}])
    assert_close(unseen, pyfunc_predict(model_dir, [{**rec, "merchant_category": "zzz"}]))


def test_single_record_predict_is_fast(trained_project: Project) -> None:
    predictor = load_predictor(model_dir_for(trained_project, 2), 2)
    one = data_records(trained_project, 1)
    for _ in range(200):
        predictor.predict(one)
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        predictor.predict(one)
    per_call = (time.perf_counter() - start) / n
    # ~20 µs here; a generous bound so a loaded CI machine does not flake
    assert per_call < 1e-3, per_call


def test_pyfunc_fallback_on_the_same_model(trained_project: Project, tmp_path: Path) -> None:
    """Without the lightgbm flavor, the model is served through mlflow.pyfunc, and scores
    the same as the fast path."""
    import yaml

    source = model_dir_for(trained_project, 2)
    copy = tmp_path / "model"
    shutil.copytree(source, copy)
    spec = yaml.safe_load((copy / "MLmodel").read_text())
    del spec["flavors"]["lightgbm"]
    (copy / "MLmodel").write_text(yaml.safe_dump(spec, sort_keys=False))
    slow = load_predictor(copy, 2)
    assert isinstance(slow, PyfuncPredictor)
    fast = load_predictor(source, 2)
    records = data_records(trained_project, 300)
    records[5] = {**records[5], "merchant_category": "unseen"}
    got = slow.predict(records)
    assert all(type(v) is float for v in got)
    assert_close(got, fast.predict(records))


def test_logged_model_source_and_pyfunc_fallback(trained_project: Project, tmp_path: Path) -> None:
    """An MLflow 3 logged model registered under the project's name: the version's source is
    models:/m-<id>, found through the logged_models table; served by mlflow.pyfunc."""
    import mlflow

    from workbench.store import tracking

    client = tracking.client(trained_project)
    exp_id = client.create_experiment("logged", artifact_location=(tmp_path / "art").as_uri())
    example = pd.DataFrame({"x": [1.5], "tag": ["a"]})
    with mlflow.start_run(experiment_id=exp_id) as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=doubler(), input_example=example)
    mv = client.create_model_version(
        trained_project.config.model_name, source=info.model_uri, run_id=run.info.run_id
    )
    version = int(mv.version)
    stored = mlflow_store.read_model_versions(trained_project.mlflow_db, "fraud_detection")
    assert next(v.source for v in stored if v.version == version).startswith("models:/m-")

    model_dir = model_dir_for(trained_project, version)
    assert (model_dir / "MLmodel").is_file()
    assert model_dir.is_relative_to(tmp_path / "art")
    ModelTask("regression", []).save(model_dir)  # its values are not probabilities
    predictor = load_predictor(model_dir, version)
    assert isinstance(predictor, PyfuncPredictor)
    assert predictor.signature.names == ["x", "tag"]
    body = json.dumps([{"x": 1, "tag": "a"}, {"x": 2.25, "tag": "b", "request_id": "r"}])
    parsed = parse_records(body.encode(), predictor.signature)
    assert predictor.predict(parsed.records) == [2.0, 4.5]


def test_a_version_whose_directory_has_no_mlmodel(trained_project: Project, tmp_path: Path) -> None:
    from workbench.store import tracking

    empty = tmp_path / "empty"
    empty.mkdir()
    client = tracking.client(trained_project)
    mv = client.create_model_version(trained_project.config.model_name, source=empty.as_uri())
    with pytest.raises(ModelError) as info:
        model_dir_for(trained_project, int(mv.version))
    assert str(info.value) == (
        f"model fraud_detection version {mv.version}: no MLmodel file in {empty}"
    )


def test_load_predictor_on_a_directory_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="MLmodel: no such file"):
        load_predictor(tmp_path, 1)
