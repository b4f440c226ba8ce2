"""The default trainer: LightGBM for binary, multiclass and regression, with early stopping.

LightGBM trains on positional feature names (`f0`, `f1`, ...): it rewrites spaces and
refuses JSON characters in names, and a user's columns may have both. The model folder keeps
the real names (`feature_columns.json` beside `model.lgb`), which the pyfunc loader and the
server's fast path use to line records up with the booster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench_plugins.model_files import use_loader
from workbench_plugins.param_checks import Rule, number_problem, shape_problem

from workbench.errors import UsageError
from workbench.plugins import TrainContext, TrainedModel

if TYPE_CHECKING:
    import pandas as pd

DEFAULTS: dict[str, Any] = {
    "num_iterations": 200,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "verbosity": -1,
    "seed": 42,
    "num_threads": 0,
}
#: Per task: the objective and the metrics reported each iteration.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "binary": {"objective": "binary", "metric": ["auc", "binary_logloss"]},
    "multiclass": {"objective": "multiclass", "metric": ["multi_logloss", "multi_error"]},
    "regression": {"objective": "regression", "metric": ["rmse", "l1"]},
}
#: Objectives (and their aliases) that fit each task.
OBJECTIVES: dict[str, frozenset[str]] = {
    "binary": frozenset({"binary", "cross_entropy", "xentropy"}),
    "multiclass": frozenset({"multiclass", "softmax", "multiclassova", "multiclass_ova", "ova",
                             "ovr"}),
    "regression": frozenset({
        "regression", "regression_l2", "l2", "mean_squared_error", "mse", "l2_root",
        "root_mean_squared_error", "rmse", "regression_l1", "l1", "mean_absolute_error", "mae",
        "huber", "fair", "poisson", "quantile", "mape", "mean_absolute_percentage_error",
        "gamma", "tweedie",
    }),
}  # fmt: skip
_OBJECTIVE_KEYS = ("objective", "objective_type", "app", "application", "loss")
FEATURES_FILE = "feature_columns.json"
LOADER = Path(__file__).with_name("workbench_lightgbm_pyfunc.py")

# What LightGBM itself would reject (or overflow on) once the job runs, checked up front:
# parameter (with its aliases) -> (kind, lower bound, lower inclusive, upper bound).
_ALIASES: dict[str, tuple[str, ...]] = {
    "num_iterations": (
        "num_iterations", "num_iteration", "n_iter", "num_tree", "num_trees", "num_round",
        "num_rounds", "nrounds", "num_boost_round", "n_estimators", "max_iter",
    ),
    "learning_rate": ("learning_rate", "shrinkage_rate", "eta"),
    "num_leaves": ("num_leaves", "num_leaf", "max_leaves", "max_leaf", "max_leaf_nodes"),
    "min_data_in_leaf": (
        "min_data_in_leaf", "min_data_per_leaf", "min_data", "min_child_samples",
        "min_samples_leaf",
    ),
    "min_sum_hessian_in_leaf": (
        "min_sum_hessian_in_leaf", "min_sum_hessian_per_leaf", "min_sum_hessian", "min_hessian",
        "min_child_weight",
    ),
    "lambda_l1": ("lambda_l1", "reg_alpha", "l1_regularization"),
    "lambda_l2": ("lambda_l2", "reg_lambda", "lambda", "l2_regularization"),
    "min_gain_to_split": ("min_gain_to_split", "min_split_gain"),
    "feature_fraction": ("feature_fraction", "sub_feature", "colsample_bytree"),
    "bagging_fraction": ("bagging_fraction", "sub_row", "subsample", "bagging"),
    "bagging_freq": ("bagging_freq", "subsample_freq"),
    "max_bin": ("max_bin", "max_bins"),
    "early_stopping_rounds": (
        "early_stopping_rounds", "early_stopping_round", "early_stopping", "n_iter_no_change",
    ),
    "seed": (
        "seed", "random_seed", "random_state", "bagging_seed", "feature_fraction_seed",
        "data_random_seed", "drop_seed", "extra_seed", "objective_seed",
    ),
}  # fmt: skip
_RULES: dict[str, Rule] = {
    "num_iterations": ("int", 0, False, None),
    "learning_rate": ("float", 0, False, None),
    "num_leaves": ("int", 1, False, 131072),
    "min_data_in_leaf": ("int", 0, True, None),
    "min_sum_hessian_in_leaf": ("float", 0, True, None),
    "lambda_l1": ("float", 0, True, None),
    "lambda_l2": ("float", 0, True, None),
    "min_gain_to_split": ("float", 0, True, None),
    "feature_fraction": ("float", 0, False, 1.0),
    "bagging_fraction": ("float", 0, False, 1.0),
    "bagging_freq": ("int", 0, True, None),
    "max_bin": ("int", 1, False, None),
    "early_stopping_rounds": ("int", 0, True, None),
    "seed": ("int", 0, True, 2**32 - 1),
}
_CANONICAL = {alias: canonical for canonical, names in _ALIASES.items() for alias in names}


def check_params(params: dict[str, Any]) -> list[str]:
    """What is wrong with `[trainer.params]` for LightGBM, one "key: problem (got value)" each:
    wrong types, out-of-range values, seeds beyond 32 bits. Unknown keys are LightGBM's to judge
    (it warns and ignores them)."""
    problems = []
    for key, value in params.items():
        problem = shape_problem(key, value)
        if problem is None and (canonical := _CANONICAL.get(key)) is not None:
            problem = number_problem(key, value, _RULES[canonical])
        if problem is not None:
            problems.append(problem)
    return problems


def objective_problem(task: str, params: dict[str, Any]) -> str | None:
    """Why `params`' objective does not fit `task` (None when it does, or none is set)."""
    for key in _OBJECTIVE_KEYS:
        value = params.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or value not in OBJECTIVES[task]:
            fits = next((t for t, names in OBJECTIVES.items() if value in names), None)
            hint = f"; it is a {fits} objective: set [task].type = {fits!r}" if fits else ""
            return f"[trainer.params].{key}: {value!r} does not fit the {task} task{hint}"
    return None


