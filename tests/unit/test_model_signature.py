"""Request validation against an MLflow signature: body shapes, per-type rules, error texts."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.serving.openapi import openapi_spec
from workbench.serving.payloads import PayloadError, parse_labels, parse_records
from workbench.serving.signature import Field, ModelError, Signature, read_signature

SIG = Signature(
    inputs=(
        Field("amount", "double"),
        Field("merchant_category", "string"),
        Field("card_age_days", "long"),
        Field("hour", "integer"),
        Field("ratio", "float"),
        Field("is_foreign", "boolean"),
        Field("seen_at", "datetime", required=False),
        Field("blob", "binary", required=False),
        Field("note", "string", required=False),
    )
)
RECORD: dict[str, Any] = {
    "amount": 12.5,
    "merchant_category": "grocery",
    "card_age_days": 100,
    "hour": 3,
    "ratio": 0.25,
    "is_foreign": False,
    "seen_at": "2024-05-01T10:00:00+00:00",
    "blob": "aGVsbG8=",
    "note": "hi",
}


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def error(raw: bytes, sig: Signature = SIG, **kw: Any) -> PayloadError:
    with pytest.raises(PayloadError) as info:
        parse_records(raw, sig, **kw)
    return info.value


def with_(**changes: Any) -> dict[str, Any]:
    return {**RECORD, **changes}


# -- accepted shapes ---------------------------------------------------------------------------


def test_one_record_is_single_and_keeps_signature_order() -> None:
    parsed = parse_records(body(dict(reversed(list(RECORD.items())))), SIG)
    assert parsed.single is True
    assert parsed.records == [RECORD]
    assert list(parsed.records[0]) == SIG.names
    assert parsed.request_ids == [None]


def test_a_list_is_a_batch() -> None:
    parsed = parse_records(body([RECORD, with_(amount=1.0)]), SIG)
    assert parsed.single is False
    assert [r["amount"] for r in parsed.records] == [12.5, 1.0]
    assert parsed.request_ids == [None, None]


def test_a_list_of_one_is_still_a_batch() -> None:
    assert parse_records(body([RECORD]), SIG).single is False


@pytest.mark.parametrize("key", ["dataframe_records", "instances", "inputs"])
def test_mlflow_record_wrappers(key: str) -> None:
    parsed = parse_records(body({key: [RECORD, RECORD]}), SIG)
    assert parsed.single is False
    assert parsed.records == [RECORD, RECORD]


def test_dataframe_split_with_index() -> None:
    split = {
        "columns": list(RECORD),
        "data": [list(RECORD.values()), list(with_(amount=3).values())],
        "index": [7, 8],
    }
    parsed = parse_records(body({"dataframe_split": split}), SIG)
    assert parsed.single is False
    assert parsed.records == [RECORD, with_(amount=3.0)]


def test_inputs_as_columns() -> None:
    columns = {k: [v, v] for k, v in RECORD.items()}
    parsed = parse_records(body({"inputs": columns}), SIG)
    assert parsed.records == [RECORD, RECORD]


def test_params_next_to_a_wrapper_are_ignored() -> None:
    parsed = parse_records(body({"dataframe_records": [RECORD], "params": {"x": 1}}), SIG)
    assert parsed.records == [RECORD]


def test_utf8_bom_is_accepted() -> None:
    assert parse_records(b"\xef\xbb\xbf" + body(RECORD), SIG).records == [RECORD]


def test_whitespace_around_json_is_fine() -> None:
    assert parse_records(b"\n  " + body([RECORD]) + b"\n", SIG).records == [RECORD]


# -- request ids -------------------------------------------------------------------------------


def test_request_id_is_returned_and_removed_from_the_record() -> None:
    parsed = parse_records(body([with_(request_id="a-1"), RECORD]), SIG)
    assert parsed.request_ids == ["a-1", None]
    assert "request_id" not in parsed.records[0]
    assert parsed.records[0] == RECORD


def test_request_id_in_a_single_record_and_null() -> None:
    assert parse_records(body(with_(request_id="x" * 128)), SIG).request_ids == ["x" * 128]
    assert parse_records(body(with_(request_id=None)), SIG).request_ids == [None]


@pytest.mark.parametrize(
    ("value", "got"),
    [("x" * 129, "a longer string (129 characters)"), ("", "''"), (5, "5"), ([], "an array")],
)
def test_bad_request_ids(value: Any, got: str) -> None:
    err = error(body([RECORD, with_(request_id=value)]))
    assert err.line() == (
        "records[1].request_id: expected a non-empty string of at most 128 printable "
        f"characters, got {got}"
    )


def test_a_model_field_named_request_id_stays_a_field() -> None:
    sig = Signature(inputs=(Field("request_id", "string"), Field("x", "double")))
    parsed = parse_records(body({"request_id": "r1", "x": 1}), sig)
    assert parsed.records == [{"request_id": "r1", "x": 1.0}]
    assert parsed.request_ids == ["r1"]


# -- body-level errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        (b"", "body: empty; send a JSON object or array"),
        (b"  \n", "body: empty; send a JSON object or array"),
        (b'{"amount": 1', "body: not valid JSON (line 1 column 13): expecting ',' delimiter"),
        (b"[1,\n 2", "body: not valid JSON (line 2 column 3): expecting ',' delimiter"),
        (b"\xff\xfe{}", "body: not valid UTF-8 (byte 0)"),
        (b"[]", "body: empty batch; send at least one record"),
        (b'{"inputs": []}', "body: empty batch; send at least one record"),
        (b"3", "body: expected a JSON object (a record) or an array of records, got a number"),
        (b'"a"', "body: expected a JSON object (a record) or an array of records, got a string"),
        (b"null", "body: expected a JSON object (a record) or an array of records, got null"),
        (b"true", "body: expected a JSON object (a record) or an array of records, got a boolean"),
    ],
)
def test_body_errors(raw: bytes, line: str) -> None:
    err = error(raw)
    assert err.line() == line
    assert err.errors[0][0] == ("body",)
    assert str(err) == line


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_are_rejected(literal: str) -> None:
    raw = body(RECORD).replace(b"12.5", literal.encode())
    err = error(raw)
    assert err.line().startswith(f"body: not valid JSON ({literal} is not allowed")
    assert err.detail()[0]["type"] == "json_invalid"


def test_an_overflowing_number_literal_is_not_finite() -> None:
    err = error(body(RECORD).replace(b"12.5", b"1e999"))
    assert err.line() == "amount: expected a finite number, got inf"
    assert err.errors[0][2] == "finite_number"


def test_deep_nesting_and_huge_integers_are_payload_errors() -> None:
    assert error(b"[" * 100_000).line() == "body: not valid JSON (nested too deeply)"
    assert error(b'{"amount": ' + b"9" * 5000 + b"}").line() == (
        "body: not valid JSON (a number with too many digits)"
    )
    assert error(body(with_(amount=10**400))).line() == (
        "amount: expected a finite number, got a huge integer"
    )


def test_max_records() -> None:
    assert len(parse_records(body([RECORD] * 5), SIG, max_records=5).records) == 5
    err = error(body([RECORD] * 6), max_records=5)
    assert err.line() == "body: too many records: 6 (the limit is 5)"
    assert err.detail() == [
        {"loc": ["body"], "msg": "too many records: 6 (the limit is 5)", "type": "too_long"}
    ]


def test_wrapper_errors() -> None:
    assert error(body({"dataframe_records": [RECORD], "amount": 1})).line() == (
        "amount: unexpected key next to 'dataframe_records'"
    )
    assert error(body({"instances": [RECORD], "inputs": [RECORD]})).line() == (
        "body: expected one of instances, inputs, got several"
    )
    assert error(body({"dataframe_records": {"a": [1]}})).line() == (
        "dataframe_records: expected a list of records, got an object"
    )
    assert error(body({"inputs": {"amount": [1, 2], "hour": [1]}})).line() == (
        "inputs: expected a list of records, or an object of equal-length column arrays"
    )


def test_dataframe_split_errors() -> None:
    def split_error(split: Any) -> str:
        return error(body({"dataframe_split": split})).line()

    cols = list(RECORD)
    assert split_error([1]) == "dataframe_split: expected an object, got an array"
    assert split_error({"columns": cols, "data": [[1]]}) == (
        "records[0]: expected an array of 9 values (one per column), got 1 value"
    )
    assert split_error({"columns": [*cols, "amount"], "data": []}) == (
        "dataframe_split.columns: column 'amount' appears twice"
    )
    assert split_error({"columns": "amount", "data": []}) == (
        "dataframe_split.columns: expected a list of column names"
    )
    assert split_error({"columns": cols, "data": {}}) == (
        "dataframe_split.data: expected a list of rows"
    )
    assert split_error({"columns": cols, "data": [], "orient": "x"}) == (
        "dataframe_split.orient: unexpected key"
    )
    assert split_error({"columns": cols, "data": []}) == (
        "body: empty batch; send at least one record"
    )


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("a b", 'records[0]["a b"]'),
        ("x.y", 'records[0]["x.y"]'),
        ("\n", 'records[0]["\\n"]'),
        ("k" * 100, f'records[0]["{"k" * 37}..."]'),
        ("größe", "records[0].größe"),
    ],
)
def test_odd_keys_are_quoted_in_the_line(key: str, shown: str) -> None:
    err = error(body([with_(**{key: 1})]))
    assert err.line().startswith(f"{shown}: unknown field")
    assert err.errors[0][0] == ("body", 0, key)


def test_a_batch_item_that_is_not_an_object() -> None:
    err = error(body([RECORD, 5, None]))
    assert (
        err.line() == "records[1]: expected an object (a record), got a number (and 1 more problem)"
    )
    assert err.errors[1][0] == ("body", 2)


# -- per-field rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("amount", 3, 3.0),
        ("amount", -0.5, -0.5),
        ("ratio", 2, 2.0),
        ("card_age_days", 7.0, 7),
        ("card_age_days", -(2**63), -(2**63)),
        ("hour", 23, 23),
        ("hour", 1e1, 10),
        ("is_foreign", True, True),
        ("merchant_category", "", ""),
        ("seen_at", "2024-05-01", "2024-05-01"),
        ("seen_at", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"),
        ("blob", "", ""),
    ],
)
def test_accepted_values_are_coerced(field: str, value: Any, expected: Any) -> None:
    out = parse_records(body(with_(**{field: value})), SIG).records[0][field]
    assert out == expected
    assert type(out) is type(expected)


@pytest.mark.parametrize(
    ("field", "value", "msg", "type_"),
    [
        ("amount", "abc", "expected a number, got 'abc'", "float_type"),
        ("amount", True, "expected a number, got true", "float_type"),
        ("amount", [1], "expected a number, got an array", "float_type"),
        ("amount", {"v": 1}, "expected a number, got an object", "float_type"),
        ("ratio", False, "expected a number, got false", "float_type"),
        ("ratio", 1e39, "number out of range for a 32-bit float, got 1e+39", "finite_number"),
        ("card_age_days", True, "expected an integer, got true", "int_type"),
        ("card_age_days", "7", "expected an integer, got '7'", "int_type"),
        ("card_age_days", 7.5, "expected an integer, got 7.5", "int_from_float"),
        (
            "card_age_days",
            2**63,
            "integer out of range for 64 bits, got 9223372036854775808",
            "int_range",
        ),
        ("card_age_days", 1e30, "integer out of range for 64 bits, got 1e+30", "int_range"),
        ("hour", 2**31, "integer out of range for 32 bits, got 2147483648", "int_range"),
        ("merchant_category", 5, "expected a string, got 5", "string_type"),
        ("merchant_category", False, "expected a string, got false", "string_type"),
        ("is_foreign", 1, "expected true or false, got 1", "bool_type"),
        ("is_foreign", "true", "expected true or false, got 'true'", "bool_type"),
        (
            "seen_at",
            "yesterday",
            "expected an ISO-8601 date-time, got 'yesterday'",
            "datetime_parsing",
        ),
        (
            "seen_at",
            1714557600,
            "expected an ISO-8601 date-time string, got 1714557600",
            "datetime_type",
        ),
        ("blob", 5, "expected a string (binary data), got 5", "string_type"),
        ("note", "x" * 100, None, None),
    ],
)
def test_rejected_values(field: str, value: Any, msg: str | None, type_: str | None) -> None:
    if msg is None:  # a long string is fine
        parse_records(body(with_(**{field: value})), SIG)
        return
    err = error(body(with_(**{field: value})))
    assert err.errors == [(("body", field), msg, type_)]
    assert err.line() == f"{field}: {msg}"


def test_long_strings_are_shortened_in_messages() -> None:
    err = error(body(with_(amount="y" * 100)))
    assert err.line() == f"amount: expected a number, got '{'y' * 37}...'"


def test_missing_required_fields_are_named_and_null_is_a_missing_value() -> None:
    rec = dict(RECORD)
    del rec["amount"]
    del rec["hour"]
    err = error(body(rec))
    assert err.detail() == [
        {"loc": ["body", "amount"], "msg": "missing required field", "type": "missing"},
        {"loc": ["body", "hour"], "msg": "missing required field", "type": "missing"},
    ]
    assert err.line() == "amount: missing required field (and 1 more problem)"
    # null, sent explicitly, is a missing value the model handles (as MLflow's NaN)
    parsed = parse_records(body(with_(amount=None, hour=None)), SIG)
    assert parsed.records[0]["amount"] is None and parsed.records[0]["hour"] is None


def test_optional_fields_missing_or_null_become_none() -> None:
    rec = {k: v for k, v in RECORD.items() if k not in ("seen_at", "blob")} | {"note": None}
    parsed = parse_records(body(rec), SIG)
    assert parsed.records[0]["seen_at"] is None
    assert parsed.records[0]["blob"] is None
    assert parsed.records[0]["note"] is None
    assert list(parsed.records[0]) == SIG.names


def test_unknown_field_names_what_the_model_takes() -> None:
    rec = with_(amout=3)
    err = error(body([RECORD, RECORD, RECORD, rec]))
    assert err.line() == (
        "records[3].amout: unknown field (the model takes: amount, merchant_category, "
        "card_age_days, hour, ratio, is_foreign, seen_at, blob, ...)"
    )
    assert err.detail()[0]["type"] == "extra_forbidden"
    small = Signature(inputs=(Field("a", "double"), Field("b", "string")))
    assert error(body({"a": 1, "b": "x", "c": 2}), small).line() == (
        "c: unknown field (the model takes: a, b)"
    )


def test_batch_locations_and_the_count_of_more_problems() -> None:
    err = error(body([RECORD, RECORD, RECORD, with_(amount="abc", hour="x", note=4)]))
    assert err.line() == "records[3].amount: expected a number, got 'abc' (and 2 more problems)"
    assert [d["loc"] for d in err.detail()] == [
        ["body", 3, "amount"],
        ["body", 3, "hour"],
        ["body", 3, "note"],
    ]


def test_at_most_ten_errors_are_collected() -> None:
    err = error(body([with_(amount="abc")] * 50))
    assert len(err.errors) == 10
    assert err.truncated
    assert err.line() == "records[0].amount: expected a number, got 'abc' (and 9+ more problems)"
    assert [loc for loc, _, _ in err.errors] == [("body", i, "amount") for i in range(10)]
    exactly = error(body([with_(amount="abc")] * 10))
    assert not exactly.truncated
    assert exactly.line().endswith("(and 9 more problems)")


def test_detail_is_fastapi_style() -> None:
    rec = dict(RECORD)
    del rec["hour"]
    err = error(body([RECORD, rec]))
    assert err.detail() == [
        {"loc": ["body", 1, "hour"], "msg": "missing required field", "type": "missing"}
    ]
    json.dumps(err.detail())


def test_signature_names_and_equality_ignore_the_precomputed_plan() -> None:
    assert SIG.names == list(RECORD)
    twin = Signature(inputs=tuple(SIG.inputs))
    assert twin == SIG
    assert hash(twin) == hash(SIG)
    assert Field("a", "double").required is True
    copy = pickle.loads(pickle.dumps(SIG))
    assert copy == SIG
    assert parse_records(body(RECORD), copy).records == [RECORD]


# -- labels ------------------------------------------------------------------------------------


def test_label_shapes() -> None:
    assert parse_labels(body({"request_id": "a", "label": 1})) == [("a", 1.0)]
    assert parse_labels(
        body([{"request_id": "a", "label": True}, {"request_id": "b", "label": 0.25}])
    ) == [
        ("a", 1.0),
        ("b", 0.25),
    ]
    assert parse_labels(body({"labels": [{"request_id": "c", "label": False}]})) == [("c", 0.0)]
    out = parse_labels(body({"request_id": "a", "label": 3}))
    assert type(out[0][1]) is float


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ({"request_id": "a"}, "label: missing required field"),
        ({"label": 1}, "request_id: missing required field"),
        (
            {"request_id": "", "label": 1},
            "request_id: expected a non-empty string of at most 128 printable characters, got ''",
        ),
        (
            {"request_id": 7, "label": 1},
            "request_id: expected a non-empty string of at most 128 printable characters, got 7",
        ),
        ({"request_id": "a", "label": "1"}, "label: expected a number, got '1'"),
        (
            {"request_id": "a", "label": 1, "ts": 3},
            "ts: unknown field (a label takes: request_id, label)",
        ),
        (
            [{"request_id": "a", "label": 1}, 5],
            "labels[1]: expected an object (a label), got a number",
        ),
        (
            [{"request_id": "a", "label": 1}, {"request_id": "b", "label": []}],
            "labels[1].label: expected a number, got an array",
        ),
        ({"labels": 5}, "labels: expected a list of labels, got a number"),
        ({"labels": [], "x": 1}, "x: unexpected key next to 'labels'"),
        ([], "body: empty batch; send at least one label"),
        ({"labels": []}, "body: empty batch; send at least one label"),
        (3, "body: expected a JSON object (a label) or an array of labels, got a number"),
    ],
)
def test_label_errors(value: Any, line: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_labels(body(value))
    assert info.value.line() == line


def test_label_nan_and_limits() -> None:
    with pytest.raises(PayloadError, match=r"^body: not valid JSON \(NaN is not allowed"):
        parse_labels(b'{"request_id": "a", "label": NaN}')
    with pytest.raises(PayloadError, match=r"^body: too many labels: 3 \(the limit is 2\)$"):
        parse_labels(body([{"request_id": "a", "label": 1}] * 3), max_records=2)
    with pytest.raises(PayloadError) as info:
        parse_labels(body([{"request_id": "a"}] * 30))
    assert len(info.value.errors) == 10
    assert info.value.line() == "labels[0].label: missing required field (and 9+ more problems)"


# -- reading signatures ------------------------------------------------------------------------

MLMODEL = """\
flavors:
  python_function:
    loader_module: mlflow.sklearn
