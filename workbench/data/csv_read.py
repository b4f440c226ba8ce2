"""Reading messy text columns: a CSV is read as text (the usual NA spellings as missing), then
each column is parsed to its declared [schema] type, or to the type its values show (int,
float, bool words, dates in several formats) when nothing is declared.

A column whose values do not all parse stays text, so `validate` can name the bad values of
that one column instead of the whole read failing. Every statistic is a polars expression:
one `select` decides every column's type, one `with_columns` converts them.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

#: What a CSV cell spells for "no value" (read as null, in every column).
NA_VALUES = ["", "NA", "N/A", "n/a", "na", "NaN", "nan", "null", "NULL", "Null", "None", "-"]
NA_VALUES += ["#N/A", "?", "--"]

TRUE_WORDS = ("true", "t", "yes", "y")
FALSE_WORDS = ("false", "f", "no", "n")

_DATE_ISO = ["%Y-%m-%d", "%Y/%m/%d"]
_TIME_ISO = [
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
]
_DAY_FIRST = ["%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%d %b %Y", "%d %B %Y", "%d/%m/%Y %H:%M"]
_DAY_FIRST += ["%d/%m/%Y %H:%M:%S"]
_MONTH_FIRST = ["%m/%d/%Y", "%b %d, %Y", "%B %d, %Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S"]
DATE_FORMATS = [*_DATE_ISO, *_TIME_ISO, *_DAY_FIRST, *_MONTH_FIRST]
_DATE_ONLY = {*_DATE_ISO, "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%d %b %Y", "%d %B %Y"}
_DATE_ONLY |= {"%m/%d/%Y", "%b %d, %Y", "%B %d, %Y"}
_SAMPLE = 2_000  # values per column tried against every date format
_MOSTLY = 0.9  # a column this much numbers (or dates) but not all: a note naming the rest
TEXT_KINDS = ("str", "category")


# ---------------------------------------------------------------- parsing expressions


def as_int(e: pl.Expr) -> pl.Expr:
    """Integers; '3.0' counts (an integral float), '3.5' and 'abc' are null."""
    text = e.str.strip_chars()
    exact = text.cast(pl.Int64, strict=False)
    num = text.cast(pl.Float64, strict=False)
    integral = pl.when(num.is_finite() & (num == num.round(0)) & (num.abs() < 2**53)).then(num)
    return pl.coalesce(exact, integral.cast(pl.Int64, strict=False))


def as_float(e: pl.Expr) -> pl.Expr:
    return e.str.strip_chars().cast(pl.Float64, strict=False)


def as_bool(e: pl.Expr) -> pl.Expr:
    """true/false, yes/no, y/n, t/f (any case) and 0/1."""
    word = e.str.strip_chars().str.to_lowercase()
    return (
        pl.when(word.is_in([*TRUE_WORDS, "1"]))
        .then(pl.lit(True))
        .when(word.is_in([*FALSE_WORDS, "0"]))
        .then(pl.lit(False))
        .otherwise(pl.lit(None, dtype=pl.Boolean))
    )


def as_datetime(e: pl.Expr, formats: Sequence[str] = DATE_FORMATS) -> pl.Expr:
    """The first of `formats` each value parses with; Date when every format is date-only."""
    text = e.str.strip_chars()
    parsed = [text.str.strptime(pl.Datetime("us"), f, strict=False) for f in formats]
    out = pl.coalesce(parsed) if len(parsed) > 1 else parsed[0]
    return out.dt.date() if formats and set(formats) <= _DATE_ONLY else out


def unparsed(name: str, kind: str) -> pl.Expr:
    """True where text column `name` holds a value that is not a valid `kind`."""
    col = pl.col(name).cast(pl.String)
    if kind in TEXT_KINDS:
        return pl.lit(False)
    return col.is_not_null() & _parse(col, kind).is_null()


def _fits(e: pl.Expr, kind: str) -> pl.Expr:
    """How many values of text column `e` read as `kind`: the counts of `_parse`, cheaper
    (integers from the one float cast; bool words by membership)."""
    if kind == "int":
        num = as_float(e)
        return (num.is_finite() & (num == num.round(0)) & (num.abs() < 2**53)).sum()
    if kind == "bool":
        words = [*TRUE_WORDS, *FALSE_WORDS, "0", "1"]
        return e.str.strip_chars().str.to_lowercase().is_in(words).sum()
    return _parse(e, kind).count()


def _parse(e: pl.Expr, kind: str) -> pl.Expr:
    if kind == "int":
        return as_int(e)
    if kind == "float":
        return as_float(e)
    if kind == "bool":
        return as_bool(e)
    if kind == "datetime":
        return as_datetime(e)
    return e


KIND_WORDS = {"int": "integers", "float": "numbers", "bool": "true/false", "datetime": "dates"}


# ---------------------------------------------------------------- reading


@dataclass
class TextFrame:
    """A frame whose text columns were parsed, and one line per column worth a warning."""

    frame: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def read_text(files: Sequence[Path], separator: str) -> pl.DataFrame:
    """Every column as text, the NA spellings as null (raises polars errors)."""
    frames = [
        pl.read_csv(
            f,
            separator=separator,
            infer_schema=False,
            null_values=NA_VALUES,
            encoding="utf8-lossy",
            truncate_ragged_lines=True,
        )
        for f in files
    ]
    frames = [_header_names(f, frame, separator) for f, frame in zip(files, frames, strict=True)]
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")


def _header_names(path: Path, frame: pl.DataFrame, separator: str) -> pl.DataFrame:
    """The header as the csv module reads it: polars keeps the doubled quotes of a quoted
    name, which would then not match the name as the user writes it."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
            names = next(csv.reader(fh, delimiter=separator), [])
    except OSError:
        return frame
    if names == frame.columns or len(names) != frame.width or len(set(names)) != len(names):
        return frame
    return frame.rename(dict(zip(frame.columns, names, strict=True)))


