"""The prediction log's entries, row by row and column by column (`prediction_log`'s helpers).

An entry is one request's records (`prediction_log.Entry`). The writer converts entries a
chunk at a time (`chunks`), and a columnar batch's records (`serving.columnar.Columns`) from
its columns: their JSON through orjson from the columns' rows, their typed lists
(`drift.log_layout`) from the columns themselves when their values are of the layout's
kinds, which the per-record path's polars conversion of row dicts (`Layout.encode`) took
~5x longer to make.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from workbench.serving.columnar import Columns

Entry = tuple[Any, ...]
_NONE = type(None)


def one_line(text: object, limit: int = 500) -> str:
    """`text` as one printable ASCII line (any string in, nothing that can fail on output)."""
    try:
        raw = str(text)
    except Exception:  # a __str__ that raises
        raw = object.__repr__(text)
    lines = raw.encode("ascii", "backslashreplace").decode("ascii").splitlines() or [""]
    return lines[0][:limit]


def to_json(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """JSON text of each record: orjson (~0.3 us a record, 5x polars' struct encoding of
    the same records here, and each call short), json for what orjson refuses."""
    fast = orjson.dumps
    out: list[str] = []
    slow = None
    for rec in records:
        try:
            out.append(fast(rec).decode())
        except TypeError:  # an integer over 64 bits, a lone surrogate, ... (JSONEncodeError)
            if slow is None:
                slow = json.JSONEncoder(separators=(",", ":"), default=str).encode
            out.append(slow(rec))
    return out


def json_rows(feats: Columns) -> list[str]:
    """JSON text of each record of a columnar batch (as `to_json` writes a record)."""
    return to_json(feats.rows())


class ColumnsLayout:
    """A `drift.log_layout.Layout` whose `encode` takes records and columnar batches
    (`Columns`) alike, and makes the lists from columns in numpy and Arrow when their values
    are of the layout's kinds (numbers, strings: what checked records hold); else the layout
    converts the records (polars, ~5x slower)."""

    def __init__(self, layout: Any) -> None:
        self.layout = layout

    def encode(self, parts: Sequence[Any]) -> tuple[Any, Any]:
        made = encode_columns(self.layout, parts)
        if made is not None:
            return made
        records = [r for p in parts for r in (p if type(p) is Columns else (p,))]
        return self.layout.encode(records)  # type: ignore[no-any-return]


def encode_columns(layout: Any, parts: Sequence[Any]) -> tuple[Any, Any] | None:
    """`layout.encode` of the records of `parts` (records and `Columns`), from their
    columns: the same two arrays (a non-finite or null number is null, as in the JSON), or
    None when a column holds a value of another kind (the layout converts those records)."""
    import numpy as np
    import pyarrow as pa

    n = sum(len(p) if type(p) is Columns else 1 for p in parts)
    numbers: list[Any] = []
    for name in layout.numeric:
        column = _joined(parts, name)
        if not set(map(type, column)) <= {float, int, _NONE}:
            return None
        try:
            numbers.append(np.array(column, dtype=np.float64))  # null -> NaN
        except (OverflowError, TypeError, ValueError):
            return None
    texts: list[list[Any]] = []
    for name in layout.categorical:
        column = _joined(parts, name)
        if not set(map(type, column)) <= {str, _NONE}:
            return None
        texts.append(column)
    if numbers:
        flat = np.column_stack(numbers).ravel()  # row by row, in the layout's order
        values = pa.array(flat, mask=~np.isfinite(flat))
    else:
        values = pa.array([], pa.float64())
    strings = pa.array([v for row in zip(*texts, strict=True) for v in row], pa.string())
    return _lists(values, len(numbers), n), _lists(strings, len(texts), n)


def _joined(parts: Sequence[Any], name: str) -> list[Any]:
    """Column `name` over `parts` (a record without it, or a batch: null, as polars reads
    records)."""
    column: list[Any] = []
    run: list[Any] = []  # consecutive records, gathered at once
    for part in parts:
        if type(part) is Columns:
            if run:
                column += [r.get(name) for r in run]
                run = []
            column += part.column(name) if name in part.names else [None] * len(part)
        else:
            run.append(part)
    if run:
        column += [r.get(name) for r in run]
    return column


def _lists(values: Any, width: int, rows: int) -> Any:
    """`rows` lists of `width` values each, out of the flat `values`."""
    import numpy as np
    import pyarrow as pa

    offsets = pa.array(np.arange(rows + 1, dtype=np.int32) * np.int32(width))
    return pa.ListArray.from_arrays(offsets, values)


def chunks(entries: list[Entry], rows: int) -> list[list[Entry]]:
    """`entries` in order, in lists of at most `rows` rows; an entry with more is split
    into entries of its records' slices (they share its time, latency and status)."""
    out: list[list[Entry]] = []
    chunk: list[Entry] = []
    size = 0
    for entry in entries:
        n = len(entry[1])
        if n > rows:
            if chunk:
                out.append(chunk)
                chunk, size = [], 0
            for i in range(0, n, rows):
                out.append([slice_entry(entry, i, i + rows)])
            continue
        if size + n > rows and chunk:
            out.append(chunk)
            chunk, size = [], 0
        chunk.append(entry)
        size += n
    if chunk:
        out.append(chunk)
    return out


