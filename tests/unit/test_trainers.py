"""Every trainer (lightgbm, xgboost, sklearn) on every task, through a TrainContext on small
generated frames whose column names have spaces, commas, brackets and `<`: what `predict`
returns, that the metrics are sane, that the saved MLflow model scores raw records through
plain `mlflow.pyfunc` and through `load_scorer`, and each trainer's config checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from workbench_plugins.workbench_xgboost_pyfunc import WorkbenchXGBClassifier

from workbench import plugins
from workbench.config import Config, parse_config
from workbench.data.validation import config_problems
from workbench.errors import UsageError
from workbench.plugins import TrainContext
from workbench.tasks import ModelTask
from workbench.training.evaluation import evaluate
from workbench.training.scoring import as_task_output, load_scorer

AMOUNT, RATIO, KIND, HOUR = "amount (usd)", "ratio, 7d", "merchant [type]", "hour<24>"
FEATURES = [AMOUNT, RATIO, KIND, HOUR]
CLASSES = {"binary": [0, 1], "multiclass": ["low", "mid", "high"], "regression": []}
#: Small, fast settings per trainer.
PARAMS: dict[str, dict[str, Any]] = {
    "lightgbm": {"num_iterations": 30, "min_data_in_leaf": 5},
    "xgboost": {"n_estimators": 30, "max_depth": 3},
    "sklearn": {"max_iter": 30},
}
TASKS = ("binary", "multiclass", "regression")


def _config(task: str, plugin: str, estimator: str | None = None, params: str = "") -> Config:
    schema = "".join(
        f'[schema."{c}"]\ntype = "{"category" if c == KIND else "float"}"\n' for c in FEATURES
    )
    target_type = "float" if task == "regression" else "str"
    est = f'estimator = "{estimator}"\n' if estimator else ""
    return parse_config(
        f'[project]\nname = "t"\n[data]\npath = "d.parquet"\ntarget = "y"\nsplit = "random"\n'
        f'[task]\ntype = "{task}"\n[trainer]\nplugin = "{plugin}"\n{est}'
        f"[trainer.params]\n{params}\n{schema}"
        f'[schema.y]\ntype = "{target_type}"\n'
    )


def _frame(task: str, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    kinds = rng.choice(["food", "travel", "games"], n)
    df = pd.DataFrame(
        {
            AMOUNT: rng.gamma(2.0, 50.0, n),
            RATIO: rng.normal(0, 1, n),
            KIND: np.where(rng.random(n) < 0.05, None, kinds),
            HOUR: rng.integers(0, 24, n).astype(float),
        }
    )
    df.loc[rng.random(n) < 0.05, RATIO] = np.nan
    signal = df[RATIO].fillna(0) * 2 + (kinds == "travel") * 1.5 + df[AMOUNT] / 100
    if task == "binary":
        df["y"] = (signal + rng.normal(0, 0.5, n) > 1.2).astype(int)
    elif task == "multiclass":
        df["y"] = np.digitize(signal + rng.normal(0, 0.3, n), [0.5, 2.0])  # class indices
    else:
        df["y"] = signal * 10 + rng.normal(0, 1, n)
    return df


def _ctx(
    task: str, plugin: str, params: dict[str, Any] | None = None, **extra: Any
) -> tuple[TrainContext, list[tuple[int, int, dict[str, float]]]]:
    seen: list[tuple[int, int, dict[str, float]]] = []
    ctx = TrainContext(
        config=extra.pop("config", None) or _config(task, plugin),
        params=PARAMS[plugin] if params is None else params,
        features=FEATURES,
        categorical=[KIND],
        target="y",
        train=_frame(task, 700, 1),
        valid=_frame(task, 250, 2),
        on_iteration=lambda i, total, scores: seen.append((i, total, scores)),
        task=task,
        classes=CLASSES[task] or [],
        **extra,
    )
    return ctx, seen


def _sane(task: str, scores: dict[str, float]) -> None:
    if task == "binary":
        assert scores["auc"] > 0.85 and scores["logloss"] < 0.5, scores
    elif task == "multiclass":
        assert scores["macro_f1"] > 0.6 and scores["accuracy"] > 0.7, scores
    else:
        assert scores["r2"] > 0.8, scores


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("plugin", ["lightgbm", "xgboost", "sklearn"])
def test_each_trainer_trains_each_task_and_its_model_scores_raw_records(
    plugin: str, task: str, tmp_path: Path
) -> None:
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    ctx, seen = _ctx(task, plugin)
    model = plugins.load("trainer", plugin).train(ctx)
    holdout = _frame(task, 300, 3)
    out = model.predict(holdout[FEATURES])
    shape = (300, 3) if task == "multiclass" else (300,)
    assert np.asarray(out).shape == shape
    if task != "regression":
        assert ((out >= 0) & (out <= 1)).all()
    if task == "multiclass":
        assert np.allclose(out.sum(axis=1), 1.0)
    _sane(task, evaluate(task, holdout["y"].to_numpy(), out))
    assert seen and seen[-1][0] == seen[-1][1] and all(k.startswith(("train_", "valid_"))
                                                       for k in seen[-1][2])  # fmt: skip
    assert any(k.startswith("valid_") for k in seen[-1][2])
    assert set(model.feature_importance) <= set(FEATURES)

    example = holdout[FEATURES].head(5)
    model_dir = tmp_path / "model"
    model.save_mlflow_model(model_dir, infer_signature(example, model.predict(example)), example)
    # raw records as a client sends them: an unseen category, a missing one, real names
    raw = holdout[FEATURES].head(40).copy()
    raw.loc[0, KIND] = "never seen"
    raw.loc[1, KIND] = None
    mtask = ModelTask(task, CLASSES[task], 0.5, "y")
    plain = mlflow.pyfunc.load_model(str(model_dir)).predict(raw)
    from_pyfunc = as_task_output(mtask, plain, len(raw))
    expected = model.predict(raw)
    assert np.allclose(from_pyfunc, expected, atol=1e-6)
    scored = load_scorer(model_dir, mtask)(raw)
    assert np.allclose(scored, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("task", "wanted"),
    [
        ("binary", {"train_auc", "train_logloss", "valid_auc", "valid_logloss"}),
        ("multiclass", {"train_error", "train_logloss", "valid_error", "valid_logloss"}),
        ("regression", {"train_mae", "train_rmse", "valid_mae", "valid_rmse"}),
    ],
)
def test_xgboost_reports_each_round_under_runs_table_names(task: str, wanted: set[str]) -> None:
    ctx, seen = _ctx(task, "xgboost")
    plugins.load("trainer", "xgboost").train(ctx)
    assert [i for i, _, _ in seen] == list(range(1, 31))
    assert {total for _, total, _ in seen} == {30}
    assert set(seen[-1][2]) == wanted


def test_xgboost_stops_early_on_the_validation_rows() -> None:
    ctx, seen = _ctx(
        "binary",
        "xgboost",
        {"n_estimators": 2000, "learning_rate": 0.3, "early_stopping_rounds": 5},
    )
    model = plugins.load("trainer", "xgboost").train(ctx)
    assert model.best_iteration is not None and model.best_iteration < 200
    assert len(seen) < 2000 and seen[-1][1] == 2000
    assert len(seen) == model.best_iteration + 5  # stopped 5 rounds after the best


def test_xgboost_takes_num_iterations_as_its_rounds() -> None:
    """A project switched from LightGBM keeps `num_iterations`; `n_estimators` (say a
    `--param` override) wins over it; XGBoost's native names replace the defaults."""
    from workbench_plugins.xgboost_trainer import estimator_params

    ctx, seen = _ctx("regression", "xgboost", {"num_iterations": 7})
    plugins.load("trainer", "xgboost").train(ctx)
    assert len(seen) == 7
    ctx, _ = _ctx("binary", "xgboost", {"num_iterations": 7, "n_estimators": 3, "seed": 5,
                                        "eta": 0.2})  # fmt: skip
    params = estimator_params(ctx)
    assert params["n_estimators"] == 3 and "num_iterations" not in params
    assert params["random_state"] == 5 and params["learning_rate"] == 0.2
    assert "seed" not in params and "eta" not in params


