"""pyfunc loader that Workbench puts in front of a classifier it did not train (a script
trainer's model, a model registered with `workbench register`).

Shipped inside the model's `code/` folder, so `mlflow.pyfunc.load_model` works without
Workbench installed; it imports nothing of Workbench. The model keeps its own flavours (an
sklearn model still loads with `mlflow.sklearn.load_model`); only the `python_function`
flavour points here, with the original loader kept under `workbench_inner_loader`. Scoring
gives what Workbench serves for the task in `workbench_task.json` beside the model: the
positive-class probability (binary) or the class probabilities in the task's class order
(multiclass), from the native model's `predict_proba` when it has one, else from the
original pyfunc's output.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

#: Keys of the `python_function` flavour this loader adds (the original values kept).
INNER_LOADER = "workbench_inner_loader"
INNER_PREDICT_FN = "workbench_inner_predict_fn"
TASK_FILE = "workbench_task.json"
_PROBA_FLAVOURS = ("sklearn", "xgboost", "lightgbm", "catboost")


def _model_dir(path: str) -> str:
    """The folder holding `MLmodel`: `path` itself or the nearest folder above it."""
    here = os.path.abspath(path)
    while True:
        folder = here if os.path.isdir(here) else os.path.dirname(here)
        if os.path.isfile(os.path.join(folder, "MLmodel")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            raise FileNotFoundError(f"no MLmodel file at or above {path}")
        here = parent


def _read_yaml(path: str) -> dict[str, Any]:
    import yaml

    with open(path, encoding="utf-8") as fh:
        spec = yaml.safe_load(fh)
    return spec if isinstance(spec, dict) else {}


def _task(model_dir: str) -> dict[str, Any]:
    path = os.path.join(model_dir, TASK_FILE)
    if not os.path.isfile(path):
        return {"type": "binary", "classes": [0, 1]}
    with open(path, encoding="utf-8") as fh:
        task = json.load(fh)
    return task if isinstance(task, dict) else {"type": "binary", "classes": [0, 1]}


def class_order(task_classes: list[Any], model_classes: list[Any]) -> list[int] | None:
    """Columns of `predict_proba` in the task's class order (None: they do not line up)."""
    index = {str(c): i for i, c in enumerate(model_classes)}
    order = [index.get(str(c)) for c in task_classes]
    if len(model_classes) == len(task_classes) and all(i is not None for i in order):
        return [int(i) for i in order if i is not None]
    if [str(c) for c in model_classes] == [str(i) for i in range(len(task_classes))]:
        return list(range(len(task_classes)))  # trained on the class indices
    return None


def _native_classifier(model_dir: str, flavours: dict[str, Any]) -> Any:
    for name in _PROBA_FLAVOURS:
        if name not in flavours:
            continue
        try:
            module = importlib.import_module(f"mlflow.{name}")
            native = module.load_model(model_dir)
        except Exception:  # not loadable natively here: the original pyfunc scores it
            continue
        if hasattr(native, "predict_proba") and hasattr(native, "classes_"):
            return native
    return None


class _TaskModel:
    def __init__(self, task: dict[str, Any], native: Any, order: list[int] | None, inner: Any,
                 inner_fn: str) -> None:  # fmt: skip
        self.kind = str(task.get("type", "binary"))
        self.native, self.order = native, order
        self.inner, self.inner_fn = inner, inner_fn

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        import numpy as np

        if self.native is not None and self.order is not None:
            proba = np.asarray(self.native.predict_proba(data), dtype=float)[:, self.order]
            return proba[:, 1] if self.kind == "binary" else proba
        out = getattr(self.inner, self.inner_fn)(data)
        values = out.to_numpy() if hasattr(out, "to_numpy") else np.asarray(out)
        if self.kind == "binary" and values.ndim == 2 and values.shape[1] == 2:
            return values[:, 1]
        return out

    def get_raw_model(self) -> Any:
        return self.native if self.native is not None else self.inner


def _load_pyfunc(path: str, model_config: dict[str, Any] | None = None) -> _TaskModel:
    model_dir = _model_dir(path)
    spec = _read_yaml(os.path.join(model_dir, "MLmodel"))
    flavours = spec.get("flavors") or {}
    conf = flavours.get("python_function") or {}
    task = _task(model_dir)
    native, order = None, None
    if task.get("type") in ("binary", "multiclass"):
        native = _native_classifier(model_dir, flavours)
        if native is not None:
            order = class_order(list(task.get("classes") or []), list(native.classes_))
    inner = None
    if native is None or order is None:
        loader = importlib.import_module(str(conf[INNER_LOADER]))
        inner = (
            loader._load_pyfunc(path, model_config) if model_config else loader._load_pyfunc(path)
        )
    return _TaskModel(task, native, order, inner, str(conf.get(INNER_PREDICT_FN) or "predict"))