def slice_entry(entry: Entry, start: int, stop: int) -> Entry:
    ts, ids, model, version, variant, feats, outputs, latency, status, error, *rest = entry
    carried = rest[0] if rest else None
    return (
        ts, ids[start:stop], model, version, variant, feats[start:stop], outputs[start:stop],
        latency, status, error, None if carried is None else carried[start:stop],
    )  # fmt: skip


def rows_of(entry: Entry) -> list[dict[str, Any]]:
    ts, ids, model, version, variant, feats, outputs, latency, status, error, *_ = entry
    shared = {"model": model, "version": version, "variant": variant, "latency_ms": latency}
    shared.update(status=status, error=error)
    rows = [
        {"ts": ts.isoformat(), "request_id": rid, **shared, "features": feat, "output": out}
        for rid, feat, out in zip(ids, feats, outputs, strict=False)
    ]
    carried = carried_of(entry)
    if carried is not None:
        for row, fields in zip(rows, carried, strict=False):
            row["passthrough"] = fields
    return rows


def carried_of(entry: Entry) -> Sequence[Mapping[str, Any] | None] | None:
    """The passthrough fields of an entry's records (None: no record carried any)."""
    return entry[10] if len(entry) > 10 else None


def passthrough_column(entries: list[Entry]) -> list[str | None]:
    """The `passthrough` column: per row, the JSON of the fields its record carried."""
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    column: list[str | None] = []
    for entry in entries:
        carried = carried_of(entry)
        if carried is None:
            column += [None] * len(entry[1])
        else:
            column += [None if fields is None else dumps(fields) for fields in carried]
    return column


def safe_json(row: dict[str, Any]) -> str:
    """One JSON line, pure ASCII (lone surrogates and control characters escaped); a row
    json cannot encode at all (nested too deeply, say) keeps its strings as ascii()."""
    try:
        return json.dumps(row, ensure_ascii=True, default=repr)
    except Exception as exc:
        why = one_line(f"{type(exc).__name__}: {exc}")
    fallback: dict[str, Any] = {}
    for key, value in row.items():
        try:
            plain = value is None or isinstance(value, int | float)
            fallback[key] = value if plain else ascii(value)[:10_000]
        except Exception:  # ascii() of a structure nested too deeply
            fallback[key] = f"<{type(value).__name__}: cannot be encoded>"
    fallback["unencodable"] = why
    return json.dumps(fallback, ensure_ascii=True, allow_nan=True)