class LightGBMTrainer:
    kind = "trainer"
    name = "lightgbm"

    def check_params(self, params: dict[str, Any]) -> list[str]:
        return check_params(params)

    def check_config(self, config: Any) -> list[str]:
        problem = objective_problem(config.task.type, dict(config.trainer.params))
        return [problem] if problem else []

    def train(self, ctx: TrainContext) -> TrainedModel:
        import lightgbm as lgb

        problems = check_params(ctx.params)  # overrides (--params) too, before any work
        if problems:
            raise UsageError(f"[trainer.params].{problems[0]}")
        problem = objective_problem(ctx.task, ctx.params)
        if problem:
            raise UsageError(problem)
        params = {**DEFAULTS, **TASK_DEFAULTS[ctx.task], **ctx.params}
        if ctx.task == "multiclass":
            params["num_class"] = len(ctx.classes)
        early = params.pop("early_stopping_rounds", None)
        total = int(params.pop("num_iterations", params.pop("n_estimators", 200)))

        names = [f"f{i}" for i in range(len(ctx.features))]  # see the module docstring
        by_name = dict(zip(ctx.features, names, strict=True))
        categorical = [by_name[c] for c in ctx.categorical]
        x_train = _prepare(ctx.train[ctx.features], names, categorical, None)
        cats = {c: list(x_train[c].cat.categories) for c in categorical}
        x_valid = _prepare(ctx.valid[ctx.features], names, categorical, cats)
        dtrain = lgb.Dataset(
            x_train, ctx.train[ctx.target], categorical_feature=categorical or "auto"
        )
        dvalid = lgb.Dataset(x_valid, ctx.valid[ctx.target], reference=dtrain)

        def report(env: Any) -> None:
            scores = {
                f"{name}_{_metric_name(metric)}": float(value)
                for name, metric, value, _ in env.evaluation_result_list
            }
            ctx.on_iteration(env.iteration + 1, total, scores)

        callbacks: list[Any] = [report]
        if early:
            callbacks.append(lgb.early_stopping(int(early), verbose=False))
        booster = lgb.train(
            params,
            dtrain,
            num_boost_round=total,
            valid_sets=[dtrain, dvalid],
            valid_names=["train", "valid"],
            callbacks=callbacks,
        )

        def predict(frame: pd.DataFrame) -> Any:
            return booster.predict(_prepare(frame[ctx.features], names, categorical, cats))

        def save(path: Path, signature: Any, input_example: pd.DataFrame) -> None:
            _save_model(booster, path, signature, input_example, ctx.features)

        importance = dict(
            zip(ctx.features, map(float, booster.feature_importance("gain")), strict=True)
        )
        return TrainedModel(
            predict=predict,
            save_mlflow_model=save,
            best_iteration=booster.best_iteration or booster.current_iteration(),
            feature_importance=importance,
            flavor="lightgbm",
        )


_METRIC_NAMES = {"binary_logloss": "logloss", "multi_logloss": "logloss", "multi_error": "error",
                 "l1": "mae", "l2": "mse"}  # fmt: skip


def _metric_name(metric: str) -> str:
    """LightGBM's metric names as the runs table shows them (valid_logloss, valid_mae)."""
    return _METRIC_NAMES.get(metric, metric)


def _prepare(
    frame: pd.DataFrame,
    names: list[str],
    categorical: list[str],
    categories: dict[str, list[str]] | None,
) -> pd.DataFrame:
    """The model's input frame under the booster's names: categorical columns as pandas
    categoricals (with the training categories when given, so codes match the booster's)."""
    import pandas as pd

    frame = frame.copy()
    frame.columns = names
    for col in categorical:
        values = frame[col].astype("object")
        frame[col] = (
            pd.Categorical(values, categories=categories[col])
            if categories
            else pd.Categorical(values)
        )
    return frame


def _save_model(
    booster: Any, path: Path, signature: Any, input_example: pd.DataFrame, columns: list[str]
) -> None:
    """The MLflow model: the LightGBM flavor, with the pyfunc flavor pointed at our loader."""
    import lightgbm as lgb
    import mlflow
    import mlflow.lightgbm
    import numpy
    import pandas as pd

    mlflow.lightgbm.save_model(
        booster,
        str(path),
        signature=signature,
        input_example=input_example,
        code_paths=[str(LOADER)],
        # Explicit requirements: MLflow's inference would load the model with the stock
        # LightGBM pyfunc (which cannot score string categoricals) in a subprocess.
        pip_requirements=[
            f"mlflow=={mlflow.__version__}",
            f"lightgbm=={lgb.__version__}",
            f"pandas=={pd.__version__}",
            f"numpy=={numpy.__version__}",
        ],
    )
    # The stock pyfunc of the LightGBM flavor cannot score string categoricals; point the
    # pyfunc flavor at our loader (shipped in code/) and keep the lightgbm flavor.
    (path / FEATURES_FILE).write_text(json.dumps(columns))
    use_loader(path, LOADER)
