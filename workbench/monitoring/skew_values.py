"""The served values of a bucket of feature skew's join, as the offline side compares them.

A served row holds its features twice: the typed lists of its version's layout
(drift/log_layout.py: `_n`, `_c`, null for a row not laid out) and the JSON record (`_j`,
null when every compared feature is read from the lists). A feature comes from the lists when
the row is laid out and the layout holds it with the kind compared, else from the JSON
(DuckDB's `json_transform`, to DOUBLE or VARCHAR as the offline column's kind asks).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from workbench.drift.log_layout import CATEGORICAL, NUMERIC

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from workbench.drift.log_layout import Layout
    from workbench.monitoring.skew_join import Feature
    from workbench.store.db import Db


def listed(layout: Layout | None, feature: Feature) -> int | None:
    """The 0-based position of `feature` in the list of its kind, or None (read the JSON)."""
    if layout is None:
        return None
    at = layout.where(feature.name)
    want = NUMERIC if feature.kind == "numeric" else CATEGORICAL
    return at[1] - 1 if at is not None and at[0] == want else None


Codes = tuple["np.ndarray", "pa.Array"]  # int64 codes (-1: null) into a string dictionary


def encode(strings: pa.Array) -> Codes:
    """Strings as dictionary codes: comparing int64 beats comparing or moving strings."""
    import numpy as np

    encoded = strings.dictionary_encode()
    codes = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), np.int64)
    return codes, encoded.dictionary


def served_values(
    db: Db, served: pa.Table, layout: Layout | None, features: Sequence[Feature]
) -> tuple[np.ndarray, Codes]:
    """For the rows of `served` (J of them), feature-major: the numeric features as one
    float64 matrix (features x J, NaN for null) and the categorical ones as codes (features
    x J) into a dictionary of their strings."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from workbench.monitoring.skew_join import floats, texts

    rows = served.num_rows
    numeric = [f for f in features if f.kind == "numeric"]
    categorical = [f for f in features if f.kind != "numeric"]
    lists = served.column("_n").combine_chunks()
    laid = np.flatnonzero(np.asarray(pc.is_valid(lists).to_numpy(zero_copy_only=False)))
    mixed = len(laid) < rows
    decoded = _json(db, served, layout, features, mixed)
    matrix = np.full((len(numeric), rows), np.nan)
    if layout is not None and len(laid) and layout.numeric:
        values = floats((lists.take(pa.array(laid)) if mixed else lists).flatten())
        values = values.reshape(len(laid), len(layout.numeric))
        pick = [(c, at) for c, f in enumerate(numeric) if (at := listed(layout, f)) is not None]
        if pick:
            cols = np.asarray([c for c, _ in pick], dtype=np.int64)
            matrix[np.ix_(cols, laid)] = values[:, [at for _, at in pick]].T
    for c, f in enumerate(numeric):
        if f.name in decoded:
            need = np.ones(rows, dtype=bool)
            if listed(layout, f) is not None:
                need[laid] = False
            matrix[c, need] = floats(decoded[f.name])[need]
    if not categorical:
        return matrix, (np.zeros((0, rows), np.int64), pa.array([], pa.string()))
    width = len(layout.categorical) if layout is not None else 0
    ats = [listed(layout, f) for f in categorical]
    if not mixed and all(at is not None for at in ats):  # every value from the lists
        codes, words = encode(texts(served.column("_c").combine_chunks().flatten()))
        picked = codes.reshape(rows, width)[:, np.asarray(ats, dtype=np.int64)]
        return matrix, (np.ascontiguousarray(picked.T), words)
    cats = served.column("_c").combine_chunks()
    flat_cats = texts(cats.take(pa.array(laid)).flatten()) if len(laid) else None
    parts = []
    for f, at in zip(categorical, ats, strict=True):
        if at is None or flat_cats is None:
            parts.append(texts(decoded[f.name]))
            continue
        from_lists = flat_cats.take(pa.array(np.arange(len(laid)) * width + at))
        # the row's place in [its list value..., its JSON value...]
        order = np.arange(rows) + len(laid)
        order[laid] = np.arange(len(laid))
        both = pa.concat_arrays([from_lists, texts(decoded[f.name])])
        parts.append(both.take(pa.array(order)))
    codes, words = encode(pa.concat_arrays(parts))
    return matrix, (codes.reshape(len(categorical), rows), words)


def _json(
    db: Db, served: pa.Table, layout: Layout | None, features: Sequence[Feature], some: bool
) -> dict[str, pa.Array]:
    """The features read from the JSON: all of them when `some` rows are not laid out,
    else those the layout does not hold with their kind."""
    import pyarrow as pa

    wanted = [f for f in features if some or listed(layout, f) is None]
    if not wanted:
        return {}
    spec = json.dumps({f.name: "DOUBLE" if f.kind == "numeric" else "VARCHAR" for f in wanted})
    cur = db.cursor()
    try:
        cur.register("_skew_served", pa.table({"_j": served.column("_j")}))
        sql = f"SELECT json_transform(_j, '{spec.replace(chr(39), chr(39) * 2)}') FROM _skew_served"
        struct = cur.sql(sql).to_arrow_table().column(0).combine_chunks()
        cur.unregister("_skew_served")
    finally:
        cur.close()
    fields = struct.flatten()  # a null record: null in every field
    return {f.name: fields[i] for i, f in enumerate(wanted)}
