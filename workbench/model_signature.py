"""An MLflow model's input signature, and fast validation of request bodies against it.

`parse_records` runs on every request of the inference server, so it avoids pydantic and
per-request set-up: each `Signature` precomputes one checker function per field, and a record
costs one dict lookup and one call per field (a few microseconds for ten fields, most of it
`json.loads`). Errors are collected (at most ten) into a `PayloadError` that renders as one
line for the CLI and logs, and as FastAPI-style `detail` for the HTTP response.

Never imports mlflow; `yaml` is imported lazily by `read_signature`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

#: The reserved per-record key carrying the client's request id.
REQUEST_ID = "request_id"
REQUEST_ID_MAX = 128
#: At most this many problems are collected before scanning stops.
MAX_ERRORS = 10
#: Keys of the MLflow scoring-server body formats (`mlflow models serve` /invocations).
WRAPPERS = ("dataframe_records", "dataframe_split", "instances", "inputs")
#: MLflow ColSpec types with a checker; others (array, object, map, any) are checked loosely.
COLUMN_TYPES = ("double", "float", "long", "integer", "string", "boolean", "datetime", "binary")

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_FLOAT32_MAX = 3.4028234663852886e38
_NAMES_SHOWN = 8


class ModelError(WorkbenchError):
    """A model cannot be read or served; the message is one line naming the file or version."""


@dataclass(frozen=True)
class Field:
    name: str
    type: (
        str  # MLflow ColSpec type: double, float, long, integer, string, boolean, datetime, binary
    )
    required: bool = True


@dataclass(frozen=True)
class Signature:
    inputs: tuple[Field, ...]

    def __post_init__(self) -> None:
        # Precomputed once per signature, outside the dataclass fields (not compared, not hashed).
        plan = tuple((f.name, _CHECKERS.get(f.type, _check_any), f.required) for f in self.inputs)
        object.__setattr__(self, "_plan", plan)
        object.__setattr__(self, "_names", frozenset(f.name for f in self.inputs))
        object.__setattr__(self, "_takes", _name_list([f.name for f in self.inputs]))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickle by inputs only: the precomputed checkers include closures.
        return (Signature, (self.inputs,))

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.inputs]


def _name_list(names: list[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    return shown + ", ..." if len(names) > _NAMES_SHOWN else shown


# -- reading the MLmodel file -------------------------------------------------------------------


def read_mlmodel(model_dir: Path) -> dict[str, Any]:
    """The parsed `MLmodel` file of an MLflow model directory."""
    path = Path(model_dir) / "MLmodel"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"{path}: no such file (not an MLflow model directory)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: cannot be read ({exc})") from None
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        spec = yaml.load(text, Loader=loader)  # a safe loader (C if available)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ModelError(f"{path}: not valid YAML{where}") from None
    if not isinstance(spec, dict):
        raise ModelError(f"{path}: not an MLmodel file (expected a YAML mapping)")
    return spec


def read_signature(model_dir: Path) -> Signature:
    """The column-based input signature in `model_dir/MLmodel`."""
    path = Path(model_dir) / "MLmodel"
    return signature_from_mlmodel(read_mlmodel(model_dir), path)


def signature_from_mlmodel(spec: dict[str, Any], path: Path) -> Signature:
    """The input signature of an already parsed MLmodel (`path` names it in errors)."""
    sig = spec.get("signature")
    raw = sig.get("inputs") if isinstance(sig, dict) else None
    if not raw:
        raise ModelError(f"{path}: the model has no input signature")
    try:
        cols = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise ModelError(f"{path}: signature.inputs is not valid JSON") from None
    if not isinstance(cols, list) or not cols:
        raise ModelError(f"{path}: signature.inputs is not a list of columns")
    fields: list[Field] = []
    seen: set[str] = set()
    for i, col in enumerate(cols):
        if not isinstance(col, dict):
            raise ModelError(f"{path}: signature input {i} is not a column spec")
        ctype = col.get("type")
        if ctype == "tensor":
            raise ModelError(
                f"{path}: the model has a tensor signature; only column-based signatures "
                "can be served"
            )
        name = col.get("name")
        if not isinstance(name, str) or not name:
            raise ModelError(f"{path}: signature input {i} has no column name")
        if not isinstance(ctype, str):
            raise ModelError(f"{path}: signature input {name!r} has no type")
        if name in seen:
            raise ModelError(f"{path}: signature input {name!r} appears twice")
        seen.add(name)
        fields.append(Field(name=name, type=ctype, required=bool(col.get("required", True))))
    return Signature(inputs=tuple(fields))


# -- per-field checkers --------------------------------------------------------------------------


class _Invalid(Exception):
    """A value does not fit its field: (message, error type)."""


class _Full(Exception):
    """More than MAX_ERRORS problems: stop scanning."""


def _show(v: Any) -> str:
    """A value as the client wrote it, short."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return repr(v if len(v) <= 40 else v[:37] + "...")
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, int) and not -(10**30) < v < 10**30:
        return "a huge integer"
    return repr(v)