def parse_columns(
    frame: pl.DataFrame, declared: Mapping[str, str] | None = None, *, infer: bool = True
) -> TextFrame:
    """Parse the text columns of `frame`: a declared kind when `declared` names the column,
    else (with `infer`) the kind every value fits. A column that does not fit stays text."""
    declared = declared or {}
    text_cols = [c for c, t in frame.schema.items() if t == pl.String]
    todo = {c: declared.get(c) for c in text_cols if declared.get(c) or infer}
    todo = {c: k for c, k in todo.items() if k not in TEXT_KINDS}
    if not todo:
        return TextFrame(frame)
    exprs: list[pl.Expr] = []
    for i, (name, kind) in enumerate(todo.items()):
        col = pl.col(name)
        exprs.append(col.count().alias(f"n{i}"))
        kinds = [kind] if kind and kind != "datetime" else ([] if kind else ["int", "float"])
        if not kind:
            exprs.append(col.str.contains(r"^\s*[+-]?0\d").any().alias(f"lead{i}"))
            kinds.append("bool")
        for k in kinds:
            exprs.append(_fits(col, k).alias(f"{k}{i}"))
    stats = frame.select(exprs).row(0, named=True)
    converted: list[pl.Expr] = []
    notes: list[str] = []
    for i, (name, kind) in enumerate(todo.items()):
        present = int(stats[f"n{i}"])
        expr = _decide(frame, name, kind, i, present, stats, notes)
        if expr is not None:
            converted.append(expr.alias(name))
    out = frame.with_columns(converted) if converted else frame
    return TextFrame(out, notes)


def _decide(
    frame: pl.DataFrame,
    name: str,
    kind: str | None,
    i: int,
    present: int,
    stats: dict[str, Any],
    notes: list[str],
) -> pl.Expr | None:
    """The expression converting text column `name`, or None to keep it as text."""
    col = pl.col(name)
    if present == 0:  # all missing: the declared type, or left as it is
        return _parse(col, kind) if kind else None
    if kind == "datetime" or (not kind and _not_numeric(stats, i, present)):
        formats = date_formats(frame[name])
        if formats:
            ok = int(frame.select(as_datetime(col, formats).count()).item())
            if ok == present:
                return as_datetime(col, formats)
            if ok >= _MOSTLY * present:
                _mostly(frame, name, "datetime", ok, present, notes, formats)
                return None
        if kind:
            return None
    if kind:
        return _parse(col, kind) if stats[f"{kind}{i}"] == present else None
    if stats[f"lead{i}"]:
        notes.append(f"column {name!r}: numbers with leading zeros (codes): read as text")
        return None
    for k in ("int", "float", "bool"):
        if stats[f"{k}{i}"] == present:
            return _parse(col, k)
    _mostly(frame, name, "float", int(stats[f"float{i}"]), present, notes)
    return None


def _not_numeric(stats: dict[str, Any], i: int, present: int) -> bool:
    return all(stats[f"{k}{i}"] != present for k in ("int", "float", "bool"))


def _mostly(
    frame: pl.DataFrame,
    name: str,
    kind: str,
    ok: int,
    present: int,
    notes: list[str],
    formats: Sequence[str] = DATE_FORMATS,
) -> None:
    """A note when a column is nearly all `kind`: the values that are not, to clean."""
    if ok < _MOSTLY * present:
        return
    col = pl.col(name)
    parsed = as_datetime(col, formats) if kind == "datetime" else _parse(col, kind)
    bad = frame.select(col.filter(col.is_not_null() & parsed.is_null()).unique().sort().head(3))
    shown = ", ".join(repr(v) for v in bad[name].to_list())
    notes.append(
        f"column {name!r}: {present - ok:,} of {present:,} values are not {KIND_WORDS[kind]} "
        f"({shown}): read as text; fix them or make them empty"
    )


def date_formats(series: pl.Series) -> list[str]:
    """The date formats a sample of `series` uses, in the order to try them: ISO first, then
    day-first or month-first (whichever fits more of the sample)."""
    sample = series.drop_nulls().head(_SAMPLE).str.strip_chars()
    if sample.is_empty():
        return []
    frame = sample.to_frame("v")
    counts = frame.select(
        pl.col("v").str.strptime(pl.Datetime("us"), f, strict=False).count().alias(f)
        for f in DATE_FORMATS
    ).row(0, named=True)
    used = [f for f in DATE_FORMATS if counts[f]]
    day = sum(int(counts[f]) for f in _DAY_FIRST)
    month = sum(int(counts[f]) for f in _MONTH_FIRST)
    first, second = (_DAY_FIRST, _MONTH_FIRST) if day >= month else (_MONTH_FIRST, _DAY_FIRST)
    order = [*_DATE_ISO, *_TIME_ISO, *first, *second]
    return [f for f in order if f in used]
