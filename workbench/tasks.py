"""The three tasks Workbench knows, what each one's metrics are, and what a model of each outputs.

Pure definitions (no numpy): the config checks metric names against them, the gate reads the
directions, serving and the logs read `ModelTask` beside each model.

What a model outputs, per task, everywhere in Workbench (a trainer's `predict`, the scorer
of any MLflow model, the server):

- binary: one number per row, the positive-class probability; the label is the class at
  `threshold`.
- multiclass: one row of class probabilities per row (columns in `classes` order); the label
  is the most likely class.
- regression: one number per row, the value.

Classes are encoded as their index in `classes` wherever a number is stored (the training
target handed to trainers, the prediction log's `output` for multiclass, the labels log), so
the logs keep their numeric columns whatever the labels are called.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

TaskType = Literal["binary", "multiclass", "regression"]
TASKS: tuple[str, ...] = get_args(TaskType)

#: Each task's metrics, the default (what the gate compares) first.
METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("auc", "logloss", "accuracy", "precision", "recall", "f1", "average_precision"),
    "multiclass": ("macro_f1", "accuracy", "weighted_f1", "logloss"),
    "regression": ("rmse", "mae", "r2", "mape"),
}
#: Metrics where a smaller value is better; every other metric is maximised.
LOWER_IS_BETTER = frozenset({"logloss", "rmse", "mae", "mape"})
ALL_METRICS: tuple[str, ...] = tuple(dict.fromkeys(m for ms in METRICS.values() for m in ms))
#: The prefixes runs log metrics under.
PREFIXES = ("holdout_", "valid_", "train_", "champion_")

TASK_FILE = "workbench_task.json"


def bare_metric(name: str) -> str:
    """`holdout_rmse` -> `rmse`."""
    stripped = True
    while stripped:  # champion_holdout_auc -> auc
        stripped = False
        for prefix in PREFIXES:
            if name.startswith(prefix):
                name, stripped = name[len(prefix) :], True
    return name


def default_metric(task: str) -> str:
    return METRICS[task][0]


def higher_is_better(metric: str) -> bool:
    """Direction of a metric, also under the names runs log it with (`holdout_logloss`)."""
    return bare_metric(metric) not in LOWER_IS_BETTER


def is_classification(task: str) -> bool:
    return task in ("binary", "multiclass")


def fmt_metric(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"


@dataclass(frozen=True)
class ModelTask:
    """What a model predicts, saved beside it (`workbench_task.json` in the model folder) so
    serving, drift and the labels join read it without MLflow or the training config.

    `classes` are the target's values in index order (classification); `threshold` turns a
    binary probability into a label. A model without the file is a binary model from before
    tasks existed: classes [0, 1]."""

    type: str = "binary"
    classes: list[Any] = field(default_factory=lambda: [0, 1])
    threshold: float = 0.5
    target: str = ""

    @property
    def positive_class(self) -> Any:
        return self.classes[-1] if self.classes else 1

    def label_of(self, index: int) -> Any:
        return self.classes[index] if 0 <= index < len(self.classes) else index

    def index_of(self, label: Any) -> int | None:
        """The class index of a label as a client sends it: the class itself, its text
        ("1" for 1, "true" for True), or the same number (1 for 1.0). None: not a class."""
        for i, c in enumerate(self.classes):
            if label == c or str(label) == str(c):
                return i
        text = str(label).strip().lower()
        for i, c in enumerate(self.classes):
            if str(c).lower() == text:
                return i
        number = _number(label)
        if number is not None:
            for i, c in enumerate(self.classes):
                if _number(c) == number:
                    return i
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, model_dir: Path) -> None:
        """Written whole or not at all (a temp file, then renamed): readers never see half."""
        import os

        path = Path(model_dir) / TASK_FILE
        tmp = path.with_name(f".{TASK_FILE}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(self.to_dict(), default=_plain))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelTask:
        kind = d.get("type", "binary")
        if kind not in TASKS:
            raise ValueError(f"unknown task type {kind!r}")
        classes = d.get("classes")
        return cls(
            type=kind,
            classes=list(classes)
            if isinstance(classes, list)
            else ([] if kind == "regression" else [0, 1]),
            threshold=float(d.get("threshold", 0.5)),
            target=str(d.get("target", "")),
        )

    @classmethod
    def load(cls, model_dir: Path) -> ModelTask:
        path = Path(model_dir) / TASK_FILE
        if not path.is_file():
            return cls()
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: not a task description ({exc})") from None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _plain(value: Any) -> Any:
    """numpy scalars (classes read from data) as plain JSON values."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