class _RecordingClassifier:
    """The GPU is the only thing faked: it records the kwargs the trainer hands XGBoost, then
    trains the real XGBClassifier on the CPU, since this machine has no GPU (the integration
    test tests/integration/test_trainers_pipeline.py trains on CUDA where nvidia-smi is)."""

    handed: list[dict[str, Any]] = []

    def __new__(cls, **kwargs: Any) -> Any:
        cls.handed.append(dict(kwargs))
        return WorkbenchXGBClassifier(**{**kwargs, "device": "cpu"})


@pytest.mark.parametrize(
    ("gpus", "params", "device"),
    [(1, {}, "cuda"), (0, {}, "cpu"), (2, {"device": "cpu"}, "cpu")],
    ids=["gpus-cuda", "no-gpus-cpu", "user-device-wins"],
)
def test_xgboost_is_handed_cuda_when_the_job_has_gpus(
    monkeypatch: pytest.MonkeyPatch, gpus: int, params: dict[str, Any], device: str
) -> None:
    import workbench_plugins.workbench_xgboost_pyfunc as pyfunc

    _RecordingClassifier.handed.clear()
    monkeypatch.setattr(pyfunc, "WorkbenchXGBClassifier", _RecordingClassifier)
    ctx, _ = _ctx("binary", "xgboost", {"n_estimators": 3, **params}, gpus=gpus)
    model = plugins.load("trainer", "xgboost").train(ctx)
    (handed,) = _RecordingClassifier.handed
    assert handed["device"] == device
    assert handed["enable_categorical"] is True and handed["objective"] == "binary:logistic"
    assert model.predict(ctx.valid[FEATURES]).shape == (250,)


