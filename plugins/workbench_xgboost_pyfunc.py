"""XGBoost models as Workbench logs them: the sklearn-API estimators that score raw records,
and the pyfunc loader.

Shipped inside each model's `code/` folder (MLflow puts it on `sys.path`), so both
`mlflow.xgboost.load_model` (the `model_class` of the xgboost flavour names the classes below)
and `mlflow.pyfunc.load_model` work without Workbench installed.

The booster is trained on positional feature names (`f0`, `f1`, ...): XGBoost refuses `[`,
`]` and `<` in names and a user's columns may have them. `workbench_xgboost.json` beside the
model file keeps the real names, which columns are categorical and their training categories.
Records are taken by the real names, string columns cast to the training categories (unseen
values become missing, which XGBoost handles), numbers as floats.

- `WorkbenchXGBClassifier.predict_proba(records)`: class probabilities (for `load_scorer`);
- the pyfunc: the positive-class probability (binary), the class probabilities
  (multiclass), the value (regression): what the task needs, never hard labels.
"""

from __future__ import annotations

import json
import os
from typing import Any

import xgboost as xgb

SPEC_FILE = "workbench_xgboost.json"


def read_spec(model_file: str) -> dict[str, Any] | None:
    """The spec beside `model_file` (None for a model logged without one)."""
    path = os.path.join(os.path.dirname(os.path.abspath(model_file)), SPEC_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as fh:
        spec: dict[str, Any] = json.load(fh)
    return spec


def model_frame(data: Any, spec: dict[str, Any] | None) -> Any:
    """Records (real column names, strings for categories) as the booster's input frame."""
    import pandas as pd

    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    if spec is None:
        return frame
    columns, names = list(spec["columns"]), list(spec["names"])
    if not all(c in frame.columns for c in columns) and all(n in frame.columns for n in names):
        columns = names  # already the booster's frame
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"missing feature column(s): {', '.join(map(str, missing))}")
    out = frame[columns].copy()
    out.columns = names
    categories: dict[str, list[str]] = spec.get("categories", {})
    for name in names:
        if name in categories:
            values = out[name].astype("object")
            values = values.where(values.isna(), values.astype(str))
            out[name] = pd.Categorical(values, categories=categories[name])
        elif not pd.api.types.is_numeric_dtype(out[name].dtype):
            out[name] = pd.to_numeric(out[name]).astype("float64")
    return out


class _RawRecords:
    """Takes raw records in `predict`/`predict_proba`; reads the spec when loaded from a file."""

    workbench_spec: dict[str, Any] | None = None

    def load_model(self, fname: Any) -> None:
        super().load_model(fname)  # type: ignore[misc]
        if isinstance(fname, str | os.PathLike):
            self.workbench_spec = read_spec(os.fspath(fname))

    def predict(self, X: Any, *args: Any, **kwargs: Any) -> Any:
        return super().predict(model_frame(X, self.workbench_spec), *args, **kwargs)  # type: ignore[misc]


class WorkbenchXGBClassifier(_RawRecords, xgb.XGBClassifier):
    def predict_proba(self, X: Any, *args: Any, **kwargs: Any) -> Any:
        return super().predict_proba(model_frame(X, self.workbench_spec), *args, **kwargs)


class WorkbenchXGBRegressor(_RawRecords, xgb.XGBRegressor):
    pass


class _XGBoostScorer:
    """The pyfunc: what the task needs per row (see the module docstring)."""

    def __init__(self, model: Any, task: str) -> None:
        self.model, self.task = model, task

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        if self.task == "regression":
            return self.model.predict(data)
        proba = self.model.predict_proba(data)
        return proba[:, 1] if self.task == "binary" else proba

    def get_raw_model(self) -> Any:
        return self.model


def _load_pyfunc(path: str) -> _XGBoostScorer:
    model_file = path if os.path.isfile(path) else os.path.join(path, "model.ubj")
    spec = read_spec(model_file) or {}
    task = str(spec.get("task", "binary"))
    model: Any = WorkbenchXGBRegressor() if task == "regression" else WorkbenchXGBClassifier()
    model.load_model(model_file)
    return _XGBoostScorer(model, task)