signature:
  inputs: '[{"type": "double", "name": "amount", "required": true}, {"type": "string",
    "name": "merchant_category", "required": true}, {"type": "long", "name": "card_age_days",
    "required": false}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]'
  params: null
"""


def sig_yaml(inputs: list[dict[str, Any]]) -> str:
    return f"signature:\n  inputs: '{json.dumps(inputs)}'\n"


def write_model(tmp_path: Path, text: str) -> Path:
    (tmp_path / "MLmodel").write_text(text)
    return tmp_path


def test_read_signature(tmp_path: Path) -> None:
    sig = read_signature(write_model(tmp_path, MLMODEL))
    assert sig == Signature(
        inputs=(
            Field("amount", "double"),
            Field("merchant_category", "string"),
            Field("card_age_days", "long", required=False),
        )
    )
    assert sig.names == ["amount", "merchant_category", "card_age_days"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("flavors: {}\n", "the model has no input signature"),
        ("signature:\n  inputs: null\n", "the model has no input signature"),
        (
            sig_yaml([{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]),
            "the model has a tensor signature; only column-based signatures can be served",
        ),
        (
            """signature:\n  inputs: '[{"type": "double"}]'\n""",
            "signature input 0 has no column name",
        ),
        ("signature:\n  inputs: '[{'\n", "signature.inputs is not valid JSON"),
        ("- a\n- b\n", "not an MLmodel file (expected a YAML mapping)"),
        ("a: [\n", "not valid YAML (line 2)"),
        (
            sig_yaml([{"type": "double", "name": "a"}, {"type": "long", "name": "a"}]),
            "signature input 'a' appears twice",
        ),
    ],
)
def test_bad_signatures_name_the_file(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ModelError) as info:
        read_signature(write_model(tmp_path, text))
    assert str(info.value) == f"{tmp_path / 'MLmodel'}: {problem}"


def test_no_mlmodel_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="MLmodel: no such file"):
        read_signature(tmp_path)


# -- OpenAPI -----------------------------------------------------------------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_openapi_spec() -> None:
    spec = openapi_spec(SIG, "fraud_detection", "3")
    json.dumps(spec)
    assert spec["openapi"] == "3.1.0"
    assert spec["info"] == {"title": "fraud_detection", "version": "3"}
    assert set(spec["paths"]) == {
        "/predict",
        "/invocations",
        "/labels",
        "/health",
        "/ready",
        "/version",
        "/metrics",
        "/deployment",
    }
    schemas = spec["components"]["schemas"]
    for ref in _refs(spec):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    record = schemas["Record"]
    assert record["additionalProperties"] is False
    assert record["required"] == [
        "amount",
        "merchant_category",
        "card_age_days",
        "hour",
        "ratio",
        "is_foreign",
    ]
    props = record["properties"]
    # null is a value of every field (a missing value); `required` is about the key
    assert props["amount"]["type"] == ["number", "null"]
    assert props["amount"]["maximum"] == 1.7976931348623157e308  # finite: 1e400 is a 422
    assert props["card_age_days"]["type"] == ["integer", "null"]
    assert props["card_age_days"]["maximum"] == 2**63 - 1
    assert props["hour"]["minimum"] == -(2**31)
    assert props["merchant_category"]["type"] == ["string", "null"]
    assert props["is_foreign"]["type"] == ["boolean", "null"]
    assert props["seen_at"] == {
        **props["seen_at"],
        "type": ["string", "null"],
        "format": "date-time",
    }
    assert props["request_id"]["maxLength"] == 128
    assert props["request_id"]["pattern"] == "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]+$"
    split = schemas["DataframeSplit"]["properties"]["dataframe_split"]
    columns = split["properties"]["columns"]
    assert columns["items"]["enum"] == [*SIG.names, "request_id"] and columns["uniqueItems"]
    assert {"contains": {"const": "amount"}} in columns["allOf"]
    assert {"contains": {"const": "note"}} not in columns["allOf"]  # optional
    assert split["properties"]["data"]["minItems"] == 1
    assert split["properties"]["data"]["maxItems"] == 10_000
    assert split["additionalProperties"] is False
    assert schemas["Columns"]["properties"]["amount"]["minItems"] == 1
    predict = spec["paths"]["/predict"]["post"]
    assert predict["responses"].keys() >= {"200", "401", "422"}
    assert {"bearer": []} in predict["security"]
    assert spec["paths"]["/invocations"]["post"]["requestBody"] == predict["requestBody"]
    assert len(schemas["PredictRequest"]["oneOf"]) == 6
    assert schemas["BatchPrediction"]["required"] == [  # a binary model by default
        "request_ids",
        "predictions",
        "labels",
        "model",
        "version",
        "variant",
    ]
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert "text/plain" in metrics
    assert "503" in spec["paths"]["/ready"]["get"]["responses"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    # the example record validates against the signature
    example = record["example"]
    parse_records(body(example), SIG)


# -- properties --------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from([*RECORD, "request_id", "inputs", "x"]) | st.text(max_size=8),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_value_is_parsed_or_a_payload_error(value: Any) -> None:
    raw = json.dumps(value).encode()
    for parse in (lambda: parse_records(raw, SIG), lambda: parse_labels(raw)):
        try:
            parse()
        except PayloadError as err:
            assert 1 <= len(err.errors) <= 10
            assert "\n" not in err.line()
            json.dumps(err.detail())


@settings(max_examples=400)
@given(st.binary(max_size=200))
def test_any_bytes_are_parsed_or_a_payload_error(raw: bytes) -> None:
    for parse in (lambda: parse_records(raw, SIG), lambda: parse_labels(raw)):
        try:
            parse()
        except PayloadError as err:
            assert err.errors


def _wrong_values(ftype: str) -> st.SearchStrategy[Any]:
    others = st.lists(st.integers(), max_size=2) | st.dictionaries(
        st.text(max_size=3), st.integers(), max_size=2
    )
    if ftype in ("double", "float"):
        return others | st.booleans() | st.text()
    if ftype in ("long", "integer"):
        non_integral = st.floats(allow_nan=False, allow_infinity=False).filter(
            lambda f: not f.is_integer()
        )
        return others | st.booleans() | st.text() | non_integral
    if ftype == "boolean":
        return others | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
    if ftype == "datetime":
        return others | st.booleans() | st.integers() | st.text(alphabet="xyz :", max_size=10)
    return (
        others | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    )  # string, binary


@settings(max_examples=300)
@given(st.data())
def test_one_wrong_typed_field_is_named_first(data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(SIG.inputs))
    wrong = data.draw(_wrong_values(field.type))
    batch = data.draw(st.booleans())
    rec = with_(**{field.name: wrong})
    raw = json.dumps([RECORD, rec] if batch else rec).encode()
    err = error(raw)
    loc = err.errors[0][0]
    assert loc == (("body", 1, field.name) if batch else ("body", field.name))
    prefix = f"records[1].{field.name}: " if batch else f"{field.name}: "
    assert err.line().startswith(prefix)


@settings(max_examples=200)
@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
def test_valid_numbers_round_trip(amount: float, age: int) -> None:
    parsed = parse_records(body(with_(amount=amount, card_age_days=age)), SIG)
    out = parsed.records[0]
    assert out["amount"] == amount and not math.isnan(out["amount"])
    assert out["card_age_days"] == age and type(out["card_age_days"]) is int
