"""The XGBoost trainer: binary, multiclass and regression with the sklearn-API estimators,
native categorical features, early stopping on the validation rows, and CUDA when the job
has GPUs (`[docker] gpus` > 0).

Like the LightGBM trainer it trains on positional feature names (`f0`, `f1`, ...; XGBoost
refuses `[`, `]` and `<` in names) and keeps the real ones beside the model. The model is
logged with MLflow's xgboost flavour; its `model_class` and the pyfunc flavour point at
`workbench_xgboost_pyfunc` (shipped in the model's `code/`), whose estimators score raw
records: `mlflow.xgboost.load_model(dir).predict_proba(records)` gives class probabilities
and `mlflow.pyfunc.load_model(dir).predict(records)` what the task needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench_plugins.model_files import use_loader
from workbench_plugins.param_checks import Rule, got, number_problem, shape_problem

from workbench.errors import UsageError
from workbench.plugins import TrainContext, TrainedModel

if TYPE_CHECKING:
    import pandas as pd

DEFAULTS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.1,
    "max_depth": 6,
    "tree_method": "hist",
    "random_state": 42,
}
#: Per task: the objective and the metrics reported each iteration (the last one decides
#: early stopping).
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "binary": {"objective": "binary:logistic", "eval_metric": ["auc", "logloss"]},
    "multiclass": {"objective": "multi:softprob", "eval_metric": ["merror", "mlogloss"]},
    "regression": {"objective": "reg:squarederror", "eval_metric": ["mae", "rmse"]},
}
#: Objectives that fit each task and give what it needs (probabilities, not labels).
OBJECTIVES: dict[str, frozenset[str]] = {
    "binary": frozenset({"binary:logistic"}),
    "multiclass": frozenset({"multi:softprob"}),
    "regression": frozenset({
        "reg:squarederror", "reg:squaredlogerror", "reg:pseudohubererror", "reg:absoluteerror",
        "reg:quantileerror", "reg:logistic", "reg:gamma", "reg:tweedie", "count:poisson",
    }),
}  # fmt: skip
#: Objectives that give labels or raw margins: no task can use them.
_NO_PROBABILITIES = frozenset({"binary:hinge", "binary:logitraw", "multi:softmax"})
#: Names other trainers use for the number of rounds, taken as n_estimators (the first one
#: set, in this order: `--param n_estimators=50` wins over a project's num_iterations).
_ROUNDS = ("n_estimators", "num_boost_round", "num_iterations", "num_rounds")
#: XGBoost's native names for the sklearn API's (so a default never shadows the user's).
_NATIVE = {"eta": "learning_rate", "seed": "random_state", "alpha": "reg_alpha",
           "lambda": "reg_lambda", "min_split_loss": "gamma", "nthread": "n_jobs"}  # fmt: skip
# parameter (with its aliases) -> (kind, lower bound, lower inclusive, upper bound)
_RULES: dict[tuple[str, ...], Rule] = {
    _ROUNDS: ("int", 0, False, None),
    ("learning_rate", "eta"): ("float", 0, False, None),
    ("max_depth",): ("int", 0, True, None),
    ("max_leaves",): ("int", 0, True, None),
    ("min_child_weight",): ("float", 0, True, None),
    ("gamma", "min_split_loss"): ("float", 0, True, None),
    ("subsample",): ("float", 0, False, 1.0),
    ("colsample_bytree", "colsample_bylevel", "colsample_bynode"): ("float", 0, False, 1.0),
    ("reg_alpha", "alpha"): ("float", 0, True, None),
    ("reg_lambda", "lambda"): ("float", 0, True, None),
    ("max_bin",): ("int", 2, True, None),
    ("max_cat_to_onehot",): ("int", 1, True, None),
    ("early_stopping_rounds",): ("int", 0, False, None),
    ("random_state", "seed"): ("int", 0, True, 2**31 - 1),
    ("n_jobs", "nthread"): ("int", -1, True, None),
}
_RULE_OF = {alias: rule for names, rule in _RULES.items() for alias in names}
_CHOICES: dict[str, frozenset[str]] = {
    "tree_method": frozenset({"hist", "approx", "exact", "auto"}),
    "device": frozenset({"cpu", "cuda", "gpu"}),
    "booster": frozenset({"gbtree", "dart"}),
}
_SET_BY_WORKBENCH = ("num_class", "enable_categorical", "callbacks", "eval_set")
_METRIC_NAMES = {"mlogloss": "logloss", "merror": "error", "error": "error"}
LOADER = Path(__file__).with_name("workbench_xgboost_pyfunc.py")


def check_params(params: dict[str, Any]) -> list[str]:
    """What is wrong with `[trainer.params]` for XGBoost, one "key: problem" each. Unknown
    keys are XGBoost's to judge (it warns and ignores them)."""
    problems = []
    for key, value in params.items():
        if (problem := shape_problem(key, value)) is not None:
            problems.append(problem)
        elif key in _SET_BY_WORKBENCH:
            problems.append(f"{key}: is set by Workbench from the task and the data; remove it")
        elif key in _RULE_OF:
            if (problem := number_problem(key, value, _RULE_OF[key])) is not None:
                problems.append(problem)
        elif key in _CHOICES and (not isinstance(value, str) or value not in _CHOICES[key]):
            choices = ", ".join(sorted(_CHOICES[key]))
            problems.append(f"{key}: must be one of {choices} (got {got(value)})")
    return problems


