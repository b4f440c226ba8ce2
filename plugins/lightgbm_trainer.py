"""The default trainer: LightGBM binary classification with early stopping."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import UsageError
from workbench.plugins import TrainContext, TrainedModel

if TYPE_CHECKING:
    import pandas as pd

DEFAULTS: dict[str, Any] = {
    "objective": "binary",
    "metric": ["auc", "binary_logloss"],
    "num_iterations": 200,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "verbosity": -1,
    "seed": 42,
    "num_threads": 0,
}
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
_RULES: dict[str, tuple[str, float, bool, float | None]] = {
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
_SCALARS = (str, int, float, bool)


def _bounds(low: float, inclusive: bool, high: float | None) -> str:
    def shown(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else f"{x:g}"

    lower = f"{'≥' if inclusive else '>'} {shown(low)}"
    return f"{lower} and ≤ {shown(high)}" if high is not None else lower


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_params(params: dict[str, Any]) -> list[str]:
    """What is wrong with `[trainer.params]` for LightGBM, one "key: problem (got value)" each:
    wrong types, out-of-range values, seeds beyond 32 bits. Unknown keys are LightGBM's to judge
    (it warns and ignores them)."""
    problems = []
    for key, value in params.items():
        if not (
            isinstance(value, _SCALARS)
            or (isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value))
        ):
            problems.append(f"{key}: must be a number, string, boolean or a list of them")
            continue
        canonical = _CANONICAL.get(key)
        if canonical is None:
            continue
        kind, low, inclusive, high = _RULES[canonical]
        number_like = isinstance(value, int | float) and not isinstance(value, bool)
        if number_like and isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{key}: must be a finite number (got {_got(value)})")
            continue
        # 150.0 is 150 to LightGBM; a huge TOML integer is compared as an int, never a float
        integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        integral = integral and number_like
        if kind == "int" and not integral:
            problems.append(f"{key}: must be an integer (got {_got(value)})")
            continue
        if kind == "float" and not number_like:
            problems.append(f"{key}: must be a number (got {_got(value)})")
            continue
        if not isinstance(value, int | float):  # not reached: only numbers pass the checks above
            continue
        ok = (value >= low if inclusive else value > low) and (high is None or value <= high)
        if not ok:
            problems.append(f"{key}: must be {_bounds(low, inclusive, high)} (got {_got(value)})")
    return problems


class LightGBMTrainer:
    kind = "trainer"
    name = "lightgbm"

    def check_params(self, params: dict[str, Any]) -> list[str]:
        return check_params(params)

    def train(self, ctx: TrainContext) -> TrainedModel:
        import lightgbm as lgb

        problems = check_params(ctx.params)  # overrides (--params) too, before any work
        if problems:
            raise UsageError(f"[trainer.params].{problems[0]}")
        params = {**DEFAULTS, **ctx.params}
        early = params.pop("early_stopping_rounds", None)
        total = int(params.pop("num_iterations", params.pop("n_estimators", 200)))

        x_train = _prepare(ctx.train[ctx.features], ctx.categorical, None)
        cats = {c: list(x_train[c].cat.categories) for c in ctx.categorical}
        x_valid = _prepare(ctx.valid[ctx.features], ctx.categorical, cats)
        dtrain = lgb.Dataset(
            x_train, ctx.train[ctx.target], categorical_feature=ctx.categorical or "auto"
        )
        dvalid = lgb.Dataset(x_valid, ctx.valid[ctx.target], reference=dtrain)

        def report(env: Any) -> None:
            scores = {
                f"{name}_{metric}".replace("binary_", ""): float(value)
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
            return booster.predict(_prepare(frame[ctx.features], ctx.categorical, cats))

        def save(path: Path, signature: Any, input_example: pd.DataFrame) -> None:
            _save_model(booster, path, signature, input_example)

        importance = dict(
            zip(booster.feature_name(), map(float, booster.feature_importance("gain")), strict=True)
        )
        return TrainedModel(
            predict=predict,
            save_mlflow_model=save,
            best_iteration=booster.best_iteration or booster.current_iteration(),
            feature_importance=importance,
            flavor="lightgbm",
        )


def _prepare(
    frame: pd.DataFrame, categorical: list[str], categories: dict[str, list[str]] | None
) -> pd.DataFrame:
    """The model's input frame: categorical columns as pandas categoricals (with the training
    categories when given, so codes match the booster's)."""
    import pandas as pd

    frame = frame.copy()
    for col in categorical:
        values = frame[col].astype("object")
        frame[col] = (
            pd.Categorical(values, categories=categories[col])
            if categories
            else pd.Categorical(values)
        )
    return frame


def _save_model(booster: Any, path: Path, signature: Any, input_example: pd.DataFrame) -> None:
    """The MLflow model: the LightGBM flavor, with the pyfunc flavor pointed at our loader."""
    import lightgbm as lgb
    import mlflow
    import mlflow.lightgbm
    import numpy
    import pandas as pd
    import yaml

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
    mlmodel = path / "MLmodel"
    spec = yaml.safe_load(mlmodel.read_text())
    pyfunc = spec["flavors"]["python_function"]
    pyfunc["loader_module"] = LOADER.stem
    pyfunc["code"] = "code"
    mlmodel.write_text(yaml.safe_dump(spec, sort_keys=False))
