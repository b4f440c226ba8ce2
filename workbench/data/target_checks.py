"""The target's check per task (binary: two classes, multiclass: 2 to MAX_CLASSES classes,
regression: numbers), the task a target's values suggest, and the refusal of datetime
features. `workbench init` and `workbench validate` judge a target by the same rules."""

from __future__ import annotations

from typing import Any

import polars as pl

from workbench.config import Config
from workbench.data.checks import Check, Plan
from workbench.data.dtypes import dtype_name
from workbench.tasks import TaskType

#: More classes than this is not a classification a model learns well: a regression?
MAX_CLASSES = 100
#: A whole-number target with at most this many values reads as classes, not a quantity.
FEW_CLASSES = 20


def class_text(value: Any) -> str:
    """A class as polars spells it in a String cast (True -> 'true')."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def shown(values: list[Any], most: int = 6) -> str:
    head = ", ".join(repr(v) for v in values[:most])
    return head + (f", ... ({len(values):,} in all)" if len(values) > most else "")


def suggest_task(dtype: pl.DataType, n_distinct: int, integral: bool) -> TaskType | None:
    """The task a target's values suggest; None when none fits (text with too many values)."""
    if dtype == pl.Boolean or n_distinct == 2:
        return "binary"
    if dtype.is_numeric():
        few = (dtype.is_integer() or integral) and n_distinct <= FEW_CLASSES
        return "multiclass" if few else "regression"
    return "multiclass" if n_distinct <= MAX_CLASSES else None


def task_problem(
    task: TaskType, target: str, dtype: pl.DataType, n_distinct: int, integral: bool = False
) -> str | None:
    """Why `task` cannot learn this target (one line with the fix), or None."""
    other = suggest_task(dtype, n_distinct, integral)
    hint = f' — set [task].type = "{other}"' if other and other != task else ""
    if task == "regression":
        if not dtype.is_numeric():
            return (
                f"target {target!r} is {dtype_name(dtype)}; a regression task needs numbers{hint}"
            )
        if n_distinct < 2:
            return f"target {target!r} has only {n_distinct} distinct value; nothing to learn"
        return None
    if task == "binary" and n_distinct != 2:
        if n_distinct < 2:
            return f"target {target!r} has only {n_distinct} class; a binary task needs 2"
        return f"target {target!r} has {n_distinct:,} distinct values; a binary task needs 2{hint}"
    if task == "multiclass":
        if n_distinct < 2:
            return f"target {target!r} has only {n_distinct} class; need 2 or more"
        if n_distinct > MAX_CLASSES:
            why = hint or " — too many to learn as classes"
            return (
                f"target {target!r} has {n_distinct:,} distinct values; a multiclass task "
                f"takes at most {MAX_CLASSES}{why}"
            )
    return None


def target_check(plan: Plan, config: Config, dtype: pl.DataType) -> None:
    """Missing labels, and the target's values against the task (and [task].classes)."""
    task, target = config.task, config.data.target
    col = pl.col(target)
    values = col.drop_nulls()
    if dtype.is_float():
        values = values.filter(values.is_finite())
    nulls = plan.add(col.null_count() + (col.is_nan().sum() if dtype.is_float() else 0))
    distinct = plan.add(values.n_unique())
    examples = plan.add(values.unique().sort().head(7).implode())
    integral = plan.add((values == values.round(0)).all()) if dtype.is_float() else None
    unknown = None
    if task.classes is not None and task.type != "regression":
        allowed = [class_text(c) for c in task.classes]
        outside = values.cast(pl.String).is_in(allowed).not_()
        unknown = plan.add(values.cast(pl.String).filter(outside).unique().sort().implode())

    def finish(stats: dict[str, Any]) -> list[Check]:
        n_null, n = int(stats[nulls] or 0), int(stats[distinct] or 0)
        seen = list(stats[examples] or [])
        problems = [f"{n_null:,} missing label{'s' if n_null != 1 else ''}"] if n_null else []
        whole = bool(stats[integral]) if integral else False
        problem = task_problem(task.type, target, dtype, n, whole)
        if unknown is not None and stats[unknown]:
            problems.append(
                f"value(s) {shown(list(stats[unknown]))} are not in [task].classes "
                f"{shown(list(task.classes or []))}"
            )
        elif problem:
            problems.append(problem)
        positive = task.positive_class
        if positive is not None and n <= 7 and class_text(positive) not in map(class_text, seen):
            problems.append(f"[task].positive_class {positive!r} is not a value ({shown(seen)})")
        if problems:
            return [Check("target", target, "fail", "; ".join(problems), float(n))]
        if task.type == "regression":
            detail = f"numeric, {n:,} distinct values, no missing labels"
        else:
            word = "class" if n == 1 else "classes"
            detail = f"{task.type}: {n:,} {word} ({shown(seen)}), no missing labels"
        return [Check("target", target, "pass", detail, float(n))]

    plan.finishers.append(finish)


def datetime_feature_checks(config: Config) -> list[Check]:
    """A datetime column is no model input (trainers take numbers and categories): refuse it
    at validation, naming the two ways out."""
    checks = []
    for name in config.features:
        if config.schema_[name].type == "datetime":
            detail = (
                f"{name!r} is a datetime feature, which models cannot take: set "
                f"[data].timestamp = {name!r} (the time split) or add it to [data].drop "
                "(derive numbers from it, e.g. days since, if it matters)"
            )
            checks.append(Check("config", name, "fail", detail))
    return checks