def objective_problem(task: str, params: dict[str, Any]) -> str | None:
    """Why `params`' objective does not fit `task` (None when it does, or none is set)."""
    value = params.get("objective")
    if value is None or (isinstance(value, str) and value in OBJECTIVES[task]):
        return None
    key = "[trainer.params].objective"
    if value in _NO_PROBABILITIES:
        use = ", ".join(
            sorted(OBJECTIVES["binary" if value.startswith("binary") else "multiclass"])
        )
        return f"{key}: {value!r} gives labels or margins, not probabilities (use {use})"
    fits = next((t for t, names in OBJECTIVES.items() if value in names), None)
    hint = f"; it is a {fits} objective: set [task].type = {fits!r}" if fits else ""
    return f"{key}: {value!r} does not fit the {task} task{hint}"


class XGBoostTrainer:
    kind = "trainer"
    name = "xgboost"

    def check_params(self, params: dict[str, Any]) -> list[str]:
        return check_params(params)

    def check_config(self, config: Any) -> list[str]:
        problems = []
        if (
            problem := objective_problem(config.task.type, dict(config.trainer.params))
        ) is not None:
            problems.append(problem)
        if config.trainer.estimator is not None:
            problems.append("[trainer].estimator: only the sklearn trainer reads it; remove it")
        return problems

    def train(self, ctx: TrainContext) -> TrainedModel:
        from workbench_plugins.workbench_xgboost_pyfunc import (
            WorkbenchXGBClassifier,
            WorkbenchXGBRegressor,
            model_frame,
        )

        params = estimator_params(ctx)
        total = int(params["n_estimators"])
        names = [f"f{i}" for i in range(len(ctx.features))]  # see the module docstring
        by_name = dict(zip(ctx.features, names, strict=True))
        raw_train = ctx.train[ctx.features].copy()
        raw_train.columns = names
        categories = {
            by_name[c]: sorted({str(v) for v in ctx.train[c].dropna()}) for c in ctx.categorical
        }
        spec = {"task": ctx.task, "columns": ctx.features, "names": names,
                "categories": categories}  # fmt: skip
        x_train = model_frame(ctx.train, spec)
        x_valid = model_frame(ctx.valid, spec)
        params["callbacks"] = [_progress(ctx, total)]
        cls = WorkbenchXGBRegressor if ctx.task == "regression" else WorkbenchXGBClassifier
        model: Any = cls(**params)
        model.fit(
            x_train,
            ctx.train[ctx.target].to_numpy(),
            eval_set=[(x_train, ctx.train[ctx.target].to_numpy()),
                      (x_valid, ctx.valid[ctx.target].to_numpy())],
            verbose=False,
        )  # fmt: skip
        # scoring happens on the CPU (pandas input; a server has no GPU)
        model.callbacks, model.device = None, "cpu"
        model.get_booster().set_param({"device": "cpu"})
        model.workbench_spec = spec

        def predict(frame: pd.DataFrame) -> Any:
            if ctx.task == "regression":
                return model.predict(frame)
            proba = model.predict_proba(frame)
            return proba[:, 1] if ctx.task == "binary" else proba

        def save(path: Path, signature: Any, input_example: pd.DataFrame) -> None:
            _save_model(model, spec, path, signature, input_example)

        gain = model.get_booster().get_score(importance_type="total_gain")
        best = getattr(model, "best_iteration", None)
        return TrainedModel(
            predict=predict,
            save_mlflow_model=save,
            best_iteration=(best + 1) if best is not None else total,
            feature_importance={c: float(gain.get(n, 0.0)) for c, n in by_name.items()},
            flavor="xgboost",
        )


