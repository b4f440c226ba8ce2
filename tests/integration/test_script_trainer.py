"""The script trainer for real: a user's own train.py (plain MLflow, no Workbench import
needed) run as the training job by the local runner, on scikit-learn's breast cancer data
whose column names have spaces; the model it logged registered, scored and served."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.sklearn_projects import call, holdout, labelled_project, serving
from workbench.cli.main import main
from workbench.project import Project
from workbench.registry import versions as registry

pytestmark = pytest.mark.integration

TRAINER = '[trainer]\nplugin = "script"\ncommand = ["python", "train.py"]\n'

AUTOLOG = """
import json, os
import mlflow, pandas as pd
from sklearn.ensemble import RandomForestClassifier
from workbench.training import report_progress

target, features = os.environ["WORKBENCH_TARGET"], json.loads(os.environ["WORKBENCH_FEATURES"])
train = pd.read_parquet(os.environ["WORKBENCH_TRAIN_PATH"])
valid = pd.read_parquet(os.environ["WORKBENCH_VALID_PATH"])
assert os.path.isfile(os.environ["WORKBENCH_HOLDOUT_PATH"])
assert os.environ["WORKBENCH_TASK"] == "binary"
assert set(train[target]) == {"benign", "malignant"}, set(train[target])  # raw labels
print("rows", len(train), len(valid), "features", len(features))

mlflow.sklearn.autolog()
rf = RandomForestClassifier(n_estimators=25, random_state=0)
rf.fit(train[features], train[target])
report_progress(1, 1, valid_accuracy=rf.score(valid[features], valid[target]))

# An experiment of its own: its artifacts must stay in the project's store, not ./mlruns.
client = mlflow.MlflowClient()
scratch = client.create_experiment("scratch")
run = client.create_run(scratch)
client.log_text(run.info.run_id, "notes", "notes.txt")
client.set_terminated(run.info.run_id)
print("trained")
"""


def _project(tmp_path: Path, script: str) -> Project:
    project = labelled_project(tmp_path / "cancer", "cancer", TRAINER)
    (project.root / "train.py").write_text(textwrap.dedent(script))
    return project


def _run_pipeline(project: Project, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["pipeline", "run", "--runner", "local", "--project", str(project.root)])
    out, err = capsys.readouterr()
    return code, out + err


def test_an_autologged_random_forest_is_registered_scored_and_served(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.sklearn
    from sklearn.metrics import roc_auc_score

    from tests.helpers import mlflow_client
    from workbench.monitoring.checks import load_profile
    from workbench.serving.predictors import model_dir_for

    project = _project(tmp_path, AUTOLOG)
    monkeypatch.chdir(tmp_path)
    code, out = _run_pipeline(project, capsys)
    assert code == 0, out
    assert "trained" in out and "rows" in out  # the command's output is the job's log

    (v1,) = registry.list_versions(project)
    assert v1.version == 1
    model_dir = model_dir_for(project, 1)
    rf = mlflow.sklearn.load_model(str(model_dir))  # the user's flavour survives
    x, y = holdout(project)
    positive = list(rf.classes_).index("malignant")
    expected = roc_auc_score(y == "malignant", rf.predict_proba(x)[:, positive])
    assert v1.metrics["holdout_auc"] == pytest.approx(expected, abs=1e-9)
    assert v1.metrics["holdout_auc"] > 0.9
    assert "valid_accuracy" in v1.metrics  # from report_progress, logged at its step
    assert load_profile(project, 1).prediction is not None

    client = mlflow_client(project)
    run = client.get_run(v1.run_id)
    assert run.data.tags["workbench.trainer"] == "script"
    assert run.inputs.dataset_inputs  # the job's dataset input, in the same run
    scratch = client.get_experiment_by_name("scratch")
    assert Path(scratch.artifact_location.removeprefix("file://")).is_relative_to(project.store)
    assert not (tmp_path / "mlruns").exists() and not (project.root / "mlruns").exists()

    assert main(["promote", "1", "--reason", "test", "--project", str(project.root)]) == 0
    with serving(project) as port:
        record = {k: float(v) for k, v in x.iloc[0].items()}
        status, body = call(port, "POST", "/predict", record)
    assert status == 200, body
    assert body["prediction"] == pytest.approx(rf.predict_proba(x.iloc[:1])[0, positive], abs=1e-9)
    assert 0.0 <= body["prediction"] <= 1.0


def test_a_command_that_exits_3_fails_the_job_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path, "import sys\nprint('bad input', file=sys.stderr)\nsys.exit(3)\n")
    code, out = _run_pipeline(project, capsys)
    assert code == 1
    assert "your training command exited with 3: bad input" in out
    assert "Traceback" not in out
    assert registry.list_versions(project) == []


def test_a_command_that_logs_no_model_fails_the_job_naming_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path, "import mlflow\nmlflow.log_metric('loss', 0.5)\n")
    code, out = _run_pipeline(project, capsys)
    assert code == 1
    assert "your training command logged no model in run " in out
    assert "(call mlflow.<flavour>.log_model or autolog)" in out
    assert registry.list_versions(project) == []
    assert not (project.root / "mlruns").exists()


def test_check_config_names_a_missing_program(tmp_path: Path) -> None:
    from workbench.data.validation import config_problems

    project = labelled_project(tmp_path / "p", "cancer", TRAINER)
    assert config_problems(project.config) == []
    bad = project.config.model_copy(
        update={
            "trainer": project.config.trainer.model_copy(update={"command": ["no-such-prog-x"]})
        }
    )
    assert config_problems(bad) == [
        "[trainer].command: program 'no-such-prog-x' not found (on PATH or in the project)"
    ]
    unset = project.config.model_copy(
        update={"trainer": project.config.trainer.model_copy(update={"command": None})}
    )
    assert config_problems(unset)[0].startswith("[trainer].command: set your training command")
