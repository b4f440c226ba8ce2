"""Delayed ground truth as POST /labels sends it: `{"request_id": ..., "label": ...}`, a list
of those, or `{"labels": [...]}`, checked the way `workbench.serving.payloads` checks records
(its errors, its one-line `PayloadError`), and each label turned into the number the labels
log keeps: the class index for a classification model (`ModelTask.index_of`), the value for
regression.
"""

from __future__ import annotations

import json
from typing import Any

from workbench.serving.client_strings import request_id_problem
from workbench.serving.payloads import (
    MAX_LABELS,
    Loc,
    PayloadError,
    _Errors,
    _Full,
    _kind,
    _load_json,
)
from workbench.serving.signature import _check_double, _Invalid, _show
from workbench.tasks import ModelTask

_LABEL_KEYS = ("request_id", "label")


def _label_items(data: Any) -> tuple[list[Any], bool]:
    """The label objects of a body, and whether it was a single label."""
    if type(data) is dict and "labels" in data:
        extra = [k for k in data if k != "labels"]
        if extra:
            raise PayloadError(
                [(("body", extra[0]), "unexpected key next to 'labels'", "extra_forbidden")],
                what="labels",
            )
        items = data["labels"]
        if type(items) is not list:
            problem = f"expected a list of labels, got {_kind(items)}"
            raise PayloadError([(("body", "labels"), problem, "list_type")], what="labels")
        return items, False
    if type(data) is dict:
        return [data], True
    if type(data) is list:
        return data, False
    raise PayloadError.body(
        f"expected a JSON object (a label) or an array of labels, got {_kind(data)}",
        "model_type",
        "labels",
    )


def _one_label(
    item: Any, loc: Loc, errs: _Errors, task: ModelTask | None
) -> tuple[str, float] | None:
    """(request id, label) of one label object, or None with its problems added to `errs`."""
    if type(item) is not dict:
        errs.add(loc, f"expected an object (a label), got {_kind(item)}", "dict_type")
        return None
    rid = item.get("request_id")
    label = item.get("label")
    ok = True
    if rid is None:
        errs.add((*loc, "request_id"), "missing required field", "missing")
        ok = False
    else:
        problem = request_id_problem(rid)
        if problem is not None:
            errs.add((*loc, "request_id"), problem, "request_id")
            ok = False
    value = 0.0
    if label is None:
        errs.add((*loc, "label"), "missing required field", "missing")
        ok = False
    elif task is not None and task.type != "regression":
        index = task.index_of(label) if type(label) in (str, int, float, bool) else None
        if index is None:
            errs.add((*loc, "label"), _not_a_class(label, rid, task), "enum")
            ok = False
        else:
            value = float(index)
    elif label is True or label is False:
        if task is not None:  # regression: a value, not a truth
            errs.add((*loc, "label"), "expected a number, got a boolean", "float_type")
            ok = False
        value = 1.0 if label else 0.0
    else:
        try:
            value = _check_double(label)
        except _Invalid as exc:
            errs.add((*loc, "label"), exc.args[0], exc.args[1])
            ok = False
    for key in item:
        if key not in _LABEL_KEYS:
            problem = "unknown field (a label takes: request_id, label)"
            errs.add((*loc, key), problem, "extra_forbidden")
            ok = False
    return (rid, value) if ok and isinstance(rid, str) else None


def _not_a_class(label: Any, rid: Any, task: ModelTask) -> str:
    shown = label if type(label) is not str else _show(label)
    of = f" (request_id {_show(rid)})" if type(rid) is str else ""
    classes = ", ".join(json.dumps(c) for c in task.classes[:20])
    more = f", ... ({len(task.classes)} in all)" if len(task.classes) > 20 else ""
    got = (
        "an array" if isinstance(label, list) else "an object" if isinstance(label, dict) else shown
    )
    return f"{got}{of} is not a class of the model (classes: {classes}{more})"


def parse_labels(
    body: bytes, max_records: int = MAX_LABELS, task: ModelTask | None = None
) -> list[tuple[str, float]]:
    """Delayed ground truth: `{"request_id": ..., "label": ...}`, a list of those, or
    `{"labels": [...]}`, as (request id, the number the labels log keeps).

    For a classification `task` a label is one of its classes as the client knows it (the
    value, its text, a boolean for classes 0/1) and is kept as the class index; for
    regression a finite number. Without a task: a finite number or a boolean (true -> 1.0)."""
    errs = _Errors()
    items, single = _label_items(_load_json(body, "labels"))
    if not items:
        raise PayloadError.body("empty batch; send at least one label", "too_short", "labels")
    if len(items) > max_records:
        raise PayloadError.body(
            f"too many labels: {len(items)} (the limit is {max_records})", "too_long", "labels"
        )
    out: list[tuple[str, float]] = []
    try:
        for index, item in enumerate(items):
            loc: Loc = ("body",) if single else ("body", index)
            one = _one_label(item, loc, errs, task)
            if one is not None:
                out.append(one)
    except _Full:
        raise PayloadError(errs.items, truncated=True, what="labels") from None
    if errs.items:
        raise PayloadError(errs.items, what="labels")
    return out
