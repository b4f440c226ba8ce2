"""Scoring any MLflow model the way its task needs: probabilities for classifiers, never
hard labels; values for regression.

`load_scorer(model_dir, task)` looks at the model's flavours: a scikit-learn (or sklearn-API
XGBoost / LightGBM) classifier is scored with `predict_proba`, its `classes_` lined up with
the task's classes; anything else goes through `mlflow.pyfunc`, whose output must already be
what the task needs (see `as_task_output`). A classifier whose only output is hard labels is
an error that says how to log it so it gives probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.errors import WorkbenchError
from workbench.tasks import ModelTask

if TYPE_CHECKING:
    import pandas as pd

Scorer = Callable[["pd.DataFrame"], np.ndarray]

#: Flavours whose native model may have `predict_proba` (the sklearn API).
_PROBA_FLAVOURS = ("sklearn", "xgboost", "lightgbm", "catboost")


class ScoringError(WorkbenchError):
    """A model that cannot be scored for the project's task (exit 1)."""


def as_task_output(task: ModelTask, raw: Any, n: int, what: str = "the model") -> np.ndarray:
    """The model's raw output as the task's output (binary: (n,) probabilities; multiclass:
    (n, K); regression: (n,)), or a ScoringError naming what is wrong."""
    values = raw.to_numpy() if hasattr(raw, "to_numpy") else np.asarray(raw)
    if values.dtype.kind in "OUS":  # objects, numpy strings and bytes
        try:
            values = values.astype(float)
        except (TypeError, ValueError):
            raise ScoringError(
                f"{what} returns labels ({_sample(values)}), not numbers"
                + (_PROBA_HINT if task.type != "regression" else "")
            ) from None
    values = np.asarray(values, dtype=float)
    k = len(task.classes)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.shape[0] != n:
        raise ScoringError(f"{what} returned {values.shape[0]} rows for {n}")
    if task.type == "regression":
        if values.ndim != 1:
            raise ScoringError(f"{what} returns shape {values.shape}; regression needs one value")
        return values
    if task.type == "binary":
        if values.ndim == 2 and values.shape[1] == 2:
            return values[:, 1]
        if values.ndim != 1:
            raise ScoringError(
                f"{what} returns shape {values.shape}; a binary model gives one "
                "probability per row or two columns of class probabilities"
            )
        if n and _hard_labels(values):
            raise ScoringError(
                f"{what} returns hard labels (only 0 and 1), not probabilities" + _PROBA_HINT
            )
        if n and (values.min() < 0 or values.max() > 1):
            raise ScoringError(
                f"{what} returns values outside [0, 1]; a binary model gives "
                "the positive-class probability"
            )
        return values
    if values.ndim != 2 or values.shape[1] != k:
        raise ScoringError(
            f"{what} returns shape {values.shape}; a multiclass model gives {k} class "
            "probabilities per row" + (_PROBA_HINT if values.ndim == 1 else "")
        )
    return values


_PROBA_HINT = (
    "; log it with probabilities (mlflow.sklearn.log_model(..., pyfunc_predict_fn="
    '"predict_proba")) or register a model with predict_proba'
)


def scalar_output(task: ModelTask, output: Any) -> Any:
    """One number per row, as the prediction log stores it: the probability (binary), the
    most likely class's index (multiclass), the value (regression)."""
    arr = np.asarray(output, dtype=float)
    return arr.argmax(axis=1).astype(float) if task.type == "multiclass" else arr


def _hard_labels(values: np.ndarray) -> bool:
    return bool(np.isin(values, (0.0, 1.0)).all()) and len(values) > 1


def _sample(values: np.ndarray) -> str:
    return ", ".join(repr(v) for v in list(dict.fromkeys(values.tolist()))[:3])


def flavours(model_dir: Path) -> dict[str, Any]:
    import yaml

    try:
        spec = yaml.safe_load((Path(model_dir) / "MLmodel").read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ScoringError(f"{model_dir}: not an MLflow model ({exc})") from None
    found = spec.get("flavors") if isinstance(spec, dict) else None
    return found if isinstance(found, dict) else {}


def load_scorer(model_dir: Path, task: ModelTask) -> Scorer:
    """A function from a pandas frame of raw records to the task's output."""
    model_dir = Path(model_dir)
    found = flavours(model_dir)
    what = f"the model in {model_dir}"
    if task.type != "regression":
        native = _native_classifier(model_dir, found)
        if native is not None:
            order = _class_order(task, list(native.classes_), what)

            def proba(frame: pd.DataFrame) -> np.ndarray:
                p = np.asarray(native.predict_proba(frame), dtype=float)[:, order]
                return as_task_output(task, p, len(frame), what)

            return proba
    import mlflow.pyfunc

    try:
        model = mlflow.pyfunc.load_model(str(model_dir))
    except Exception as exc:  # MLflow raises many kinds; one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ScoringError(f"{what}: cannot load it ({first})") from None

    def score(frame: pd.DataFrame) -> np.ndarray:
        return as_task_output(task, model.predict(frame), len(frame), what)

    return score


def _native_classifier(model_dir: Path, found: dict[str, Any]) -> Any:
    """The flavour's own model object when it has `predict_proba` and `classes_`."""
    for name in _PROBA_FLAVOURS:
        if name not in found:
            continue
        try:
            module = __import__(f"mlflow.{name}", fromlist=["load_model"])
            native = module.load_model(str(model_dir))
        except Exception:  # not loadable natively here: fall back to pyfunc
            continue
        if hasattr(native, "predict_proba") and hasattr(native, "classes_"):
            return native
    return None


def _class_order(task: ModelTask, model_classes: list[Any], what: str) -> list[int]:
    """Column indices of `predict_proba` in the task's class order."""
    index = {str(c): i for i, c in enumerate(model_classes)}
    order = [index.get(str(c)) for c in task.classes]
    if all(i is not None for i in order) and len(model_classes) == len(task.classes):
        return [int(i) for i in order if i is not None]
    encoded = [str(i) for i in range(len(task.classes))]
    if [str(c) for c in model_classes] == encoded:  # trained on class indices
        return list(range(len(task.classes)))
    raise ScoringError(
        f"{what} knows classes {model_classes[:6]}, the project has {task.classes[:6]}"
    )
