"""An inferred project as commented TOML: the [schema] block alone (`workbench schema infer`)
or a whole workbench.toml (`workbench init --data`), each value's origin in a comment.

Keys are quoted when a column's name is not a bare TOML key (spaces, quotes, commas, dots);
the caller parses the text back (tomllib and the Config model) before writing it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from workbench.data.infer import ColumnGuess, Inference
from workbench.tasks import METRICS

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_COMMENT_AT = 36  # the column a key's comment starts at


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def toml_key(name: str) -> str:
    return name if _BARE.match(name) else toml_string(name)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        items = [toml_value(v) for v in value]
        one_line = "[" + ", ".join(items) + "]"
        if len(one_line) <= 80:
            return one_line
        return "[\n" + "".join(f"    {item},\n" for item in items) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _line(key: str, value: Any, comment: str | None = None) -> str:
    text = f"{key} = {toml_value(value)}"
    if comment and "\n" not in text:
        text = f"{text:<{_COMMENT_AT}}# {comment}"
    elif comment:
        text = f"# {comment}\n{text}"
    return text


def _column(guess: ColumnGuess, role: str | None) -> str:
    header = f"[schema.{toml_key(guess.name)}]"
    lines = [f"{header:<{_COMMENT_AT}}# {role + '; ' if role else ''}seen: {guess.seen}"]
    for key, value in guess.spec.items():
        lines.append(_line(key, value, guess.why.get(key)))
    return "\n".join(lines)


def schema_block(inference: Inference) -> str:
    """The [schema] tables, one per column, with a header saying what was inferred."""
    roles = {
        inference.target: "the target",
        inference.timestamp: "the timestamp",
        inference.id_column: "the id",
    }
    head = [
        f"# [schema.<column>]: the columns the data must have, inferred from "
        f"{inference.rows:,} rows.",
        "# min/max leave headroom beyond the values seen; max_missing (default: [validation]",
        "# max_missing, 0) leaves room above the share missing now; allowed lists the",
        "# categories of a column with few. Edit them to what the data MAY hold.",
    ]
    if inference.left_out:
        head.append("# Not declared (not model inputs; declare them to check or use them):")
        head += [f"#   {name!r}: {why}" for name, why in inference.left_out]
    tables = [_column(g, roles.get(g.name)) for g in inference.columns]
    return "\n".join(head) + "\n\n" + "\n\n".join(tables) + "\n"


def config_text(inference: Inference, *, name: str, data_path: str, origin: str = "") -> str:
    """A whole commented workbench.toml for `inference` (which has a target and task)."""
    assert inference.target is not None and inference.task is not None
    task = inference.task
    data = [
        "# [data]: where the snapshot lives and which columns play special roles.",
        f"# {_one_line(origin)}" if origin else "",
        "[data]",
        _line("path", data_path),
        _line("target", inference.target, "what the model predicts"),
    ]
    if inference.timestamp:
        data.append(_line("timestamp", inference.timestamp, "orders the rows for the split"))
    if inference.id_column:
        data.append(_line("id_column", inference.id_column, "one per row; not a model input"))
    if inference.timestamp:
        data.append(_line("split", "time", "hold out the newest rows, as production would"))
    else:
        data.append(_line("split", "random", "no timestamp: a seeded random holdout"))
    metrics = METRICS[task]
    parts = [
        "# workbench.toml made by `workbench init --data`: every value below was inferred",
        "# from the data; check the comments and edit what the data may really hold.",
        "",
        "# [project]: the project's name (runs, and by default the registered model).",
        "[project]",
        _line("name", name),
        "",
        "\n".join(line for line in data if line),
        "",
        "# [task]: what kind of prediction. " + inference.task_reason + ".",
        "[task]",
        _line("type", task, "binary | multiclass | regression"),
        "",
        schema_block(inference).rstrip("\n"),
        "",
        "# [validation]: project-wide data checks (`workbench validate`).",
        "[validation]",
        _line("max_missing", 0.0, "per column unless its [schema] table sets max_missing"),
        _line("min_rows", min(100, max(1, inference.rows // 2)), "fewer rows fail"),
        _line("max_outlier_fraction", 0.05, "more outliers than this: a warning"),
        "",
        "# [trainer]: the plugin that fits the model, and its parameters.",
        "[trainer]",
        _line("plugin", "lightgbm"),
        "",
        "[trainer.params]",
        _line("num_iterations", 200),
        _line("learning_rate", 0.05),
        "",
        "# [evaluation]: the metric the gate compares; a candidate must beat production on it.",
        f"# {task} metrics: {', '.join(metrics)}.",
        "[evaluation]",
        _line("metric", metrics[0], f"the default for a {task} task"),
        "",
    ]
    return "\n".join(parts)