def test_sklearn_takes_any_estimator_by_its_import_path() -> None:
    config = _config("binary", "sklearn", "sklearn.linear_model.LogisticRegression")
    ctx, seen = _ctx("binary", "sklearn", {"C": 0.5, "max_iter": 500}, config=config)
    model = plugins.load("trainer", "sklearn").train(ctx)
    assert seen[0][:2] == (1, 1) and seen[0][2]["valid_auc"] > 0.85
    assert model.best_iteration is None and model.flavor == "sklearn"


@pytest.mark.parametrize(
    ("plugin", "task", "estimator", "params", "wanted"),
    [
        ("xgboost", "binary", None, 'objective = "multi:softprob"',
         "[trainer.params].objective: 'multi:softprob' does not fit the binary task; it is a "
         "multiclass objective: set [task].type = 'multiclass'"),
        ("xgboost", "multiclass", None, 'objective = "multi:softmax"',
         "[trainer.params].objective: 'multi:softmax' gives labels or margins, not "
         "probabilities (use multi:softprob)"),
        ("xgboost", "regression", None, "n_estimators = 0",
         "[trainer.params].n_estimators: must be > 0 (got 0)"),
        ("xgboost", "binary", None, "subsample = 1.5",
         "[trainer.params].subsample: must be > 0 and ≤ 1 (got 1.5)"),
        ("xgboost", "binary", None, 'learning_rate = "fast"',
         "[trainer.params].learning_rate: must be a number (got 'fast')"),
        ("xgboost", "multiclass", None, "num_class = 3",
         "[trainer.params].num_class: is set by Workbench from the task and the data; remove it"),
        ("xgboost", "binary", None, 'tree_method = "gpu_hist"',
         "[trainer.params].tree_method: must be one of approx, auto, exact, hist (got "
         "'gpu_hist')"),
        ("xgboost", "binary", None, 'booster = ["dart"]',
         "[trainer.params].booster: must be one of dart, gbtree (got ['dart'])"),
        ("sklearn", "binary", "sklearn.ensemble.Foo", "",
         "[trainer].estimator: 'sklearn.ensemble.Foo' does not import (module "
         "'sklearn.ensemble' has no attribute 'Foo')"),
        ("sklearn", "regression", "nosuchpackage.Model", "",
         "[trainer].estimator: 'nosuchpackage.Model' does not import (No module named "
         "'nosuchpackage')"),
        ("sklearn", "binary", "sklearn.ensemble.RandomForestRegressor", "",
         "[trainer].estimator: 'sklearn.ensemble.RandomForestRegressor' is not a classifier; "
         "the binary task needs one"),
        ("sklearn", "regression", "sklearn.linear_model.LogisticRegression", "",
         "[trainer].estimator: 'sklearn.linear_model.LogisticRegression' is not a regressor; "
         "the regression task needs one"),
        ("sklearn", "multiclass", "sklearn.svm.SVC", "",
         "[trainer].estimator: 'sklearn.svm.SVC' has no predict_proba (with these params); "
         "the multiclass task needs class probabilities"),
        ("sklearn", "regression", None, "n_trees = 5",
         "[trainer.params].n_trees: not a parameter of HistGradientBoostingRegressor (it takes "),
        ("sklearn", "binary", None, "max_iter = 0",
         "[trainer.params].max_iter: The 'max_iter' parameter of HistGradientBoostingClassifier "
         "must be an int in the range [1, inf). Got 0 instead."),
        ("sklearn", "binary", "math.pi", "", "[trainer].estimator: 'math.pi' is not an "
         "estimator class (a class with fit)"),
    ],
)  # fmt: skip
def test_config_checks_are_one_line_each(
    plugin: str, task: str, estimator: str | None, params: str, wanted: str
) -> None:
    problems = config_problems(_config(task, plugin, estimator, params))
    assert len(problems) == 1 and problems[0].startswith(wanted), problems


@pytest.mark.parametrize("plugin", ["xgboost", "sklearn"])
def test_good_settings_have_no_problems(plugin: str) -> None:
    params = "early_stopping_rounds = 10\nmax_depth = 4" if plugin == "xgboost" else ""
    for task in TASKS:
        assert config_problems(_config(task, plugin, params=params)) == []
    assert config_problems(_config("binary", "sklearn", "sklearn.svm.SVC", "probability = true"))\
        == []  # fmt: skip


@pytest.mark.parametrize(
    ("plugin", "params", "wanted"),
    [
        ("xgboost", {"max_depth": -1}, "[trainer.params].max_depth: must be ≥ 0 (got -1)"),
        ("sklearn", {"learning_rate": -1.0}, "[trainer.params].learning_rate: The 'learning"),
    ],
)
def test_bad_overrides_fail_before_training(
    plugin: str, params: dict[str, Any], wanted: str
) -> None:
    ctx, seen = _ctx("binary", plugin, params)
    with pytest.raises(UsageError) as info:
        plugins.load("trainer", plugin).train(ctx)
    assert str(info.value).startswith(wanted) and not seen
