"""Passthrough fields (the id column, [serving] passthrough): allowed in any body format,
taken out before the model, kept per record, logged in the `passthrough` column, described
in the OpenAPI spec. Real Parquet files and DuckDB; no model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from workbench.config import Config
from workbench.serving.openapi import openapi_spec
from workbench.serving.payloads import PayloadError, parse_records
from workbench.serving.prediction_log import PredictionLogger
from workbench.serving.responses import passthrough_fields, with_passthrough
from workbench.serving.signature import Field, Signature
from workbench.store.db import Db
from workbench.store.parquet_log import ParquetLog

SIG = Signature((Field("amount", "double"), Field("category", "string")))
PT = ("transaction_id", "customer_id")


def _parse(body: Any, passthrough: tuple[str, ...] = PT) -> Any:
    return parse_records(json.dumps(body).encode(), SIG, passthrough=passthrough)


def test_a_single_record_s_passthrough_is_taken_out_and_kept() -> None:
    parsed = _parse({"amount": 1.5, "category": "a", "transaction_id": "t-1", "customer_id": 17})
    assert parsed.records == [{"amount": 1.5, "category": "a"}]  # what the model gets
    assert parsed.passthrough == [{"transaction_id": "t-1", "customer_id": 17}]
    payload: dict[str, Any] = {"request_id": "r"}
    with_passthrough(payload, parsed)
    assert payload["passthrough"] == {"transaction_id": "t-1", "customer_id": 17}


def test_without_passthrough_nothing_changes() -> None:
    parsed = _parse({"amount": 1.5, "category": "a"})
    assert parsed.passthrough is None
    payload: dict[str, Any] = {}
    with_passthrough(payload, parsed)
    assert payload == {}  # the answer's shape is as before
    with pytest.raises(PayloadError, match=r"^transaction_id: unknown field"):
        _parse({"amount": 1.5, "category": "a", "transaction_id": "t"}, passthrough=())


@pytest.mark.parametrize(
    "body",
    [
        [
            {"amount": 1.0, "category": "a", "transaction_id": "t-1"},
            {"amount": 2.0, "category": "b"},
        ],
        {
            "dataframe_split": {
                "columns": ["amount", "transaction_id", "category"],
                "data": [[1.0, "t-1", "a"], [2.0, None, "b"]],
            }
        },
        {
            "dataframe_records": [
                {"amount": 1.0, "category": "a", "transaction_id": "t-1"},
                {"amount": 2.0, "category": "b"},
            ]
        },
        {"inputs": {"amount": [1.0, 2.0], "category": ["a", "b"], "transaction_id": ["t-1", None]}},
    ],
    ids=["list", "dataframe_split", "dataframe_records", "columnar"],
)
def test_batches_keep_one_entry_per_record(body: Any) -> None:
    parsed = _parse(body)
    assert parsed.records == [
        {"amount": 1.0, "category": "a"},
        {"amount": 2.0, "category": "b"},
    ]
    assert parsed.passthrough == [{"transaction_id": "t-1"}, None]
    payload: dict[str, Any] = {}
    with_passthrough(payload, parsed)
    assert payload["passthrough"] == [{"transaction_id": "t-1"}, None]


def test_a_passthrough_value_is_a_short_scalar() -> None:
    ok = _parse({"amount": 1, "category": "a", "transaction_id": "x" * 256, "customer_id": True})
    assert ok.passthrough == [{"transaction_id": "x" * 256, "customer_id": True}]
    with pytest.raises(PayloadError) as long:
        _parse({"amount": 1, "category": "a", "transaction_id": "x" * 257})
    assert long.value.line() == (
        "transaction_id: longer than 256 characters (257): a passthrough value"
    )
    with pytest.raises(PayloadError) as nested:
        _parse([{"amount": 1, "category": "a", "customer_id": {"id": 1}}])
    assert nested.value.line() == (
        "records[0].customer_id: expected a string, number, boolean or null "
        "(a passthrough value), got an object"
    )
    with pytest.raises(PayloadError, match=r"^customer_id: more than 256 digits"):
        _parse({"amount": 1, "category": "a", "customer_id": 10**300})


def test_a_passthrough_field_the_model_takes_is_fed_and_copied() -> None:
    parsed = _parse({"amount": 1.5, "category": "a"}, passthrough=("category",))
    assert parsed.records == [{"amount": 1.5, "category": "a"}]
    assert parsed.passthrough == [{"category": "a"}]


def test_passthrough_fields_come_from_the_id_column_and_serving() -> None:
    cfg = Config.model_validate(
        {
            "project": {"name": "p"},
            "data": {
                "path": "d.csv",
                "target": "y",
                "id_column": "transaction_id",
                "split": "random",
            },
            "serving": {"passthrough": ["customer_id", "transaction_id", "request_id"]},
        }
    )
    assert passthrough_fields(cfg) == ("transaction_id", "customer_id")


def test_the_log_keeps_passthrough_as_json_and_reads_old_files(tmp_path: Path) -> None:
    with PredictionLogger(tmp_path, interval_s=60) as logger:
        logger.log_many(["a"], "m", 1, "production", [{"amount": 1.0}], [0.1], 1.0)
    (old,) = ParquetLog(tmp_path, "predictions").files()
    table = pq.read_table(old)
    pq.write_table(table.drop(["passthrough"]), old)  # a file from before the column
    with PredictionLogger(tmp_path, interval_s=60) as logger:
        logger.log_many(
            ["b", "c"], "m", 1, "production", [{"amount": 2.0}, {"amount": 3.0}], [0.2, 0.3],
            1.0, passthrough=[{"transaction_id": "t-é", "n": 1}, None],
        )  # fmt: skip
    with Db(tmp_path) as db:
        rows = db.rows("SELECT request_id, passthrough FROM predictions ORDER BY request_id")
    assert rows == [
        {"request_id": "a", "passthrough": None},
        {"request_id": "b", "passthrough": '{"transaction_id":"t-é","n":1}'},
        {"request_id": "c", "passthrough": None},
    ]


def test_the_openapi_spec_names_the_passthrough_fields() -> None:
    spec = openapi_spec(SIG, "m", "1", passthrough=("transaction_id",))
    schemas = spec["components"]["schemas"]
    record = schemas["Record"]
    assert record["properties"]["transaction_id"]["maxLength"] == 256
    assert "transaction_id" not in record["required"]
    split = schemas["DataframeSplit"]["properties"]["dataframe_split"]
    assert "transaction_id" in split["properties"]["columns"]["items"]["enum"]
    assert "transaction_id" in schemas["Columns"]["properties"]
    assert "passthrough" in schemas["Prediction"]["properties"]
    assert "passthrough" in schemas["BatchPrediction"]["properties"]
    plain = openapi_spec(SIG, "m", "1")["components"]["schemas"]["Record"]
    assert "transaction_id" not in plain["properties"]


def test_a_sticky_key_may_be_a_passthrough_field() -> None:
    from workbench.serving.responses import sticky_record

    parsed = _parse({"amount": 1.5, "category": "a", "customer_id": "c-17"})
    assert sticky_record(parsed) == {"amount": 1.5, "category": "a", "customer_id": "c-17"}
    assert sticky_record(_parse({"amount": 1.5, "category": "a"})) == {
        "amount": 1.5,
        "category": "a",
    }
