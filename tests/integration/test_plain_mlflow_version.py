"""A version registered by a plain MLflow script (no Workbench import, no Workbench files
beside the model) gets its task and drift profile on first use, and is then served, checked
for drift and gated like any other: probabilities, never hard labels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.integration.test_serving import start_server
from tests.sklearn_projects import write_project
from workbench.cli.main import main
from workbench.project import Project
from workbench.store import tracking

pytestmark = pytest.mark.integration

SCRIPT = """
import sys, mlflow, polars as pl
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
uri, experiment, name, data = sys.argv[1:5]
mlflow.set_tracking_uri(uri)
mlflow.set_experiment(experiment)
df = pl.read_parquet(data).to_pandas()
X, y = df.drop(columns=["target"]), df["target"]
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
with mlflow.start_run():
    mlflow.sklearn.log_model(model, name="model", registered_model_name=name,
                             signature=infer_signature(X, model.predict(X)), input_example=X[:3])
print(model.predict_proba(X[:5])[:, 1].tolist())
"""


def test_a_version_registered_by_plain_mlflow(tmp_path: Path, capsys) -> None:
    root = write_project(tmp_path / "p", "binary")
    project = Project.load(root)
    tracking.setup(project)  # the store exists (a Workbench command ran once)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, project.tracking_uri, project.config.project.name,
         project.config.model_name, str(project.data_path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    expected = json.loads(done.stdout.strip().splitlines()[-1])

    from workbench.serving.predictors import model_dir_for

    model_dir = model_dir_for(project, 1)
    assert not (model_dir / "drift_profile.json").exists()
    capsys.readouterr()
    assert (
        main(
            [
                "--project",
                str(root),
                "drift",
                "--version",
                "1",
                "--data",
                str(project.data_path),
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "binary" and report["alerts"] == 0
    profile = json.loads((model_dir / "drift_profile.json").read_text())
    assert "built on first use" in profile["source"]
    assert profile["prediction"]["n"] > 50  # the model's own probabilities on the holdout
    assert json.loads((model_dir / "workbench_task.json").read_text())["classes"] == [0, 1]

    assert main(["--project", str(root), "promote", "1", "--reason", "plain mlflow"]) == 0
    server = start_server(project)
    try:
        got = []
        for record in server.records[:5]:
            status, body = server.call("POST", "/predict", record)
            assert status == 200, body
            got.append(body["prediction"])
            assert body["label"] in (0, 1)
    finally:
        server.stop()
    np.testing.assert_allclose(got, expected, rtol=1e-9)  # predict_proba, not labels
    assert not all(p in (0.0, 1.0) for p in got)


def test_a_plain_version_that_cannot_score_the_data_is_one_line(tmp_path: Path, capsys) -> None:
    root = write_project(tmp_path / "p", "regression")
    project = Project.load(root)
    tracking.setup(project)
    other = tmp_path / "other.parquet"
    import polars as pl

    pl.read_parquet(project.data_path).rename({"bmi": "body mass"}).write_parquet(other)
    script = (
        SCRIPT.replace("LogisticRegression(max_iter=500)", "Ridge()")
        .replace(
            "from sklearn.linear_model import LogisticRegression",
            "from sklearn.linear_model import Ridge",
        )
        .replace("print(model.predict_proba(X[:5])[:, 1].tolist())", "")
    )
    subprocess.run(
        [sys.executable, "-c", script, project.tracking_uri, project.config.project.name,
         project.config.model_name, str(other)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    capsys.readouterr()
    code = main(
        ["--project", str(root), "drift", "--version", "1", "--data", str(project.data_path)]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "version 1 has no reference profile, and making one failed" in err
    assert "Traceback" not in err