_isfinite = math.isfinite


def _check_double(v: Any) -> float:
    t = type(v)
    if t is float:
        if _isfinite(v):
            return v  # type: ignore[no-any-return]
        raise _Invalid(f"expected a finite number, got {_show(v)}", "finite_number")
    if t is int:
        try:
            return float(v)
        except OverflowError:
            raise _Invalid(
                "expected a finite number, got a huge integer", "finite_number"
            ) from None
    raise _Invalid(f"expected a number, got {_show(v)}", "float_type")


def _check_float(v: Any) -> float:
    f = _check_double(v)
    if -_FLOAT32_MAX <= f <= _FLOAT32_MAX:
        return f
    raise _Invalid(f"number out of range for a 32-bit float, got {_show(v)}", "finite_number")


def _int_checker(lo: int, hi: int, bits: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        t = type(v)
        if t is int:
            if lo <= v <= hi:
                return v  # type: ignore[no-any-return]
        elif t is float:
            if not v.is_integer():
                raise _Invalid(f"expected an integer, got {_show(v)}", "int_from_float")
            if lo <= v <= hi:
                return int(v)
        else:
            raise _Invalid(f"expected an integer, got {_show(v)}", "int_type")
        raise _Invalid(f"integer out of range for {bits} bits, got {_show(v)}", "int_range")

    return check


def _check_string(v: Any) -> str:
    if type(v) is str:
        return v
    raise _Invalid(f"expected a string, got {_show(v)}", "string_type")


def _check_boolean(v: Any) -> bool:
    if v is True or v is False:
        return v
    raise _Invalid(f"expected true or false, got {_show(v)}", "bool_type")


def _check_datetime(v: Any) -> str:
    if type(v) is str:
        try:
            datetime.fromisoformat(v)
        except ValueError:
            pass
        else:
            return v
        raise _Invalid(f"expected an ISO-8601 date-time, got {_show(v)}", "datetime_parsing")
    raise _Invalid(f"expected an ISO-8601 date-time string, got {_show(v)}", "datetime_type")


def _check_binary(v: Any) -> str:
    if type(v) is str:
        return v
    raise _Invalid(f"expected a string (binary data), got {_show(v)}", "string_type")


def _check_array(v: Any) -> list[Any]:
    if type(v) is list:
        return v
    raise _Invalid(f"expected an array, got {_show(v)}", "list_type")


def _check_object(v: Any) -> dict[str, Any]:
    if type(v) is dict:
        return v
    raise _Invalid(f"expected an object, got {_show(v)}", "dict_type")


def _check_any(v: Any) -> Any:
    return v


_CHECKERS: dict[str, Callable[[Any], Any]] = {
    "double": _check_double,
    "float": _check_float,
    "long": _int_checker(_LONG_MIN, _LONG_MAX, 64),
    "integer": _int_checker(_INT_MIN, _INT_MAX, 32),
    "string": _check_string,
    "boolean": _check_boolean,
    "datetime": _check_datetime,
    "binary": _check_binary,
    "array": _check_array,
    "object": _check_object,
    "map": _check_object,
}


# -- errors ------------------------------------------------------------------------------------

Loc = tuple[str | int, ...]


class PayloadError(Exception):
    """Raised for a bad request body. `errors` is a list of (loc, msg, type) with at most 10
    entries; `truncated` says scanning stopped with more problems left."""

    errors: list[tuple[Loc, str, str]]
    truncated: bool
    what: str

    def __init__(
        self,
        errors: list[tuple[Loc, str, str]],
        truncated: bool = False,
        what: str = "records",
    ) -> None:
        self.errors = errors[:MAX_ERRORS]
        self.truncated = truncated or len(errors) > MAX_ERRORS
        self.what = what  # how batch items are named in line(): records[3], labels[3]
        super().__init__(self.line())

    @classmethod
    def body(cls, msg: str, type_: str, what: str = "records") -> PayloadError:
        return cls([(("body",), msg, type_)], what=what)

    def where(self, loc: Loc) -> str:
        rest = loc[1:] if loc and loc[0] == "body" else loc
        if not rest:
            return "body"
        parts: list[str] = []
        for i, part in enumerate(rest):
            if isinstance(part, int):
                parts.append(f"{self.what}[{part}]" if i == 0 else f"[{part}]")
            elif _plain(part):
                parts.append(f".{part}" if parts else part)
            else:  # a client's key with spaces, dots, control characters, or very long
                short = part if len(part) <= 40 else part[:37] + "..."
                parts.append(f"[{json.dumps(short)}]")
        return "".join(parts)

    def line(self) -> str:
        if not self.errors:
            return "body: invalid"
        loc, msg, _ = self.errors[0]
        text = f"{self.where(loc)}: {msg}"
        more = len(self.errors) - 1
        if self.truncated:
            text += f" (and {more}+ more problems)"
        elif more == 1:
            text += " (and 1 more problem)"
        elif more:
            text += f" (and {more} more problems)"
        return text

    def detail(self) -> list[dict[str, Any]]:
        return [{"loc": list(loc), "msg": msg, "type": type_} for loc, msg, type_ in self.errors]


def _plain(name: str) -> bool:
    return 0 < len(name) <= 40 and name.isprintable() and not any(c in name for c in " .[]'\"")


# -- parsing -----------------------------------------------------------------------------------


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFinite(name)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ABSENT = object()


def _load_json(body: bytes, what: str) -> Any:
    if not body or not body.strip():
        raise PayloadError.body("empty; send a JSON object or array", "missing", what)
    if isinstance(body, str):
        text = body
    else:
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError.body(
                f"not valid UTF-8 (byte {exc.start})", "json_invalid", what
            ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        return _DECODER.decode(text)
    except _NonFinite as exc:
        raise PayloadError.body(
            f"not valid JSON ({exc.args[0]} is not allowed; numbers must be finite, "
            "send null for a missing value)",
            "json_invalid",
            what,
        ) from None
    except json.JSONDecodeError as exc:
        raise PayloadError.body(
            f"not valid JSON (line {exc.lineno} column {exc.colno}): {exc.msg.lower()}",
            "json_invalid",
            what,
        ) from None
    except RecursionError:
        raise PayloadError.body(
            "not valid JSON (nested too deeply)", "json_invalid", what
        ) from None
    except ValueError:  # an integer literal over Python's 4300-digit limit
        raise PayloadError.body(
            "not valid JSON (a number with too many digits)", "json_invalid", what
        ) from None


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if v is None:
        return "null"
    return "an array" if isinstance(v, list) else "an object"


@dataclass
class Parsed:
    records: list[dict[str, Any]]
    single: bool
    request_ids: list[str | None]


class _Errors:
    """Collects problems; raises _Full at the eleventh."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[tuple[Loc, str, str]] = []

    def add(self, loc: Loc, msg: str, type_: str) -> None:
        if len(self.items) >= MAX_ERRORS:
            raise _Full
        self.items.append((loc, msg, type_))


def _unwrap(data: dict[str, Any], key: str, errs: _Errors) -> list[Any]:
    """The records inside an MLflow scoring-server wrapper."""
    others = [k for k in data if k != key and k != "params"]
    if others:
        errs.add(("body", others[0]), f"unexpected key next to {key!r}", "extra_forbidden")
        return []
    value = data[key]
    if key == "dataframe_split":
        return _split_rows(value, errs)
    if isinstance(value, list):
        return value
    if key != "dataframe_records" and isinstance(value, dict):
        # TF-serving columnar form: {"inputs": {"amount": [1.0, 2.0], ...}}
        columns = list(value)
        arrays = list(value.values())
        if arrays and all(isinstance(a, list) for a in arrays):
            n = len(arrays[0])
            if all(len(a) == n for a in arrays):
                return [dict(zip(columns, row, strict=True)) for row in zip(*arrays, strict=True)]
        errs.add(
            ("body", key),
            "expected a list of records, or an object of equal-length column arrays",
            "list_type",
        )
        return []
    errs.add(("body", key), f"expected a list of records, got {_kind(value)}", "list_type")
    return []


def _split_rows(value: Any, errs: _Errors) -> list[Any]:
    if not isinstance(value, dict):
        errs.add(
            ("body", "dataframe_split"), f"expected an object, got {_kind(value)}", "dict_type"
        )
        return []
    extra = [k for k in value if k not in ("columns", "data", "index")]
    if extra:
        errs.add(("body", "dataframe_split", extra[0]), "unexpected key", "extra_forbidden")
        return []
    columns = value.get("columns")
    data = value.get("data")
    if not isinstance(columns, list) or not all(type(c) is str for c in columns):
        errs.add(
            ("body", "dataframe_split", "columns"), "expected a list of column names", "list_type"
        )
        return []
    if len(set(columns)) != len(columns):
        dup = next(c for i, c in enumerate(columns) if c in columns[:i])
        errs.add(
            ("body", "dataframe_split", "columns"),
            f"column {_show(dup)} appears twice",
            "value_error",
        )
        return []
    if not isinstance(data, list):
        errs.add(("body", "dataframe_split", "data"), "expected a list of rows", "list_type")
        return []
    n = len(columns)
    rows: list[Any] = []
    for i, row in enumerate(data):
        if type(row) is list and len(row) == n:
            rows.append(dict(zip(columns, row, strict=True)))
        else:
            got = _kind(row)
            if isinstance(row, list):
                got = f"{len(row)} value" + ("" if len(row) == 1 else "s")
            errs.add(
                ("body", i),
                f"expected an array of {n} values (one per column), got {got}",
                "list_type",
            )
            rows.append(None)
    return rows


def parse_records(body: bytes, sig: Signature, max_records: int = 10_000) -> Parsed:
    """Validate a prediction request body against `sig`; raise PayloadError on any problem."""
    data = _load_json(body, "records")
    errs = _Errors()
    names: frozenset[str] = sig._names  # type: ignore[attr-defined]
    single = False
    rows: list[Any] = []
    try:
        if type(data) is dict:
            keys = [k for k in WRAPPERS if k in data and k not in names]
            if len(keys) > 1:
                errs.add(
                    ("body",), f"expected one of {', '.join(keys)}, got several", "value_error"
                )
            elif keys:
                rows = _unwrap(data, keys[0], errs)
            else:
                rows = [data]
                single = True
        elif type(data) is list:
            rows = data
        else:
            errs.add(
                ("body",),
                f"expected a JSON object (a record) or an array of records, got {_kind(data)}",
                "model_type",
            )
        if errs.items:
            raise PayloadError(errs.items)
        if not rows:
            raise PayloadError.body("empty batch; send at least one record", "too_short")
        if len(rows) > max_records:
            raise PayloadError.body(
                f"too many records: {len(rows)} (the limit is {max_records})", "too_long"
            )
        records, request_ids = _check_records(rows, sig, single, errs)
    except _Full:
        raise PayloadError(errs.items, truncated=True) from None
    if errs.items:
        raise PayloadError(errs.items)
    return Parsed(records=records, single=single, request_ids=request_ids)


def _check_records(
    rows: list[Any], sig: Signature, single: bool, errs: _Errors
) -> tuple[list[dict[str, Any]], list[str | None]]:
    plan: tuple[tuple[str, Callable[[Any], Any], bool], ...] = sig._plan  # type: ignore[attr-defined]
    names: frozenset[str] = sig._names  # type: ignore[attr-defined]
    rid_reserved = REQUEST_ID not in names
    absent = _ABSENT
    invalid = _Invalid
    takes: str = sig._takes  # type: ignore[attr-defined]
    records: list[dict[str, Any]] = []
    request_ids: list[str | None] = []
    for index, rec in enumerate(rows):
        if type(rec) is not dict:
            errs.add(
                ("body",) if single else ("body", index),
                f"expected an object (a record), got {_kind(rec)}",
                "dict_type",
            )
            continue
        out: dict[str, Any] = {}
        found = 0
        for name, check, required in plan:
            v = rec.get(name, absent)
            if v is None:  # a missing value, sent as such: the model handles it (NaN)
                found += 1
                out[name] = None
                continue
            if v is absent:  # left out: a typo or a broken client, for a required field
                if required:
                    errs.add(_loc(single, index, name), "missing required field", "missing")
                else:
                    out[name] = None
                continue
            found += 1
            try:
                out[name] = check(v)
            except invalid as exc:
                errs.add(_loc(single, index, name), exc.args[0], exc.args[1])
        rid: str | None = None
        extra = len(rec) - found
        if rid_reserved:
            if extra:
                value = rec.get(REQUEST_ID, absent)
                if value is not absent:
                    extra -= 1
                    if type(value) is str and 0 < len(value) <= REQUEST_ID_MAX:
                        rid = value
                    elif value is not None:
                        errs.add(
                            _loc(single, index, REQUEST_ID), _bad_request_id(value), "string_type"
                        )
        else:
            value = out.get(REQUEST_ID)
            if type(value) is str and 0 < len(value) <= REQUEST_ID_MAX:
                rid = value
        if extra:
            for key in rec:
                if key not in names and not (rid_reserved and key == REQUEST_ID):
                    errs.add(
                        _loc(single, index, key),
                        f"unknown field (the model takes: {takes})",
                        "extra_forbidden",
                    )
        records.append(out)
        request_ids.append(rid)
    return records, request_ids


def _bad_request_id(value: Any) -> str:
    got = _show(value) if type(value) is not str else "a longer string" if value else "''"
    return f"expected a non-empty string of at most {REQUEST_ID_MAX} characters, got {got}"


def _loc(single: bool, index: int, name: str) -> Loc:
    return ("body", name) if single else ("body", index, name)


# -- labels ------------------------------------------------------------------------------------

_LABEL_KEYS = ("request_id", "label")


def parse_labels(body: bytes, max_records: int = 100_000) -> list[tuple[str, float]]:
    """Delayed ground truth: `{"request_id": ..., "label": ...}`, a list of those, or
    `{"labels": [...]}`. A label is a finite number or a boolean (true -> 1.0)."""
    data = _load_json(body, "labels")
    errs = _Errors()
    single = False
    if type(data) is dict and "labels" in data:
        extra = [k for k in data if k != "labels"]
        if extra:
            raise PayloadError(
                [(("body", extra[0]), "unexpected key next to 'labels'", "extra_forbidden")],
                what="labels",
            )
        items = data["labels"]
        if type(items) is not list:
            raise PayloadError(
                [
                    (
                        ("body", "labels"),
                        f"expected a list of labels, got {_kind(items)}",
                        "list_type",
                    )
                ],
                what="labels",
            )
    elif type(data) is dict:
        items = [data]
        single = True
    elif type(data) is list:
        items = data
    else:
        raise PayloadError.body(
            f"expected a JSON object (a label) or an array of labels, got {_kind(data)}",
            "model_type",
            "labels",
        )
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
            if type(item) is not dict:
                errs.add(loc, f"expected an object (a label), got {_kind(item)}", "dict_type")
                continue
            rid = item.get("request_id")
            label = item.get("label")
            ok = True
            if rid is None:
                errs.add((*loc, "request_id"), "missing required field", "missing")
                ok = False
            elif type(rid) is not str or not 0 < len(rid) <= REQUEST_ID_MAX:
                errs.add((*loc, "request_id"), _bad_request_id(rid), "string_type")
                ok = False
            value = 0.0
            if label is None:
                errs.add((*loc, "label"), "missing required field", "missing")
                ok = False
            elif label is True or label is False:
                value = 1.0 if label else 0.0
            else:
                try:
                    value = _check_double(label)
                except _Invalid as exc:
                    errs.add((*loc, "label"), exc.args[0], exc.args[1])
                    ok = False
            for key in item:
                if key not in _LABEL_KEYS:
                    errs.add(
                        (*loc, key),
                        "unknown field (a label takes: request_id, label)",
                        "extra_forbidden",
                    )
                    ok = False
            if ok:
                out.append((rid, value))  # type: ignore[arg-type]
    except _Full:
        raise PayloadError(errs.items, truncated=True, what="labels") from None
    if errs.items:
        raise PayloadError(errs.items, what="labels")
    return out


# -- OpenAPI -----------------------------------------------------------------------------------

_JSON_TYPES: dict[str, dict[str, Any]] = {
    "double": {"type": "number", "format": "double"},
    "float": {"type": "number", "format": "float"},
    "long": {"type": "integer", "format": "int64"},
    "integer": {"type": "integer", "format": "int32"},
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
    "binary": {"type": "string", "contentEncoding": "base64"},
    "array": {"type": "array"},
    "object": {"type": "object"},
    "map": {"type": "object"},
}
_EXAMPLES: dict[str, Any] = {
    "double": 1.0,
    "float": 1.0,
    "long": 1,
    "integer": 1,
    "string": "a",
    "boolean": False,
    "datetime": "2024-01-01T00:00:00",
    "binary": "",
    "array": [],
    "object": {},
    "map": {},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def record_schema(sig: Signature) -> dict[str, Any]:
    """The JSON Schema of one record of `sig` (plus the reserved request_id)."""
    props: dict[str, Any] = {}
    for f in sig.inputs:
        base = dict(_JSON_TYPES.get(f.type, {}))
        if not f.required and "type" in base:
            base["type"] = [base["type"], "null"]
        base["description"] = f"MLflow type {f.type}" + ("" if f.required else " (optional)")
        props[f.name] = base
    if REQUEST_ID not in props:
        props[REQUEST_ID] = {
            "type": "string",
            "minLength": 1,
            "maxLength": REQUEST_ID_MAX,
            "description": "Optional client request id, echoed back and used to attach labels.",
        }
    return {
        "type": "object",
        "properties": props,
        "required": [f.name for f in sig.inputs if f.required],
        "additionalProperties": False,
        "example": {f.name: _EXAMPLES.get(f.type) for f in sig.inputs},
    }


def openapi_spec(sig: Signature, title: str, version: str) -> dict[str, Any]:
    """An OpenAPI 3.1 description of the inference server's endpoints for this signature."""
    error_422 = {
        "description": "The body is not valid for this model",
        **_json(_ref("ValidationError")),
    }
    unauthorized = {"description": "Missing or wrong bearer token", **_json(_ref("Error"))}
    security = [{"bearer": []}, {}]
    predict_op = {
        "summary": "Score one record or a batch",
        "requestBody": {"required": True, **_json(_ref("PredictRequest"))},
        "responses": {
            "200": {
                "description": "One prediction per record",
                **_json({"oneOf": [_ref("Prediction"), _ref("BatchPrediction")]}),
            },
            "401": unauthorized,
            "422": error_422,
        },
        "security": security,
    }
    model_fields = {
        "model": {"type": "string"},
        "version": {"type": "integer"},
        "variant": {"type": "string"},
    }
    label = {
        "type": "object",
        "properties": {
            "request_id": {"type": "string", "minLength": 1, "maxLength": REQUEST_ID_MAX},
            "label": {"oneOf": [{"type": "number"}, {"type": "boolean"}]},
        },
        "required": ["request_id", "label"],
        "additionalProperties": False,
    }
    records = {"type": "array", "items": _ref("Record"), "minItems": 1}
    schemas: dict[str, Any] = {
        "Record": record_schema(sig),
        "Records": records,
        "DataframeRecords": {
            "type": "object",
            "properties": {"dataframe_records": _ref("Records"), "params": {"type": "object"}},
            "required": ["dataframe_records"],
            "additionalProperties": False,
        },
        "DataframeSplit": {
            "type": "object",
            "properties": {
                "dataframe_split": {
                    "type": "object",
                    "properties": {
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "data": {"type": "array", "items": {"type": "array"}, "minItems": 1},
                        "index": {"type": "array"},
                    },
                    "required": ["columns", "data"],
                    "additionalProperties": False,
                },
                "params": {"type": "object"},
            },
            "required": ["dataframe_split"],
            "additionalProperties": False,
        },
        "Instances": {
            "type": "object",
            "properties": {"instances": _ref("Records"), "params": {"type": "object"}},
            "required": ["instances"],
            "additionalProperties": False,
        },
        "Inputs": {
            "type": "object",
            "properties": {"inputs": _ref("Records"), "params": {"type": "object"}},
            "required": ["inputs"],
            "additionalProperties": False,
        },
        "PredictRequest": {
            "oneOf": [
                _ref("Record"),
                _ref("Records"),
                _ref("DataframeRecords"),
                _ref("DataframeSplit"),
                _ref("Instances"),
                _ref("Inputs"),
            ]
        },
        "Prediction": {
            "type": "object",
            "properties": {
                "request_id": {"type": "string"},
                "prediction": {"type": "number"},
                **model_fields,
            },
            "required": ["request_id", "prediction", "model", "version", "variant"],
        },
        "BatchPrediction": {
            "type": "object",
            "properties": {
                "request_ids": {"type": "array", "items": {"type": "string"}},
                "predictions": {"type": "array", "items": {"type": "number"}},
                **model_fields,
            },
            "required": ["request_ids", "predictions", "model", "version", "variant"],
        },
        "Error": {
            "type": "object",
            "properties": {"error": {"type": "string"}},
            "required": ["error"],
        },
        "ValidationError": {
            "type": "object",
            "properties": {
                "error": {"type": "string", "description": "One line naming the first problem"},
                "detail": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "loc": {
                                "type": "array",
                                "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                            },
                            "msg": {"type": "string"},
                            "type": {"type": "string"},
                        },
                        "required": ["loc", "msg", "type"],
                    },
                },
            },
            "required": ["error", "detail"],
        },
        "Label": label,
        "LabelsRequest": {
            "oneOf": [
                _ref("Label"),
                {"type": "array", "items": _ref("Label"), "minItems": 1},
                {
                    "type": "object",
                    "properties": {
                        "labels": {"type": "array", "items": _ref("Label"), "minItems": 1}
                    },
                    "required": ["labels"],
                    "additionalProperties": False,
                },
            ]
        },
    }

    def get(summary: str, schema: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
        return {
            "get": {
                "summary": summary,
                "responses": {"200": {"description": "OK", **_json(schema)}, **(extra or {})},
            }
        }

    paths: dict[str, Any] = {
        "/predict": {"post": {**predict_op, "operationId": "predict"}},
        "/invocations": {
            "post": {
                **predict_op,
                "operationId": "invocations",
                "description": "Same as /predict; accepts `mlflow models serve` bodies.",
            }
        },
        "/labels": {
            "post": {
                "summary": "Attach ground-truth labels to earlier predictions by request id",
                "operationId": "labels",
                "requestBody": {"required": True, **_json(_ref("LabelsRequest"))},
                "responses": {
                    "200": {
                        "description": "Labels stored",
                        **_json(
                            {
                                "type": "object",
                                "properties": {"accepted": {"type": "integer"}},
                                "required": ["accepted"],
                            }
                        ),
                    },
                    "401": unauthorized,
                    "422": error_422,
                },
                "security": security,
            }
        },
        "/health": get(
            "Liveness",
            {
                "type": "object",
                "properties": {"status": {"const": "ok"}},
                "required": ["status"],
            },
        ),
        "/ready": get(
            "Readiness: the model is loaded",
            {
                "type": "object",
                "properties": {"ready": {"type": "boolean"}},
                "required": ["ready"],
            },
            {"503": {"description": "Not ready yet", **_json({"type": "object"})}},
        ),
        "/version": get("The model and version being served", {"type": "object"}),
        "/deployment": get("The deployment: variants, traffic split", {"type": "object"}),
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
