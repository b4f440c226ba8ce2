"""The prediction log's typed feature lists: the columnar twin of its JSON `features`.

At 1,000 features a record's JSON is ~23 kB, and decoding it back into typed columns (DuckDB's
`json_transform`, the fastest of the three decoders `benchmarks/drift.py` measures) cost
270-520 s per million rows here: drift and skew on wide traffic could not be checked in a
minute. So the writer also logs, for every answered record of a version with a reference
profile, two lists in that profile's order (`Layout`): `numeric` (list<float64>) and
`categorical` (list<string>). A reader takes a list column as flat Arrow buffers and cuts them
into the profile's columns (~25 s per million rows at 1,000 features, most of it Parquet
decoding). The JSON stays the record of what was sent (the Logs screen, SQL, lineage); the
lists are only an index for monitoring, and rows without them (older files, a version with
no profile) are read from the JSON as before.

Values are converted as polars converts records (`strict=False`): a numeric feature sent as a
string of digits reads as its number, true as 1.0, anything else as null; a categorical one
sent as a number reads as its text ("3", and 1.0 as "1"); NaN and infinities are null, as in
the JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from workbench.drift.profile import ReferenceProfile

NUMERIC = "numeric"
CATEGORICAL = "categorical"
LAID_OUT = "laid_out"  # true for a row whose lists are laid out, else null (never false)


@dataclass(frozen=True)
class Layout:
    """Which feature sits at which position of the two lists (the profile's order)."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @classmethod
    def of(cls, profile: ReferenceProfile) -> Layout:
        feats = profile.features.values()
        return cls(
            tuple(f.name for f in feats if f.kind != "categorical"),
            tuple(f.name for f in feats if f.kind == "categorical"),
        )

    @classmethod
    def load(cls, model_dir: Path) -> Layout | None:
        """The layout of the version in `model_dir` (None: it has no reference profile)."""
        from workbench.drift import PROFILE_FILE
        from workbench.drift.profile import ReferenceProfile

        path = Path(model_dir) / PROFILE_FILE
        if not path.exists():
            return None
        return cls.of(ReferenceProfile.load(path))

    def typed(self, alias: str = "") -> str:
        """SQL: true for a row whose lists hold this layout (laid out, the right lengths)."""
        p = f"{alias}." if alias else ""
        return (
            f"({p}{LAID_OUT} AND len({p}{NUMERIC}) = {len(self.numeric)} "
            f"AND len({p}{CATEGORICAL}) = {len(self.categorical)})"
        )

    def where(self, name: str) -> tuple[str, int] | None:
        """(list column, 1-based SQL index) of feature `name`, or None when not laid out."""
        if name in self.numeric:
            return NUMERIC, self.numeric.index(name) + 1
        if name in self.categorical:
            return CATEGORICAL, self.categorical.index(name) + 1
        return None

    # -- writing ---------------------------------------------------------------------------

    def encode(self, records: Sequence[Mapping[str, Any]]) -> tuple[pa.Array, pa.Array]:
        """The two list arrays of `records` (one entry each), in one polars pass."""
        import polars as pl
        import pyarrow as pa

        schema: dict[str, Any] = {n: pl.Float64 for n in self.numeric}
        schema.update({n: pl.Utf8 for n in self.categorical})
        frame = pl.DataFrame(list(records), schema=schema, strict=False)
        if self.numeric:  # as the JSON logs them: a non-finite number is null
            frame = frame.with_columns(
                pl.when(pl.col(n).is_finite()).then(pl.col(n)).alias(n) for n in self.numeric
            )
        return (
            _lists(frame, self.numeric, pa.float64()),
            _lists(frame, self.categorical, pa.string()),
        )

    # -- reading ---------------------------------------------------------------------------

    def decode(self, numeric: Any, categorical: Any, names: Sequence[str]) -> pa.RecordBatch:
        """The features `names` as columns, cut out of the two list arrays of a batch whose
        rows were all laid out so: one reshape of the flat values per list (numbers as
        float64 with their nulls, categories dictionary-encoded). Raises DataError when a
        row's lists do not have this layout's lengths."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        rows = len(numeric)
        wanted = set(names)
        cols: dict[str, Any] = {}
        for kind, listed, array in (
            (NUMERIC, self.numeric, numeric),
            (CATEGORICAL, self.categorical, categorical),
        ):
            if not listed or not wanted.intersection(listed):
                continue
            width = len(listed)
            lengths = pc.list_value_length(array)
            if lengths.null_count or pc.min_max(lengths).as_py() != {"min": width, "max": width}:
                from workbench.errors import DataError

                raise DataError(
                    f"prediction log: typed {kind} features of {rows} row(s) do not hold the "
                    f"{width} of their version's profile (written with another profile?)"
                )
            flat = _flat(array)
            if kind == NUMERIC:  # nulls read as NaN; the writer never stores NaN itself
                values = _columns(_floats(flat).reshape(rows, width))
                nulls = flat.null_count > 0
                for k, name in enumerate(listed):
                    if name in wanted:
                        cols[name] = pa.array(values[k], from_pandas=nulls)
            else:
                encoded = flat.dictionary_encode()
                codes = encoded.indices
                has_null = codes.null_count > 0
                index = codes.fill_null(-1) if has_null else codes
                matrix = np.asarray(index.to_numpy(zero_copy_only=False))
                matrix = _columns(matrix.reshape(rows, width))
                for k, name in enumerate(listed):
                    if name in wanted:
                        column = matrix[k]
                        mask = column < 0 if has_null else None
                        cols[name] = pa.DictionaryArray.from_arrays(
                            pa.array(column, mask=mask), encoded.dictionary
                        )
        missing = [n for n in names if n not in cols]
        if missing:
            raise KeyError(missing[0])
        return pa.RecordBatch.from_arrays([cols[n] for n in names], names=list(names))


def columns(
    groups: Iterable[tuple[Layout, list[int], list[Mapping[str, Any]]]],
    total: int,
    errors: tuple[type[BaseException], ...] = (Exception,),
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """The log's `numeric`, `categorical` and `laid_out` columns for `total` rows: each group
    (a layout, the rows' positions, their records) encoded in one pass; every other row (and
    a group that cannot be encoded: `errors`) null."""
    import numpy as np
    import pyarrow as pa

    kinds = pa.list_(pa.float64()), pa.list_(pa.string())
    parts: tuple[list[Any], list[Any]] = ([], [])
    placed: list[int] = []
    for layout, where, records in groups:
        try:
            num, cat = layout.encode(records)
        except errors:  # an index only: the JSON still holds the records
            continue
        parts[0].append(num)
        parts[1].append(cat)
        placed += where
    if not placed:
        return pa.nulls(total, kinds[0]), pa.nulls(total, kinds[1]), pa.nulls(total, pa.bool_())
    order = np.full(total, len(placed), dtype=np.int64)  # the null at the end
    at = np.asarray(placed, dtype=np.int64)
    order[at] = np.arange(len(placed))
    take = pa.array(order)
    num, cat = (
        pa.concat_arrays([*p, pa.nulls(1, kind)]).take(take)
        for p, kind in zip(parts, kinds, strict=True)
    )
    laid = np.zeros(total, dtype=bool)
    laid[at] = True
    return num, cat, pa.array(np.ones(total, dtype=bool), mask=~laid)


def _lists(frame: Any, names: Sequence[str], kind: pa.DataType) -> pa.Array:
    """One list per row of `frame`'s columns `names` (empty lists when there are none)."""
    import numpy as np
    import polars as pl
    import pyarrow as pa

    if not names:
        offsets = pa.array(np.zeros(frame.height + 1, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, pa.array([], kind))
    arrow = frame.select(pl.concat_list([pl.col(n) for n in names]).alias("v")).to_arrow()
    column = arrow.column(0).combine_chunks()
    return column.cast(pa.list_(kind))


def _columns(matrix: Any, block: int = 64) -> Any:
    """`matrix` (rows x features) transposed into contiguous rows, a block of features at a
    time: 3.5x faster than `matrix.T.copy()` here (each row read gives 64 values)."""
    import numpy as np

    out = np.empty((matrix.shape[1], matrix.shape[0]), dtype=matrix.dtype)
    for j in range(0, matrix.shape[1], block):
        out[j : j + block] = matrix[:, j : j + block].T
    return out


def _floats(flat: Any) -> Any:
    """A float64 array's values as numpy, without a copy when it has no nulls."""
    import numpy as np

    if flat.null_count == 0:
        return np.frombuffer(flat.buffers()[1], np.float64, len(flat), flat.offset * 8)
    return flat.to_numpy(zero_copy_only=False)


def _flat(array: Any) -> pa.Array:
    """The values of a list array (respecting its offsets and slicing), as one array."""
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.flatten()
