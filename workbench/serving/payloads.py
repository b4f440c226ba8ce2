"""Request bodies of the inference server, parsed and checked against a model's signature:
records (plain, or in an MLflow scoring-server wrapper, with optional request ids) and
delayed labels (parsed in workbench.serving.label_payloads).

`parse_records` runs on every request, so it avoids pydantic and per-request set-up: it uses
the checkers each `Signature` precomputed, and a record costs one dict lookup and one call per
field (a few microseconds for ten fields, most of it `json.loads`). Errors are collected (at
most ten) into a `PayloadError` that renders as one line for the CLI and logs, and as
FastAPI-style `detail` for the HTTP response.

Passthrough fields (the project's `[data] id_column` and `[serving] passthrough`) are allowed
in any record: taken out before the model sees the record (one dict lookup per configured
field), kept per record in `Parsed.passthrough` for the log and the answer. Their values are
JSON scalars of at most `PASSTHROUGH_MAX` characters.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from workbench.serving.client_strings import find_surrogate, may_hold_surrogates, request_id_problem
from workbench.serving.columnar import Columns, check_columns, columnar_body, plain_split
from workbench.serving.signature import Signature, _Invalid, _show

if TYPE_CHECKING:
    from workbench.tasks import ModelTask

#: The reserved per-record key carrying the client's request id.
REQUEST_ID = "request_id"
#: At most this many problems are collected before scanning stops.
MAX_ERRORS = 10
#: Keys of the MLflow scoring-server body formats (`mlflow models serve` /invocations).
WRAPPERS = ("dataframe_records", "dataframe_split", "instances", "inputs")
#: A passthrough value's longest text (a string's length, a number's digits).
PASSTHROUGH_MAX = 256


class _Full(Exception):
    """More than MAX_ERRORS problems: stop scanning."""


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
#: A body's digits as b"0", everything else as b" ": a 19-digit run is then one memmem
#: (~10x a regular expression's search of a 100 kB body).
_DIGITS_AS_0 = bytes(48 if 48 <= c <= 57 else 32 for c in range(256))
_DIGITS_19 = b"0" * 19
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
    elif type(body) is bytes and _DIGITS_19 not in body.translate(_DIGITS_AS_0):
        # orjson: 3-5x json's speed; it refuses NaN, lone surrogates and nesting too deep
        # (the path below then says why, as before), and would read an integer of 20+
        # digits as a float, so a body with such a digit run takes the path below too.
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        data = _DECODER.decode(text)
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
    # A lone surrogate can only come as a \uD8xx-\uDFxx escape; most bodies hold no
    # backslash at all (`92 in body` is a memchr, ~15 ns), so the walk rarely runs.
    if (92 in body and may_hold_surrogates(body)) if type(body) is bytes else True:
        found = find_surrogate(data)
        if found is not None:
            loc, msg = found
            raise PayloadError([(("body", *loc), msg, "string_unicode")], what=what)
    return data


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
    #: the checked records; a `Columns` (a sequence of records) for a columnar batch
    records: list[dict[str, Any]] | Columns
    single: bool
    request_ids: list[str | None]
    #: per record, the passthrough fields it carried (None: none); None when no record did
    passthrough: list[dict[str, Any] | None] | None = None


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
    params = data.get("params")
    if params is not None and type(params) is not dict:
        errs.add(("body", "params"), f"expected an object, got {_kind(params)}", "dict_type")
        return []
    value = data[key]
    if key == "dataframe_split":
        return _split_rows(value, errs, ("body", "dataframe_split"))
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


def _split_rows(value: Any, errs: _Errors, at: Loc) -> list[Any]:
    if not isinstance(value, dict):
        errs.add(at, f"expected an object, got {_kind(value)}", "dict_type")
        return []
    extra = [k for k in value if k not in ("columns", "data", "index")]
    if extra:
        errs.add((*at, extra[0]), "unexpected key", "extra_forbidden")
        return []
    columns = value.get("columns")
    data = value.get("data")
    if "index" in value and type(value["index"]) is not list:  # accepted, then ignored
        got = _kind(value["index"])
        errs.add((*at, "index"), f"expected an array, got {got}", "list_type")
        return []
    if not isinstance(columns, list) or not all(type(c) is str for c in columns):
        errs.add((*at, "columns"), "expected a list of column names", "list_type")
        return []
    if len(set(columns)) != len(columns):
        dup = next(c for i, c in enumerate(columns) if c in columns[:i])
        errs.add(
            (*at, "columns"),
            f"column {_show(dup)} appears twice",
            "value_error",
        )
        return []
    if not isinstance(data, list):
        errs.add((*at, "data"), "expected a list of rows", "list_type")
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


def parse_records(
    body: bytes, sig: Signature, max_records: int = 10_000, passthrough: tuple[str, ...] = ()
) -> Parsed:
    """Validate a prediction request body against `sig`; raise PayloadError on any problem.
    `passthrough` names the fields taken out of each record (a model input named there is
    copied, not taken: the model still gets it)."""
    data = _load_json(body, "records")
    names: frozenset[str] = sig._names  # type: ignore[attr-defined]
    found = columnar_body(data, names)
    if found is not None:  # checked a column at a time; None: the per-record path says why
        fast = _checked(*found, sig, max_records, passthrough)
        if fast is not None:
            return fast
    errs = _Errors()
    single = False
    rows: list[Any] = []
    try:
        if type(data) is dict:
            keys = [k for k in WRAPPERS if k in data and k not in names]
            if not keys and plain_split(data, names):
                rows = _split_rows(data, errs, ("body",))
            elif len(keys) > 1:
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
        records, request_ids, carried = _check_records(rows, sig, single, errs, passthrough)
    except _Full:
        raise PayloadError(errs.items, truncated=True) from None
    if errs.items:
        raise PayloadError(errs.items)
    return Parsed(records, single, request_ids, carried)


def _checked(
    columns: list[str],
    arrays: list[list[Any]],
    n: int,
    sig: Signature,
    max_records: int,
    passthrough: tuple[str, ...],
) -> Parsed | None:
    if not 0 < n <= max_records:
        return None  # empty, or too many: said by the per-record path
    checked = check_columns(columns, arrays, sig, (REQUEST_ID, *passthrough))
    if checked is None:
        return None
    return Parsed(checked, False, [None] * n, None)


def _check_records(
    rows: list[Any], sig: Signature, single: bool, errs: _Errors, passthrough: tuple[str, ...]
) -> tuple[list[dict[str, Any]], list[str | None], list[dict[str, Any] | None] | None]:
    plan: tuple[tuple[str, Callable[[Any], Any], bool], ...] = sig._plan  # type: ignore[attr-defined]
    names: frozenset[str] = sig._names  # type: ignore[attr-defined]
    rid_reserved = REQUEST_ID not in names
    absent = _ABSENT
    invalid = _Invalid
    takes: str = sig._takes  # type: ignore[attr-defined]
    records: list[dict[str, Any]] = []
    request_ids: list[str | None] = []
    carried: list[dict[str, Any] | None] = []
    any_carried = False
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
        kept: dict[str, Any] | None = None
        for name in passthrough:
            v = rec.get(name, absent)
            if v is absent:
                continue
            if name not in names:
                extra -= 1
            if v is not None:
                problem = _passthrough_problem(v)
                if problem is not None:
                    errs.add(_loc(single, index, name), problem, "passthrough")
                    continue
                if kept is None:
                    kept = {}
                kept[name] = v
        if kept is not None:
            any_carried = True
        carried.append(kept)
        if rid_reserved:
            if extra:
                value = rec.get(REQUEST_ID, absent)
                if value is not absent:
                    extra -= 1
                    if value is not None:
                        problem = request_id_problem(value)
                        if problem is None:
                            rid = value
                        else:
                            errs.add(_loc(single, index, REQUEST_ID), problem, "request_id")
        else:  # the model has a request_id feature: its value names the row when it can
            value = out.get(REQUEST_ID)
            if value is not None and request_id_problem(value) is None:
                rid = value
        if extra:
            for key in rec:
                if key in passthrough:
                    continue
                if key not in names and not (rid_reserved and key == REQUEST_ID):
                    errs.add(
                        _loc(single, index, key),
                        f"unknown field (the model takes: {takes})",
                        "extra_forbidden",
                    )
        records.append(out)
        request_ids.append(rid)
    return records, request_ids, carried if any_carried else None


def _passthrough_problem(v: Any) -> str | None:
    """Why `v` cannot be a passthrough value (None: it can)."""
    t = type(v)
    if t is str:
        if len(v) <= PASSTHROUGH_MAX:
            return None
        return f"longer than {PASSTHROUGH_MAX} characters ({len(v)}): a passthrough value"
    if t is bool or t is float:
        return None
    if t is int:
        if -(10**PASSTHROUGH_MAX) < v < 10**PASSTHROUGH_MAX:
            return None
        return f"more than {PASSTHROUGH_MAX} digits: a passthrough value"
    return f"expected a string, number, boolean or null (a passthrough value), got {_kind(v)}"


def _loc(single: bool, index: int, name: str) -> Loc:
    return ("body", name) if single else ("body", index, name)


# -- labels (workbench.serving.label_payloads) --------------------------------------------

#: Labels per POST /labels at most.
MAX_LABELS = 100_000


def parse_labels(
    body: bytes, max_records: int = MAX_LABELS, task: ModelTask | None = None
) -> list[tuple[str, float]]:
    """`workbench.serving.label_payloads.parse_labels` (which builds on this module)."""
    from workbench.serving.label_payloads import parse_labels as parse

    return parse(body, max_records, task)
