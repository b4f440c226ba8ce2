"""Schema inference and messy CSV reading on small real frames and files: every kind of mess
gets a sensible [schema] entry or a one-line note, and the TOML written for it parses."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from workbench.config import parse_config
from workbench.data.infer import Inference, infer
from workbench.data.snapshot import load_frame, read_data
from workbench.data.target_checks import task_problem
from workbench.data.toml_text import config_text, schema_block, toml_key
from workbench.data.validation import validate_frame
from workbench.errors import UsageError

N = 300


def _messy_csv(path: Path) -> Path:
    rng = np.random.default_rng(3)
    lines = ["order id,placed,paid,amount,items,zip,note,empty,const,colour,y,label,grade"]
    for i in range(N):
        placed = f"2023-{i % 12 + 1:02d}-{i % 28 + 1:02d}"
        if i % 7 == 0:
            placed = f"{i % 28 + 1:02d}/{i % 12 + 1:02d}/2023"  # another format, day-first
        if i % 11 == 0:
            placed = f"2023-{i % 12 + 1:02d}-{i % 28 + 1:02d} 10:30:00"
        paid = ["yes", "no", "TRUE", "false"][i % 4]
        amount = ["N/A", "NA", "null", "", "-"][i % 5] if i % 9 == 0 else f"{rng.gamma(2, 20):.2f}"
        items = "" if i % 13 == 0 else str(int(rng.integers(1, 9)))
        zip_code = f"0{int(rng.integers(1000, 9999))}"
        note = f"free text {i} {int(rng.integers(1e9))}"
        colour = ["red", "green", "blue"][i % 3]
        y = f"{rng.normal(50, 10):.3f}"
        label = ["cat", "dog", "bird"][int(rng.integers(0, 3))]
        grade = str(int(rng.integers(0, 3)))
        row = [f"A{i:04d}", placed, paid, amount, items, zip_code, note, "", "same", colour]
        lines.append(",".join([*row, y, label, grade]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _messy_csv(tmp_path_factory.mktemp("messy") / "orders.csv")


@pytest.fixture(scope="module")
def inferred(messy: Path) -> Inference:
    read = read_data(messy)
    return infer(read.frame, target="y", notes=read.notes)


def _left_out(result: Inference) -> dict[str, str]:
    return dict(result.left_out)


# ---------------------------------------------------------------- reading messy CSV


def test_dates_in_several_formats_read_as_datetime(messy: Path) -> None:
    frame = load_frame(messy)
    assert frame.schema["placed"] == pl.Datetime("us")
    assert frame["placed"].null_count() == 0
    assert frame["placed"][7].month == 8 and frame["placed"][7].day == 8  # 08/08/2023
    assert frame["placed"][14].day == 15 and frame["placed"][14].month == 3  # 15/03/2023


def test_yes_no_true_false_read_as_bool(messy: Path) -> None:
    frame = load_frame(messy)
    assert frame.schema["paid"] == pl.Boolean
    assert frame["paid"].head(4).to_list() == [True, False, True, False]


def test_na_spellings_in_numbers_are_missing(messy: Path) -> None:
    frame = load_frame(messy)
    assert frame.schema["amount"] == pl.Float64
    assert frame["amount"].null_count() == len(range(0, N, 9))
    assert frame.schema["items"] == pl.Int64  # integers with missing values stay integers
    assert frame["items"].null_count() == len(range(0, N, 13))


def test_leading_zeros_stay_text_with_a_note(messy: Path) -> None:
    read = read_data(messy)
    assert read.frame.schema["zip"] == pl.String
    assert any("'zip'" in n and "leading zeros" in n for n in read.notes)


def test_a_column_of_mostly_numbers_stays_text_naming_the_rest(tmp_path: Path) -> None:
    values = [str(i) for i in range(50)] + ["abc", "n.a.", "abc"]
    path = tmp_path / "x.csv"
    path.write_text("v\n" + "\n".join(values) + "\n")
    read = read_data(path)
    assert read.frame.schema["v"] == pl.String
    (note,) = read.notes
    assert "'v'" in note and "3 of 53" in note and "'abc'" in note and "'n.a.'" in note


def test_declared_types_drive_the_read(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2.5,0012\n2,abc,0013\n,3,0014\n")
    specs = parse_config(
        '[project]\nname = "p"\n[data]\npath = "x.csv"\ntarget = "a"\nsplit = "random"\n'
        '[schema.a]\ntype = "float"\n[schema.b]\ntype = "float"\n[schema.c]\ntype = "int"\n'
    ).schema_
    frame = load_frame(path, specs)
    assert frame.schema["a"] == pl.Float64  # declared float: read as float, not int
    assert frame.schema["b"] == pl.String  # 'abc' does not parse: kept for validate to name
    assert frame.schema["c"] == pl.Int64  # declared int: leading zeros do not matter


def test_quoted_header_names_keep_their_quotes(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text('"say ""hi"".x","a, b"\n1,2\n')
    assert load_frame(path).columns == ['say "hi".x', "a, b"]


# ---------------------------------------------------------------- the inferred schema


def test_messy_columns_get_sensible_schema(inferred: Inference) -> None:
    schema = inferred.schema
    assert schema["paid"] == {"type": "bool"}
    assert schema["amount"]["type"] == "float" and schema["amount"]["min"] == 0
    assert schema["amount"]["max"] > 0
    assert 0.11 < schema["amount"]["max_missing"] < 0.3  # 11.3% missing, with headroom
    assert schema["items"]["type"] == "int" and schema["items"]["max_missing"] > 0.077
    assert schema["colour"] == {"type": "category", "allowed": ["blue", "green", "red"]}
    assert "zip" not in schema  # codes, nearly one per row: left out, not a category
    assert schema["placed"] == {"type": "datetime"}


def test_roles_are_guessed_and_said(inferred: Inference) -> None:
    assert inferred.id_column == "order id"
    assert inferred.timestamp == "placed"
    assert inferred.schema["order id"] == {"type": "str"}
    assert any("id column: 'order id'" in n for n in inferred.notes)
    assert any("timestamp: 'placed'" in n for n in inferred.notes)


def test_useless_columns_are_left_out_with_a_note(inferred: Inference) -> None:
    out = _left_out(inferred)
    assert out["empty"] == "every value is missing"
    assert "one value only" in out["const"]
    assert "distinct values" in out["note"]  # free text
    for name in ("empty", "const", "note"):
        assert name not in inferred.schema
        assert any(f"column {name!r} left out" in n for n in inferred.notes)


def test_ids_flags_and_clocks_have_no_outliers() -> None:
    frame = pl.DataFrame(
        {
            "user_id": list(range(200)),
            "is_new": [i % 2 for i in range(200)],
            "hour": [i % 24 for i in range(200)],
            "amount": [float(i) for i in range(200)],
            "y": [i % 2 for i in range(200)],
        }
    )
    schema = infer(frame, target="y").schema
    assert schema["user_id"]["outliers"] is False
    assert schema["is_new"] == {"type": "int", "min": 0, "max": 1, "outliers": False}
    assert schema["hour"] == {"type": "int", "min": 0, "max": 23, "outliers": False}
    assert "outliers" not in schema["amount"]
    assert schema["amount"]["max"] >= 199 * 1.1 - 1e-9


def test_negative_values_get_headroom_below() -> None:
    frame = pl.DataFrame({"t": [-12.5, 0.0, 30.0] * 50, "y": [0, 1, 1] * 50})
    spec = infer(frame, target="y").schema["t"]
    assert spec["min"] < -12.5 and spec["max"] > 30.0


def test_a_second_datetime_is_left_out() -> None:
    from datetime import datetime, timedelta

    start = datetime(2024, 1, 1)
    frame = pl.DataFrame(
        {
            "ts": [start + timedelta(hours=i) for i in range(100)],
            "birthday": [start - timedelta(days=9000 + i) for i in range(100)],
            "x": list(range(100)),
            "y": [i % 2 for i in range(100)],
        }
    )
    result = infer(frame, target="y", timestamp="ts")
    assert result.timestamp == "ts"
    assert "birthday" in _left_out(result)


# ---------------------------------------------------------------- the task


def _target_frame(values: list[Any]) -> pl.DataFrame:
    return pl.DataFrame({"x": list(range(len(values))), "y": values})


@pytest.mark.parametrize(
    ("values", "task", "words"),
    [
        ([True, False] * 50, "binary", "is bool with 2 distinct values"),
        (["yes", "no"] * 50, "binary", "is text with 2"),
        ([0, 1, 2] * 40, "multiclass", "is int with 3 distinct values"),
        (["a", "b", "c", "d"] * 30, "multiclass", "is text with 4"),
        ([float(i % 5) for i in range(120)], "multiclass", "whole numbers"),
        ([i * 0.37 for i in range(214)], "regression", "'y' is float with 214 distinct values"),
        (list(range(150)), "regression", "is int with 150"),
    ],
)
def test_task_is_inferred_and_explained(values: list[Any], task: str, words: str) -> None:
    result = infer(_target_frame(values), target="y")
    assert result.task == task
    assert words in result.task_reason


def test_a_given_task_that_cannot_fit_is_refused() -> None:
    frame = _target_frame([i * 0.37 for i in range(214)])
    with pytest.raises(UsageError, match="214 distinct values; a binary task needs 2"):
        infer(frame, target="y", task="binary")
    assert infer(frame, target="y", task="regression").task == "regression"


def test_text_target_with_too_many_values_is_no_task() -> None:
    with pytest.raises(UsageError, match="cannot infer a task"):
        infer(_target_frame([f"v{i}" for i in range(150)]), target="y")


def test_unknown_role_column_is_one_line() -> None:
    with pytest.raises(UsageError, match=r"--target 'nope': not a column of the data"):
        infer(_target_frame([0, 1] * 10), target="nope")


def test_task_problem_messages() -> None:
    problem = task_problem("binary", "y", pl.Float64(), 214)
    assert problem == (
        "target 'y' has 214 distinct values; a binary task needs 2 — "
        'set [task].type = "regression"'
    )
    assert "at most 100" in (task_problem("multiclass", "y", pl.Float64(), 500) or "")
    assert "needs numbers" in (task_problem("regression", "y", pl.String(), 3) or "")
    assert task_problem("multiclass", "y", pl.Int64(), 3) is None


# ---------------------------------------------------------------- TOML


NASTY = ["mean radius", 'say "hi"', "a,b", "x.y", "back\\slash", "tab\there", "ünï", "[x]"]


def test_column_names_become_valid_toml_keys() -> None:
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({name: rng.normal(size=120) for name in NASTY})
    frame = frame.with_columns(pl.Series("y", [0, 1] * 60))
    result = infer(frame, target="y")
    text = config_text(result, name="p", data_path="data/x.parquet")
    config = parse_config(text)
    assert list(config.schema_) == [*NASTY, "y"]
    assert toml_key("plain_name-1") == "plain_name-1"
    block = tomllib.loads(schema_block(result))
    assert set(block["schema"]) == {*NASTY, "y"}


def test_written_config_validates_on_the_same_frame(messy: Path, inferred: Inference) -> None:
    text = config_text(inferred, name="orders", data_path="data/orders.csv")
    assert "# " in text and '[schema."order id"]' in text
    config = parse_config(text)
    assert config.task.type == "regression" and config.data.split == "time"
    report = validate_frame(load_frame(messy, config.schema_), config)
    assert report.passed, [c for c in report.failures]


def test_inference_is_one_pass_fast_enough() -> None:
    """Not a benchmark (benchmarks/init.py is): 250k rows x 20 columns (over the exact-count
    limit: distinct counts are estimates, said as 'about') stay well under 2 s."""
    import time

    rows = 250_000
    rng = np.random.default_rng(1)
    frame = pl.DataFrame({f"f{i}": rng.normal(size=rows) for i in range(20)})
    frame = frame.with_columns(pl.Series("y", rng.integers(0, 2, rows)))
    t0 = time.perf_counter()
    result = infer(frame, target="y")
    assert time.perf_counter() - t0 < 2.0
    assert "about" in result.columns[0].seen
    assert result.task == "binary" and result.schema["y"]["max"] == 1
