"""What a prediction response says, per the served model's task, and the one number per record
the prediction log keeps (`workbench.training.scoring.scalar_output`'s semantics).

- binary: `prediction` is the positive-class probability, `label` the class at the model's
  threshold (as the class value: 0/1, "yes"...); the log keeps the probability.
- multiclass: `prediction` is the most likely class (its value), `probabilities` maps each
  class to its probability; the log keeps the class's index.
- regression: `prediction` is the value; the log keeps it.

A batch answers the same fields as lists: `predictions`, `labels`, `probabilities`.

`Shaper` is built once per served version; its methods run on every request, so the binary
single-record path is one comparison and a small dict.

Passthrough fields the request carried (`[data] id_column`, `[serving] passthrough`) come back
as they were sent: `"passthrough": {"customer_id": "c-17"}` in a record's answer, a list (one
object or null per record) in a batch's; absent when no record carried any.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from workbench.tasks import ModelTask

if TYPE_CHECKING:
    from workbench.config import Config
    from workbench.serving.payloads import Parsed


def class_key(value: Any) -> str:
    """A class as a JSON object key (how `probabilities` names it): a string as is, anything
    else as JSON writes it (0 -> "0", true -> "true")."""
    return value if isinstance(value, str) else json.dumps(value)


class Shaper:
    """Turns a predictor's outputs into response fields and log numbers for one task."""

    __slots__ = ("_keys", "_neg", "_pos", "classes", "kind", "task", "threshold")

    def __init__(self, task: ModelTask) -> None:
        self.task = task
        self.kind = task.type
        self.classes = list(task.classes)
        self.threshold = task.threshold
        self._neg = self.classes[0] if len(self.classes) == 2 else 0
        self._pos = self.classes[-1] if len(self.classes) == 2 else 1
        self._keys = [class_key(c) for c in self.classes]

    def single(self, out: Any) -> tuple[dict[str, Any], float]:
        """(the response fields of one record, its log number)."""
        kind = self.kind
        if kind == "binary":
            label = self._pos if out >= self.threshold else self._neg
            return {"prediction": out, "label": label}, out
        if kind == "regression":
            return {"prediction": out}, out
        index = max(range(len(out)), key=out.__getitem__)
        fields = {
            "prediction": self.classes[index],
            "probabilities": dict(zip(self._keys, out, strict=True)),
        }
        return fields, float(index)

    def batch(self, outs: list[Any]) -> tuple[dict[str, Any], list[float]]:
        """(the response fields of a batch, the log numbers)."""
        kind = self.kind
        if kind == "binary":
            t, pos, neg = self.threshold, self._pos, self._neg
            return {"predictions": outs, "labels": [pos if p >= t else neg for p in outs]}, outs
        if kind == "regression":
            return {"predictions": outs}, outs
        keys, classes = self._keys, self.classes
        indices = [max(range(len(row)), key=row.__getitem__) for row in outs]
        fields = {
            "predictions": [classes[i] for i in indices],
            "probabilities": [dict(zip(keys, row, strict=True)) for row in outs],
        }
        return fields, [float(i) for i in indices]


def passthrough_fields(config: Config) -> tuple[str, ...]:
    """The fields a request may carry that are logged and returned, never fed to the model:
    the project's id column, then `[serving] passthrough` (the reserved request_id left out)."""
    names = [config.data.id_column, *config.serving.passthrough]
    return tuple(dict.fromkeys(n for n in names if n and n != "request_id"))


def with_passthrough(payload: dict[str, Any], parsed: Parsed) -> None:
    """Add the passthrough fields the request carried to its answer (nothing when none)."""
    carried = parsed.passthrough
    if carried is not None:
        payload["passthrough"] = carried[0] if parsed.single else carried


def sticky_record(parsed: Parsed) -> dict[str, Any]:
    """The first record as a canary's sticky key reads it: its passthrough fields too (a
    sticky `customer_id` need not be a model input)."""
    first = parsed.records[0]
    carried = parsed.passthrough[0] if parsed.passthrough else None
    return {**first, **carried} if carried else first


__all__ = ["Shaper", "class_key", "passthrough_fields", "sticky_record", "with_passthrough"]
