"""The xgboost and sklearn trainers through the real pipeline (`pipeline run`, the local
runner, a real MLflow store) on scikit-learn's bundled breast cancer (binary), wine
(multiclass) and diabetes (regression) data, then the registered model read back with plain
`mlflow.pyfunc` and with Workbench's `load_scorer`, both on raw records. And XGBoost on CUDA
for real where a GPU is (skipped here otherwise)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from workbench.cli.main import main
from workbench.project import Project
from workbench.tasks import ModelTask
from workbench.training.evaluation import evaluate
from workbench.training.scoring import as_task_output, load_scorer

pytestmark = pytest.mark.integration

#: name -> (loader, task); cancer gets a categorical column with a bracket in its name too.
DATASETS = {
    "cancer": ("load_breast_cancer", "binary"),
    "wine": ("load_wine", "multiclass"),
    "diabetes": ("load_diabetes", "regression"),
}
BAND = "radius band [coarse]"
TRAINERS = {
    "xgboost": "n_estimators = 40\nmax_depth = 3\nearly_stopping_rounds = 10\n",
    "sklearn": "max_iter = 40\n",
}


def write_project(root: Path, name: str, plugin: str, extra: str = "") -> Project:
    """A project folder holding one of scikit-learn's datasets (as /tmp/ds.py writes them)."""
    from sklearn import datasets

    loader, task = DATASETS[name]
    df = getattr(datasets, loader)(as_frame=True).frame
    if name == "cancer":
        df[BAND] = np.where(df["mean radius"] > 14, "large", "small")
    (root / "data").mkdir(parents=True)
    pl.from_pandas(df).write_parquet(root / "data" / "data.parquet")

    def kind(col: str) -> str:
        if col == BAND:
            return "category"
        return "int" if col == "target" and task != "regression" else "float"

    schema = "".join(f'[schema."{c}"]\ntype = "{kind(c)}"\n' for c in df.columns)
    (root / "workbench.toml").write_text(
        f'[project]\nname = "{name}-{plugin}"\n[data]\npath = "data/data.parquet"\n'
        f'target = "target"\nsplit = "random"\n[task]\ntype = "{task}"\n'
        f'[validation]\nmin_rows = 10\n[trainer]\nplugin = "{plugin}"\n{extra}'
        f"[trainer.params]\n{TRAINERS[plugin]}{schema}"
    )
    return Project.load(root)


def _pipeline(project: Project, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    args = ["pipeline", "run", "--runner", "local", "--json", "--project", str(project.root)]
    assert main(args) == 0, capsys.readouterr().err
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    result: dict[str, Any] = json.loads(out)
    return result


def _records(project: Project) -> Any:
    frame = pl.read_parquet(project.root / "data" / "data.parquet")
    frame = frame.sample(60, seed=0)  # every class (wine's rows are sorted by class)
    return frame.select(project.config.features).to_pandas(), frame["target"]


@pytest.mark.parametrize("dataset", list(DATASETS))
@pytest.mark.parametrize("plugin", list(TRAINERS))
def test_pipeline_registers_a_model_that_scores_raw_records(
    plugin: str, dataset: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlflow
    import mlflow.pyfunc

    project = write_project(tmp_path / dataset, dataset, plugin)
    result = _pipeline(project, capsys)
    assert result["version"] == 1
    task = project.config.task.type
    metric = result["metrics"][f"holdout_{project.config.metric}"]
    assert (metric < 80) if task == "regression" else (metric > 0.85), result["metrics"]

    mlflow.set_tracking_uri(project.tracking_uri)
    mlflow.set_registry_uri(project.tracking_uri)
    uri = f"models:/{project.config.model_name}/1"
    model_dir = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / "dl")))
    flavours = json.dumps(sorted((model_dir / "MLmodel").read_text().split()))
    assert ("xgboost:" if plugin == "xgboost" else "sklearn:") in flavours
    mtask = ModelTask.load(model_dir)
    assert mtask.type == task

    records, target = _records(project)
    if dataset == "cancer":
        records.loc[0, BAND] = "medium"  # a category training never saw
    plain = mlflow.pyfunc.load_model(uri).predict(records)
    output = as_task_output(mtask, plain, len(records))
    scored = load_scorer(model_dir, mtask)(records)
    assert np.allclose(scored, output, atol=1e-6)
    y = target.to_numpy()
    if task == "regression":
        assert evaluate(task, y, scored)["r2"] > 0.3
    else:
        assert ((scored >= 0) & (scored <= 1)).all()
        index = [mtask.index_of(v) for v in y]
        got = evaluate(task, np.array(index), scored)
        assert got["auc" if task == "binary" else "macro_f1"] > 0.85, got
    if task == "binary" and plugin == "sklearn":
        assert np.asarray(plain).shape == (60, 2)  # predict_proba through plain pyfunc
    if task == "multiclass":
        assert scored.shape == (60, 3)


def test_sklearn_pipeline_with_another_estimator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = 'estimator = "sklearn.ensemble.RandomForestClassifier"\n'
    project = write_project(tmp_path / "wine", "wine", "sklearn", extra)
    toml = project.root / "workbench.toml"
    toml.write_text(toml.read_text().replace("max_iter = 40", "n_estimators = 30"))
    result = _pipeline(Project.load(project.root), capsys)
    assert result["metrics"]["holdout_macro_f1"] > 0.85


@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="no GPU here (nvidia-smi absent)")
def test_xgboost_trains_on_cuda_when_the_job_has_gpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real CUDA: XGBoost is handed device "cuda" and keeps it (it would warn "Device is
    changed from GPU to CPU" without a usable GPU); the pipeline with [docker] gpus = 1."""
    import xgboost as xgb
    from workbench_plugins.xgboost_trainer import estimator_params

    from workbench import plugins

    project = write_project(tmp_path / "cancer", "cancer", "xgboost")
    with open(project.root / "workbench.toml", "a") as fh:
        fh.write("[docker]\ngpus = 1\n")
    project = Project.load(project.root)
    frame = pl.read_parquet(project.root / "data" / "data.parquet").to_pandas()
    features = project.config.features
    ctx = plugins.TrainContext(
        config=project.config,
        params={"n_estimators": 20},
        features=features,
        categorical=[BAND],
        target="target",
        train=frame.iloc[:400],
        valid=frame.iloc[400:],
        on_iteration=lambda *_: None,
        gpus=1,
    )
    params = estimator_params(ctx)
    assert params["device"] == "cuda"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugins.load("trainer", "xgboost").train(ctx)
        x = frame[features[:5]].to_numpy()
        native = xgb.XGBClassifier(n_estimators=5, device="cuda").fit(x, frame["target"])
    assert not [w for w in caught if "GPU to CPU" in str(w.message)]
    config = json.loads(native.get_booster().save_config())
    assert config["learner"]["generic_param"]["device"].startswith("cuda")
    assert _pipeline(project, capsys)["version"] == 1
