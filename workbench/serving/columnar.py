"""The columnar fast path for batches: columns checked a column at a time, kept as columns.

A batch sent as columns (MLflow's `dataframe_split` {"columns": [...], "data": [[...], ...]},
the same object without the wrapper, or TF-serving's {"inputs": {"amount": [...], ...}}) is
checked a column at a time: the set of a column's value types (one C pass), finiteness in
numpy, integer ranges by min/max. A batch that passes holds the values the per-record
checkers would have returned (an integer sent for a double is a float, and so on), as a
`Columns`: a sequence of records to anything that iterates it (the log's JSON, the sticky
key, a pyfunc model), and its columns to the LightGBM predictor, which builds its matrix a
column at a time. A batch that does not pass (a value of the wrong type, a non-finite
number, a row of the wrong length, a missing, unknown, request-id or passthrough column)
takes the per-record path, so every 422 names the same row and field as before.

1,000 rows x 9 fields: ~0.3 ms checked here against ~2.2 ms per record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

#: Signature types a column can be checked as a whole; any other takes the per-record path.
_FLOATS = {"double": 0.0, "float": 3.4028234663852886e38}
_INTS = {"long": 2**63 - 1, "integer": 2**31 - 1}
_NONE = type(None)


class Columns(Sequence[dict[str, Any]]):
    """Checked records as columns (in the signature's order), read as records on demand."""

    __slots__ = ("n", "names", "values")

    def __init__(self, names: tuple[str, ...], values: list[list[Any]], n: int) -> None:
        self.names = names
        self.values = values
        self.n = n

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> Columns: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | Columns:
        if isinstance(index, slice):
            values = [column[index] for column in self.values]
            return Columns(self.names, values, len(range(*index.indices(self.n))))
        if index < 0:
            index += self.n
        if not 0 <= index < self.n:
            raise IndexError(index)
        return {name: column[index] for name, column in zip(self.names, self.values, strict=True)}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows())

    def rows(self) -> list[dict[str, Any]]:
        """Every record, made at once (~5x a generator's speed here)."""
        names = self.names
        return [dict(zip(names, row)) for row in zip(*self.values)]  # noqa: B905 - equal lengths

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == self.n and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def column(self, name: str) -> list[Any]:
        return self.values[self.names.index(name)]


#: The plain columnar body's keys ({"columns": [...], "data": [[...], ...]}: MLflow's split
#: form without its wrapper).
SPLIT_KEYS = ("columns", "data", "index")


def plain_split(data: dict[str, Any], names: frozenset[str]) -> bool:
    """Whether `data` is the plain columnar body (not a record with such fields)."""
    return (
        "columns" in data
        and "data" in data
        and all(k in SPLIT_KEYS and k not in names for k in data)
    )


def columnar_body(
    data: Any, names: frozenset[str]
) -> tuple[list[str], list[list[Any]], int] | None:
    """(column names, column values, rows) of a well-formed columnar body: MLflow's
    `dataframe_split`, the plain split object, TF-serving's `inputs`/`instances` columns;
    None for anything else (records, or a body the per-record path must report on)."""
    if type(data) is not dict:
        return None
    if "params" in data and type(data["params"]) is not dict:
        return None
    keys = [k for k in data if k != "params"]
    if len(keys) == 1 and keys[0] not in names:
        key = keys[0]
        value = data[key]
        if key in ("inputs", "instances"):
            if type(value) is not dict or not value:
                return None
            arrays = list(value.values())
            if not all(type(a) is list for a in arrays) or len({len(a) for a in arrays}) != 1:
                return None
            return list(value), arrays, len(arrays[0])
        split = split_columns(value) if key == "dataframe_split" else None
    elif "params" not in data and plain_split(data, names):
        split = split_columns(data)
    else:
        return None
    if split is None:
        return None
    columns, rows = split
    arrays = [list(column) for column in zip(*rows, strict=True)] if rows else []
    return columns, arrays, len(rows)


def split_columns(value: Any) -> tuple[list[str], list[Any]] | None:
    """(columns, rows) of a well-formed split body ({"columns": [...], "data": [...]},
    an optional "index" array), else None (the per-record path says what is wrong)."""
    if type(value) is not dict:
        return None
    columns, data, index = value.get("columns"), value.get("data"), value.get("index")
    if len(value) != 2 + ("index" in value) or type(columns) is not list:
        return None
    if type(data) is not list or ("index" in value and type(index) is not list):
        return None
    if not all(type(c) is str for c in columns) or len(set(columns)) != len(columns):
        return None
    width = len(columns)
    if not all(type(row) is list and len(row) == width for row in data):
        return None
    return columns, data


def check_columns(
    names: Sequence[str], arrays: list[list[Any]], sig: Any, reserved: Sequence[str]
) -> Columns | None:
    """The checked columns, or None when the batch must take the per-record path: it has a
    problem to report, a column `reserved` (request ids, passthrough fields) or a type that
    is checked per value."""
    fields = {f.name: f for f in sig.inputs}
    if len(names) != len(fields) or any(n not in fields for n in names):
        return None  # missing or unknown fields: the per-record path names them
    if any(n in reserved for n in names):
        return None
    given = dict(zip(names, arrays, strict=True))
    values: list[list[Any]] = []
    for field in sig.inputs:
        column = _check(field.type, given[field.name])
        if column is None:
            return None
        values.append(column)
    return Columns(tuple(fields), values, len(arrays[0]) if arrays else 0)


def _check(kind: str, column: list[Any]) -> list[Any] | None:
    """`column` as the per-record checkers would return its values, or None (a problem, or
    a type checked per value)."""
    types = set(map(type, column))
    types.discard(_NONE)
    if kind in _FLOATS:
        if not types <= {float, int}:
            return None
        if float in types or kind == "float":
            import numpy as np

            try:
                array = np.array(column, dtype=np.float64)  # null -> NaN
            except (OverflowError, TypeError, ValueError):
                return None
            finite = np.isfinite(array)
            if int(finite.sum()) != len(column) - column.count(None):
                return None  # NaN or an infinity: the per-record path says which
            limit = _FLOATS[kind]
            if limit and float(np.abs(array[finite]).max(initial=0.0)) > limit:
                return None
        if int in types:
            try:
                return [float(v) if v.__class__ is int else v for v in column]
            except OverflowError:
                return None
        return column
    if kind in _INTS:
        if not types <= {int}:
            return None  # 3.0 is accepted as 3 per value, true is refused: per record
        top = _INTS[kind]
        present = [v for v in column if v is not None] if None in column else column
        if present and (min(present) < -top - 1 or max(present) > top):
            return None
        return column
    if kind == "string":
        return column if types <= {str} else None
    if kind == "boolean":
        return column if types <= {bool} else None
    return None