def estimator_params(ctx: TrainContext) -> dict[str, Any]:
    """The estimator's constructor kwargs: defaults, the task's objective and metrics, the
    user's params (checked first), categorical support and the device (CUDA when the job has
    GPUs, unless `device` is set in [trainer.params])."""
    problems = check_params(ctx.params)  # overrides (--params) too, before any work
    if problems:
        raise UsageError(f"[trainer.params].{problems[0]}")
    if (problem := objective_problem(ctx.task, ctx.params)) is not None:
        raise UsageError(problem)
    user = {_NATIVE.get(k, k): v for k, v in ctx.params.items()}
    rounds = next((user[k] for k in _ROUNDS if k in user), DEFAULTS["n_estimators"])
    for key in _ROUNDS:
        user.pop(key, None)
    params = {**DEFAULTS, **TASK_DEFAULTS[ctx.task], **user, "n_estimators": int(rounds)}
    if "early_stopping_rounds" in params:
        params["early_stopping_rounds"] = int(params["early_stopping_rounds"])
    params.setdefault("device", "cuda" if ctx.gpus and ctx.gpus > 0 else "cpu")
    params["enable_categorical"] = True
    if ctx.task == "multiclass":
        params["num_class"] = len(ctx.classes)
    return params


def _progress(ctx: TrainContext, total: int) -> Any:
    """A callback that hands each round's metrics (train_logloss, valid_rmse, ...) on."""
    import xgboost as xgb

    class Progress(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            scores = {}
            for data, prefix in (("validation_0", "train"), ("validation_1", "valid")):
                for metric, values in evals_log.get(data, {}).items():
                    value = values[-1]
                    value = value[0] if isinstance(value, tuple) else value
                    scores[f"{prefix}_{_METRIC_NAMES.get(metric, metric)}"] = float(value)
            ctx.on_iteration(epoch + 1, total, scores)
            return False

    return Progress()


def _save_model(
    model: Any, spec: dict[str, Any], path: Path, signature: Any, input_example: pd.DataFrame
) -> None:
    """The MLflow model: the xgboost flavour of the sklearn-API estimator, its model class
    and the pyfunc flavour pointed at the loader shipped in code/ (see the module docstring)."""
    import mlflow
    import mlflow.xgboost
    import numpy
    import pandas as pd
    import xgboost as xgb
    from workbench_plugins.workbench_xgboost_pyfunc import SPEC_FILE

    mlflow.xgboost.save_model(
        model,
        str(path),
        signature=signature,
        input_example=input_example,
        code_paths=[str(LOADER)],
        model_format="ubj",
        # explicit: MLflow's inference would load the model in a subprocess to find them
        pip_requirements=[
            f"mlflow=={mlflow.__version__}",
            f"xgboost=={xgb.__version__}",
            f"pandas=={pd.__version__}",
            f"numpy=={numpy.__version__}",
        ],
    )
    (path / SPEC_FILE).write_text(json.dumps(spec))

    def native_class(flavours: dict[str, Any]) -> None:  # the native load takes raw records
        flavours["xgboost"]["model_class"] = f"{LOADER.stem}.{type(model).__name__}"

    use_loader(path, LOADER, native_class)
