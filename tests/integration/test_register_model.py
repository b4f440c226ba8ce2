"""`workbench register MODEL_URI` for real: models logged by a plain MLflow script into the
project's store, and local model folders, adopted as versions of the project's model
(holdout metrics on probabilities, drift profile, audit row), then promoted and served."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.helpers import audit_rows, mlflow_client, run_cli
from tests.sklearn_projects import call, holdout, labelled_project, serving
from workbench.project import Project
from workbench.registry import versions as registry

pytestmark = pytest.mark.integration

PLAIN_SCRIPT = """
import sys
import mlflow, pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment(sys.argv[3])
df = pd.read_parquet(sys.argv[2]).head(400)
X, y = df.drop(columns=["target"]), df["target"]
with mlflow.start_run() as run:
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000)).fit(X, y)
    mlflow.log_param("C", 0.5)
    mlflow.sklearn.log_model(model, name="model", input_example=X.head(3))
    print("RUN", run.info.run_id)
"""


def _cli(capsys: pytest.CaptureFixture[str], project: Project, *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, *argv, "--project", str(project.root))


def _training_rows(project: Project, n: int = 400) -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_parquet(project.data_path).head(n)
    return frame.drop(columns=["target"]), frame["target"]


def test_a_model_a_plain_mlflow_script_logged_becomes_a_served_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow.sklearn
    from sklearn.metrics import log_loss, roc_auc_score

    from workbench.monitoring.checks import load_profile
    from workbench.store import tracking

    project = labelled_project(tmp_path / "cancer", "cancer")
    tracking.setup(project)  # the store and experiment a first `workbench` command made
    script = tmp_path / "notebook.py"
    script.write_text(textwrap.dedent(PLAIN_SCRIPT))
    args = [project.tracking_uri, str(project.data_path), project.experiment_name]
    done = subprocess.run(
        [sys.executable, str(script), *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split("RUN ")[-1].strip()

    uri = f"runs:/{run_id}/model"
    code, out, err = _cli(capsys, project, "register", uri, "--reason", "from the notebook")
    assert code == 0, err
    assert out.startswith(f"cancer v1 registered from {uri} (sklearn, run ")

    (v1,) = registry.list_versions(project)
    lr = mlflow.sklearn.load_model(uri)
    x, y = holdout(project)
    p = lr.predict_proba(x)[:, list(lr.classes_).index("malignant")]
    assert v1.metrics["holdout_auc"] == pytest.approx(roc_auc_score(y == "malignant", p), abs=1e-9)
    assert v1.metrics["holdout_logloss"] == pytest.approx(log_loss(y == "malignant", p), abs=1e-9)
    profile = load_profile(project, 1)  # every adopted version has its reference profile
    assert profile.prediction is not None and set(profile.features) == set(x.columns)

    client = mlflow_client(project)
    run = client.get_run(v1.run_id)
    assert run.info.experiment_id == client.get_experiment_by_name("cancer").experiment_id
    assert not (tmp_path / "mlruns").exists()
    assert run.data.tags["workbench.imported_from"] == uri
    assert run.data.params["C"] == "0.5" and run.data.params["trainer"] == "imported"
    assert run.inputs.dataset_inputs
    (row,) = [r for r in audit_rows(project) if r["action"] == "register"]
    assert row["to_version"] == 1 and row["reason"] == "from the notebook"
    assert json.loads(row["details"])["imported_from"] == uri

    data = tmp_path / "holdout.parquet"
    x.to_parquet(data)
    code, out, err = _cli(capsys, project, "drift", "--version", "1", "--data", str(data))
    assert code == 0, out + err
    assert "retrain" not in out + err

    # the run alone names its model too
    code, out, err = _cli(capsys, project, "register", f"runs:/{run_id}", "--json")
    assert code == 0, err
    assert json.loads(out)["version"] == 2

    code, _, err = _cli(capsys, project, "promote", "1", "--reason", "adopted")
    assert code == 0, err
    with serving(project) as port:
        status, body = call(port, "POST", "/predict", {k: float(v) for k, v in x.iloc[0].items()})
    assert status == 200, body
    assert body["version"] == 1
    assert body["prediction"] == pytest.approx(p[0], abs=1e-9)  # a probability, not a label
    assert 0.0 < body["prediction"] < 1.0


def test_a_local_model_folder_without_a_signature(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow.sklearn
    from mlflow.models import Model
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import roc_auc_score

    from workbench.serving.predictors import model_dir_for

    project = labelled_project(tmp_path / "cancer", "cancer")
    features, target = _training_rows(project)
    rf = RandomForestClassifier(n_estimators=20, random_state=1).fit(features, target)
    folder = tmp_path / "rf model"
    mlflow.sklearn.save_model(rf, str(folder), serialization_format="cloudpickle")
    assert Model.load(str(folder / "MLmodel")).signature is None

    code, out, err = _cli(capsys, project, "register", str(folder), "--json")
    assert code == 0, err
    result = json.loads(out)
    x, y = holdout(project)
    p = rf.predict_proba(x)[:, list(rf.classes_).index("malignant")]
    assert result["metrics"]["holdout_auc"] == pytest.approx(
        roc_auc_score(y == "malignant", p), abs=1e-9
    )
    saved = Model.load(str(model_dir_for(project, result["version"]) / "MLmodel"))
    assert saved.signature is not None  # serving needs one: inferred from the holdout
    assert saved.signature.inputs.input_names() == list(x.columns)
    served = mlflow.pyfunc.load_model(str(model_dir_for(project, result["version"])))
    assert np.allclose(served.predict(x.head(20)), p[:20], atol=1e-12)

    # the same folder logged as plain run artifacts (no logged model): `runs:/<id>` finds it
    client = mlflow_client(project)
    run = client.create_run(client.get_experiment_by_name("cancer").experiment_id)
    client.log_artifacts(run.info.run_id, str(folder), "exported")
    code, out, err = _cli(capsys, project, "register", f"runs:/{run.info.run_id}", "--json")
    assert code == 0, err
    again = json.loads(out)
    assert again["version"] == result["version"] + 1
    assert again["metrics"]["holdout_auc"] == pytest.approx(result["metrics"]["holdout_auc"])


def test_missing_and_extra_columns_are_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    project = labelled_project(tmp_path / "cancer", "cancer")
    features, target = _training_rows(project)
    features = features.drop(columns=["mean radius"]).assign(**{"extra col": 1.0})
    model = LogisticRegression(max_iter=50).fit(features, target)
    folder = tmp_path / "model"
    mlflow.sklearn.save_model(model, str(folder), signature=infer_signature(features))

    code, out, err = _cli(capsys, project, "register", str(folder))
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "missing 'mean radius'" in err and "extra 'extra col'" in err
    assert registry.list_versions(project) == []


class _Labels:
    """A pyfunc model that answers hard labels only."""

    def predict(self, context: Any, model_input: pd.DataFrame) -> list[str]:
        return ["malignant" if r > 15 else "benign" for r in model_input["mean radius"]]


def test_a_model_that_only_gives_labels_is_refused_with_the_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    project = labelled_project(tmp_path / "cancer", "cancer")
    features, _ = _training_rows(project, 10)
    model = type("LabelModel", (mlflow.pyfunc.PythonModel,), {"predict": _Labels.predict})()
    folder = tmp_path / "labels"
    mlflow.pyfunc.save_model(str(folder), python_model=model, signature=infer_signature(features))
    code, _, err = _cli(capsys, project, "register", str(folder))
    assert code == 1
    assert "returns labels" in err and "predict_proba" in err
    assert registry.list_versions(project) == []


def test_a_regression_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import Ridge
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    project = labelled_project(tmp_path / "diabetes", "diabetes")
    features, target = _training_rows(project, 300)
    model = Ridge(alpha=0.1).fit(features, target)
    folder = tmp_path / "ridge"
    mlflow.sklearn.save_model(model, str(folder), signature=infer_signature(features))

    code, out, err = _cli(capsys, project, "register", str(folder), "--json")
    assert code == 0, err
    metrics = json.loads(out)["metrics"]
    x, y = holdout(project)
    predicted = model.predict(x)
    assert metrics["holdout_rmse"] == pytest.approx(mean_squared_error(y, predicted) ** 0.5)
    assert metrics["holdout_mae"] == pytest.approx(mean_absolute_error(y, predicted))
    (v1,) = registry.list_versions(project)
    assert v1.metrics["holdout_rmse"] == pytest.approx(metrics["holdout_rmse"], abs=1e-9)
