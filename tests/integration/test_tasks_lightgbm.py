"""Three tasks end to end with the default trainer: pipeline, registry, plain MLflow scoring,
the champion scored on the same holdout; column names with spaces, commas and brackets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers import cli_json
from tests.sklearn_projects import frame, write_project
from workbench.cli.main import main
from workbench.project import Project
from workbench.tasks import METRICS, ModelTask


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_pipeline_per_task(tmp_path, capsys, task: str) -> None:
    df = frame(task)
    # names a user's data can have, which LightGBM itself would rewrite or refuse
    first, second = df.columns[0], df.columns[1]
    df = df.rename({first: f"{first}, [raw]", second: f'{second} "x": {{1}}'})
    root = write_project(tmp_path / task, task, df)
    result = cli_json(capsys, "--project", str(root), "pipeline", "run", "--runner", "local")
    metric = f"holdout_{METRICS[task][0]}"
    assert set(f"holdout_{m}" for m in METRICS[task]) <= set(result["metrics"])
    assert result["gate"]["metric"] == metric
    if task == "regression":
        assert 30 < result["metrics"]["holdout_rmse"] < 80  # diabetes: ~55 for a small GBM
    else:
        assert result["metrics"][metric] > 0.85

    # plain MLflow scores raw records, with the real column names, per task
    import mlflow.pyfunc

    from workbench.data import snapshot
    from workbench.serving.predictors import model_dir_for

    project = Project.load(root)
    model_dir = model_dir_for(project, 1)
    task_file = ModelTask.load(model_dir)
    assert task_file.type == task
    rows = snapshot.to_model_frame(snapshot.load_frame(project.data_path), project.config)[:7]
    out = np.asarray(mlflow.pyfunc.load_model(str(model_dir)).predict(rows))
    if task == "multiclass":
        assert out.shape == (7, 3) and np.allclose(out.sum(axis=1), 1.0)
        assert task_file.classes == [0, 1, 2]
    elif task == "binary":
        assert out.shape == (7,) and ((out >= 0) & (out <= 1)).all()
    else:
        assert out.shape == (7,) and out.std() > 1

    # a second run is gated against production scored on the same holdout, in its direction
    assert main(["--project", str(root), "promote", "1", "--reason", "first"]) == 0
    again = cli_json(capsys, "--project", str(root), "pipeline", "run", "--runner", "local")
    assert again["champion_version"] == 1
    gate = again["gate"]
    assert gate["champion"] == pytest.approx(result["metrics"][metric])  # same holdout, same model
    models = cli_json(capsys, "--project", str(root), "models")
    v2 = next(v for v in models["versions"] if v["version"] == 2)
    assert v2["metrics"]["champion_version"] == 1
    assert v2["metrics"][f"champion_{metric}"] == pytest.approx(gate["champion"])


def test_a_continuous_target_under_the_binary_task_fails_in_one_line(tmp_path, capsys) -> None:
    root = write_project(tmp_path / "p", "regression")
    toml = (root / "workbench.toml").read_text().replace('type = "regression"', 'type = "binary"')
    (root / "workbench.toml").write_text(toml)
    capsys.readouterr()
    assert main(["--project", str(root), "pipeline", "run", "--runner", "local"]) == 1
    assert "data validation failed" in capsys.readouterr().err  # before any job
    assert main(["--project", str(root), "validate", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    target = [c for c in report["checks"] if c["check"] == "target"]
    assert target and target[0]["status"] == "fail"
    assert "a binary task needs 2" in target[0]["detail"]
    assert "regression" in target[0]["detail"]
