"""The scikit-learn trainer: any estimator by its import path, inside a Pipeline that prepares
raw records, logged with MLflow's sklearn flavour.

    [trainer]
    plugin = "sklearn"
    estimator = "sklearn.ensemble.RandomForestClassifier"   # default per task: HistGradient-
    [trainer.params]                                          # BoostingClassifier / -Regressor
    n_estimators = 300                                        # the estimator's constructor kwargs

The Pipeline: a ColumnTransformer (by column name, so names with spaces or commas are fine)
imputes numbers with their median and categories with a "missing" category, one-hot encodes
the categories (unknown values are ignored: all zeros), then the estimator. Classifiers are
logged with `pyfunc_predict_fn="predict_proba"` so plain `mlflow.pyfunc` gives probabilities
(binary: two columns, the positive class second).

Most estimators report no progress while fitting: one progress event comes at the end, with
the validation metrics.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.errors import UsageError
from workbench.plugins import TrainContext, TrainedModel

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_ESTIMATORS = {
    "binary": "sklearn.ensemble.HistGradientBoostingClassifier",
    "multiclass": "sklearn.ensemble.HistGradientBoostingClassifier",
    "regression": "sklearn.ensemble.HistGradientBoostingRegressor",
}
SEED = 42
_SCALARS = (str, int, float, bool)


def estimator_path(config: Any) -> str:
    return str(config.trainer.estimator or DEFAULT_ESTIMATORS[config.task.type])


def import_estimator(path: str) -> Any:
    """The class at `path` ("package.module.Class"), or a UsageError saying why not."""
    where = f"[trainer].estimator: {path!r}"
    module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise UsageError(f"{where} is not an import path (package.module.Class)")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # ImportError, AttributeError, or the module's own failure
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"{where} does not import ({first})") from None
    if not inspect.isclass(cls) or not hasattr(cls, "fit"):
        raise UsageError(f"{where} is not an estimator class (a class with fit)")
    return cls


def make_estimator(path: str, task: str, params: dict[str, Any]) -> Any:
    """The estimator at `path` built with `params`, checked against the task: a classifier
    with predict_proba for binary/multiclass, a regressor for regression, params its
    constructor takes and (for scikit-learn's own) accepts. UsageError with the first
    problem, "[section].key: problem"."""
    from sklearn.base import is_classifier, is_regressor

    cls = import_estimator(path)
    where, name = f"[trainer].estimator: {path!r}", cls.__name__
    for key, value in params.items():
        if not (
            isinstance(value, _SCALARS)
            or (isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value))
        ):
            raise UsageError(
                f"[trainer.params].{key}: must be a number, string, boolean or a list of them"
            )
    takes = _parameters(cls)
    if takes is not None:
        unknown = [k for k in params if k not in takes]
        if unknown:
            shown = ", ".join(sorted(takes)[:12]) + (", ..." if len(takes) > 12 else "")
            raise UsageError(
                f"[trainer.params].{unknown[0]}: not a parameter of {name} (it takes {shown})"
            )
    kwargs = dict(params)
    if takes is not None and "random_state" in takes and "random_state" not in kwargs:
        kwargs["random_state"] = SEED  # reproducible unless the user says otherwise
    try:
        estimator = cls(**kwargs)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"{where}: cannot be built with [trainer.params] ({first})") from None
    if task == "regression" and not is_regressor(estimator):
        raise UsageError(f"{where} is not a regressor; the regression task needs one")
    if task != "regression":
        if not is_classifier(estimator):
            raise UsageError(f"{where} is not a classifier; the {task} task needs one")
        if not hasattr(estimator, "predict_proba"):
            raise UsageError(
                f"{where} has no predict_proba (with these params); the {task} task needs "
                "class probabilities"
            )
    validate = getattr(estimator, "_validate_params", None)  # scikit-learn's own check
    if callable(validate):
        try:
            validate()
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            named = next((k for k in params if f"'{k}'" in first), None)
            line = f"[trainer.params].{named}: {first}" if named else f"{where}: {first}"
            raise UsageError(line) from None
    return estimator


def _parameters(cls: Any) -> set[str] | None:
    """The constructor's parameter names (None when it takes any keyword)."""
    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return None
    kinds = {p.kind for p in signature.parameters.values()}
    if inspect.Parameter.VAR_KEYWORD in kinds:
        return None
    return {n for n in signature.parameters if n != "self"}


def build_pipeline(estimator: Any, numeric: list[str], categorical: list[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    steps = []
    if numeric:
        steps.append(("num", SimpleImputer(strategy="median", keep_empty_features=True), numeric))
    if categorical:
        encode = Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ])  # fmt: skip
        steps.append(("cat", encode, categorical))
    prepare = ColumnTransformer(steps, remainder="drop", sparse_threshold=0.0)
    return Pipeline([("prepare", prepare), ("model", estimator)])


class SklearnTrainer:
    kind = "trainer"
    name = "sklearn"

    def check_config(self, config: Any) -> list[str]:
        try:
            make_estimator(estimator_path(config), config.task.type, dict(config.trainer.params))
        except UsageError as exc:
            return [str(exc)]
        return []

    def train(self, ctx: TrainContext) -> TrainedModel:
        from workbench.training.evaluation import evaluate

        path = estimator_path(ctx.config)
        estimator = make_estimator(path, ctx.task, ctx.params)
        categorical = [c for c in ctx.features if c in set(ctx.categorical)]
        numeric = [c for c in ctx.features if c not in set(ctx.categorical)]
        pipeline = build_pipeline(estimator, numeric, categorical)
        classify = ctx.task != "regression"
        y = ctx.train[ctx.target].to_numpy(dtype=int if classify else float)
        pipeline.fit(ctx.train[ctx.features], y)

        def predict(frame: pd.DataFrame) -> Any:
            return task_output(pipeline, ctx.task, len(ctx.classes), frame[ctx.features])

        y_valid = ctx.valid[ctx.target].to_numpy(dtype=int if classify else float)
        threshold = float(ctx.config.evaluation.threshold) if ctx.config is not None else 0.5
        scores = evaluate(ctx.task, y_valid, predict(ctx.valid), threshold)
        ctx.on_iteration(1, 1, {f"valid_{k}": v for k, v in scores.items()})

        def save(target: Path, signature: Any, input_example: pd.DataFrame) -> None:
            _save_model(pipeline, classify, target, signature, input_example)

        iterations = getattr(estimator, "n_iter_", None)
        return TrainedModel(
            predict=predict,
            save_mlflow_model=save,
            best_iteration=int(iterations) if isinstance(iterations, int | np.integer) else None,
            feature_importance=_importance(pipeline, numeric, categorical),
            flavor="sklearn",
        )


def task_output(pipeline: Any, task: str, k: int, frame: pd.DataFrame) -> Any:
    """The task's output: the positive-class probability, the (n, k) class probabilities
    (columns by class index, zeros for a class the training rows lacked), the values."""
    if task == "regression":
        return np.asarray(pipeline.predict(frame), dtype=float)
    proba = np.asarray(pipeline.predict_proba(frame), dtype=float)
    full = np.zeros((len(frame), k))
    full[:, [int(c) for c in pipeline.classes_]] = proba
    return full[:, 1] if task == "binary" else full


def _importance(pipeline: Any, numeric: list[str], categorical: list[str]) -> dict[str, float]:
    """The estimator's feature_importances_ summed back onto the input columns (a category's
    one-hot columns add up); {} when it has none."""
    values = getattr(pipeline.named_steps["model"], "feature_importances_", None)
    if values is None:
        return {}
    widths = [(c, 1) for c in numeric]
    if categorical:
        encoder = pipeline.named_steps["prepare"].named_transformers_["cat"]["encode"]
        widths += [(c, len(cats)) for c, cats in zip(categorical, encoder.categories_, strict=True)]
    if sum(w for _, w in widths) != len(values):
        return {}
    out, at = {}, 0
    for column, width in widths:
        out[column] = float(np.sum(values[at : at + width]))
        at += width
    return out


def _requirements(estimator: Any) -> list[str]:
    """Pinned pip requirements: MLflow, scikit-learn and the estimator's own distribution."""
    from importlib import metadata

    import mlflow

    pins = {"mlflow": mlflow.__version__}
    for dist in ("scikit-learn", "cloudpickle", "numpy", "pandas"):
        try:
            pins[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    top = type(estimator).__module__.partition(".")[0]
    for dist in metadata.packages_distributions().get(top, []):
        try:
            pins.setdefault(dist, metadata.version(dist))
        except metadata.PackageNotFoundError:
            continue
    return [f"{name}=={version}" for name, version in pins.items()]


def _save_model(
    pipeline: Any, classify: bool, path: Path, signature: Any, input_example: pd.DataFrame
) -> None:
    import mlflow.sklearn

    mlflow.sklearn.save_model(
        pipeline,
        str(path),
        signature=signature,
        input_example=input_example,
        serialization_format="cloudpickle",
        pip_requirements=_requirements(pipeline.named_steps["model"]),
        pyfunc_predict_fn="predict_proba" if classify else "predict",
    )
