"""Projects made from scikit-learn's bundled datasets (no download): breast cancer (binary,
column names with spaces), wine (multiclass), diabetes (regression)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

DATASETS = {"binary": "breast_cancer", "multiclass": "wine", "regression": "diabetes"}


def frame(task: str) -> pl.DataFrame:
    from sklearn import datasets

    loader = getattr(datasets, f"load_{DATASETS[task]}")
    return pl.from_pandas(loader(as_frame=True).frame)


def write_project(
    root: Path, task: str, df: pl.DataFrame | None = None, extra: str = "", trainer: str = ""
) -> Path:
    """A project folder whose workbench.toml declares every column of the dataset."""
    df = frame(task) if df is None else df
    (root / "data").mkdir(parents=True, exist_ok=True)
    df.write_parquet(root / "data" / "data.parquet")
    lines = [
        "[project]",
        f'name = "{DATASETS[task]}"',
        "[data]",
        'path = "data/data.parquet"',
        'target = "target"',
        'split = "random"',
        "[task]",
        f'type = "{task}"',
        "[validation]",
        "min_rows = 10",
        "max_outlier_fraction = 1.0",
        trainer or "[trainer.params]\nnum_iterations = 25",
        extra,
    ]
    for name, dtype in df.schema.items():
        kind = "int" if dtype.is_integer() else "float" if dtype.is_numeric() else "str"
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        lines += [f'[schema."{quoted}"]', f'type = "{kind}"']
    (root / "workbench.toml").write_text("\n".join(lines) + "\n")
    return root
