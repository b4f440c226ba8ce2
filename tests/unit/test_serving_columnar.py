"""The columnar fast path: MLflow's `dataframe_split`, the plain {"columns", "data"} object
and TF-serving's column `inputs`, checked a column at a time. Whatever takes it reads as the
per-record path's records; whatever it cannot take gets the per-record path's 422, naming the
same row and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from workbench.drift.log_layout import Layout
from workbench.serving.columnar import Columns
from workbench.serving.log_rows import chunks, encode_columns
from workbench.serving.payloads import PayloadError, parse_records
from workbench.serving.prediction_log import PredictionLogger
from workbench.serving.signature import Field, Signature

SIG = Signature(
    inputs=(
        Field("amount", "double"),
        Field("merchant_category", "string"),
        Field("card_age_days", "long"),
        Field("hour", "integer"),
        Field("ratio", "float"),
        Field("is_foreign", "boolean"),
    )
)
COLS = [f.name for f in SIG.inputs]
ROWS: list[list[Any]] = [
    [12.5, "grocery", 100, 3, 0.25, False],
    [3, "fuel", 7, 23, 1, True],  # integers for the doubles and the float
    [None, None, None, None, None, None],  # every value missing
    [-0.0, "", -(2**63), -(2**31), -3.0e38, False],
    [1e308, "travel", 2**63 - 1, 2**31 - 1, 3.0e38, True],
]


INF = "<1e999>"  # written as 1e999, which Python's json reads as infinity


def body(value: Any) -> bytes:
    return json.dumps(value).replace(json.dumps(INF), "1e999").encode()


def forms(cols: list[str], rows: list[list[Any]]) -> dict[str, bytes]:
    """The same batch in each columnar form, and as records (the per-record path)."""
    records = [dict(zip(cols, row, strict=True)) for row in rows]
    split = {"columns": cols, "data": rows}
    inputs = {c: [row[i] for row in rows] for i, c in enumerate(cols)}
    return {
        "records": body(records),
        "dataframe_split": body({"dataframe_split": split}),
        "split with index": body({"dataframe_split": {**split, "index": list(range(len(rows)))}}),
        "plain": body(split),
        "inputs": body({"inputs": inputs}),
        "instances": body({"instances": inputs, "params": {}}),
    }


def line(raw: bytes, sig: Signature = SIG, **kw: Any) -> str:
    with pytest.raises(PayloadError) as info:
        parse_records(raw, sig, **kw)
    return info.value.line()


def test_every_columnar_form_reads_as_the_records_do() -> None:
    want = parse_records(forms(COLS, ROWS)["records"], SIG).records
    assert not isinstance(want, Columns)
    assert want[1]["amount"] == 3.0 and type(want[1]["amount"]) is float
    for name, raw in forms(COLS, ROWS).items():
        if name == "records":
            continue
        parsed = parse_records(raw, SIG)
        assert isinstance(parsed.records, Columns), name  # the fast path took it
        assert parsed.single is False and parsed.request_ids == [None] * len(ROWS)
        got = list(parsed.records)
        assert got == want, name
        assert [type(v) for r in got for v in r.values()] == [
            type(v) for r in want for v in r.values()
        ], name
        assert parsed.records[1] == want[1] and parsed.records[-1] == want[-1]
        assert list(parsed.records[1:3]) == want[1:3]


def test_columns_given_in_another_order_read_in_the_signature_order() -> None:
    cols = list(reversed(COLS))
    rows = [list(reversed(row)) for row in ROWS]
    parsed = parse_records(body({"columns": cols, "data": rows}), SIG)
    assert isinstance(parsed.records, Columns)
    assert list(parsed.records[0]) == COLS
    assert list(parsed.records) == parse_records(forms(COLS, ROWS)["records"], SIG).records


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("amount", "lots"),
        ("amount", True),
        ("amount", INF),
        ("merchant_category", 7),
        ("card_age_days", 2**63),
        ("card_age_days", 2.5),
        ("card_age_days", True),
        ("hour", 2**31),
        ("ratio", 1e39),
        ("is_foreign", 0),
        ("amount", [1.0]),
    ],
)
def test_a_bad_value_gets_the_per_record_message(column: str, value: Any) -> None:
    rows = [list(row) for row in ROWS]
    rows[3][COLS.index(column)] = value
    raws = forms(COLS, rows)
    want = line(raws["records"])
    assert want.startswith(f"records[3].{column}: ")
    for name in ("dataframe_split", "plain", "inputs"):
        assert line(raws[name]) == want, name


def test_an_integral_float_for_an_integer_column_is_accepted_as_before() -> None:
    rows = [list(row) for row in ROWS]
    rows[0][2] = 100.0
    raws = forms(COLS, rows)
    want = parse_records(raws["records"], SIG).records
    assert list(parse_records(raws["plain"], SIG).records) == want
    assert want[0]["card_age_days"] == 100 and type(want[0]["card_age_days"]) is int


def test_missing_unknown_and_misshapen_columns() -> None:
    cols = [c for c in COLS if c != "hour"]
    rows = [[v for c, v in zip(COLS, row, strict=True) if c != "hour"] for row in ROWS]
    assert line(body({"columns": cols, "data": rows})) == (
        "records[0].hour: missing required field (and 4 more problems)"
    )
    extra = {"columns": [*COLS, "amout"], "data": [[*row, 1.0] for row in ROWS[:1]]}
    assert line(body(extra)).startswith("records[0].amout: unknown field (the model takes: ")
    short = {"columns": COLS, "data": [ROWS[0], ROWS[1][:2]]}
    assert line(body(short)) == (
        "records[1]: expected an array of 6 values (one per column), got 2 values"
    )
    assert line(body({"dataframe_split": short})) == line(body(short))
    assert line(body({"columns": "amount", "data": []})) == (
        "columns: expected a list of column names"
    )
    assert line(body({"columns": COLS, "data": {}})) == "data: expected a list of rows"
    assert line(body({"columns": COLS, "data": []})) == (
        "body: empty batch; send at least one record"
    )
    assert line(body({"columns": COLS, "data": ROWS}), max_records=3) == (
        "body: too many records: 5 (the limit is 3)"
    )


def test_a_model_with_a_columns_field_keeps_reading_records() -> None:
    sig = Signature(inputs=(Field("columns", "double"), Field("data", "double")))
    parsed = parse_records(body({"columns": 1.0, "data": 2.0}), sig)
    assert parsed.single is True and parsed.records == [{"columns": 1.0, "data": 2.0}]


def test_request_ids_and_passthrough_columns_take_the_per_record_path() -> None:
    cols = [*COLS, "request_id", "customer"]
    rows = [[*row, f"r-{i}", f"c-{i}"] for i, row in enumerate(ROWS)]
    parsed = parse_records(body({"columns": cols, "data": rows}), SIG, passthrough=("customer",))
    assert not isinstance(parsed.records, Columns)
    assert parsed.request_ids == [f"r-{i}" for i in range(len(ROWS))]
    assert parsed.passthrough == [{"customer": f"c-{i}"} for i in range(len(ROWS))]


def test_types_checked_per_value_take_the_per_record_path() -> None:
    sig = Signature(inputs=(Field("x", "double"), Field("at", "datetime")))
    raw = body({"columns": ["x", "at"], "data": [[1.0, "2024-05-01T10:00:00"]]})
    parsed = parse_records(raw, sig)
    assert not isinstance(parsed.records, Columns)
    assert parsed.records == [{"x": 1.0, "at": "2024-05-01T10:00:00"}]
    bad = body({"columns": ["x", "at"], "data": [[1.0, "2024-05-01T10:00:00"], [2.0, "may"]]})
    assert line(bad, sig) == "records[1].at: expected an ISO-8601 date-time, got 'may'"


def test_bodies_orjson_refuses_are_read_or_refused_as_before() -> None:
    huge = b'{"columns": ["x"], "data": [[123456789012345678901234567890]]}'
    sig = Signature(inputs=(Field("x", "long"),))
    # an integer, as json reads it (orjson would have read 1.2345678901234568e+29)
    assert line(huge, sig) == (
        "records[0].x: integer out of range for 64 bits, got 123456789012345678901234567890"
    )
    assert line(b'{"columns": ["x"], "data": [[NaN]]}', sig).startswith(
        "body: not valid JSON (NaN is not allowed"
    )
    bom = "\ufeff".encode() + b'{"columns": ["x"], "data": [[1]]}'
    assert list(parse_records(bom, sig).records) == [{"x": 1}]


def test_the_log_lays_out_columns_as_it_lays_out_records(tmp_path: Path) -> None:
    layout = Layout(
        numeric=("amount", "card_age_days", "ratio"), categorical=("merchant_category",)
    )
    parsed = parse_records(forms(COLS, ROWS)["plain"], SIG)
    records = parse_records(forms(COLS, ROWS)["records"], SIG).records
    assert isinstance(parsed.records, Columns)
    num, cat = encode_columns(layout, [parsed.records[:2], parsed.records[2:]])  # type: ignore[misc]
    want_num, want_cat = layout.encode(records)
    assert num.equals(want_num) and cat.equals(want_cat)
    assert num.to_pylist()[2] == [None, None, None]  # nulls stay null

    tables = {}
    for name, feats in (("columns", parsed.records), ("records", records)):
        folder = tmp_path / name
        with PredictionLogger(folder, max_rows=10_000, interval_s=60) as logger:
            logger.layouts[1] = layout
            logger.log_many(
                [f"r{i}" for i in range(5)], "m", 1, "production", feats, [0.5] * 5, 1.0
            )
        files = sorted(folder.rglob("*.parquet"))
        assert len(files) == 1
        tables[name] = pq.read_table(files[0], partitioning=None).drop(["ts"])
    assert tables["columns"].equals(tables["records"])
    assert tables["columns"].column("laid_out").to_pylist() == [True] * 5


def test_chunks_split_big_requests_and_keep_the_order() -> None:
    def entry(n: int, start: int) -> tuple[Any, ...]:
        ids = [f"r{start + i}" for i in range(n)]
        return (0, ids, "m", 1, "production", ids, list(range(n)), 1.0, 200, None, None)

    entries = [entry(3, 0), entry(600, 3), entry(1, 603), entry(254, 604), entry(2, 858)]
    pieces = chunks(entries, 256)
    assert all(sum(len(e[1]) for e in piece) <= 256 for piece in pieces)
    ids = [rid for piece in pieces for e in piece for rid in e[1]]
    assert ids == [f"r{i}" for i in range(860)]
    feats = [f for piece in pieces for e in piece for f in e[5]]
    assert feats == ids
