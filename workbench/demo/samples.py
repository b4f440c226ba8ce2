"""Sample projects: `workbench init DIR --sample NAME` copies one and generates its data."""

from __future__ import annotations

import importlib
import shutil
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl

from workbench.config import CONFIG_FILE, Config
from workbench.errors import UsageError
from workbench.names import check_name

PACKAGE = "workbench_samples"


def available() -> list[str]:
    root = resources.files(PACKAGE)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / CONFIG_FILE).is_file())


def init(target: Path, sample: str, rows: int = 50_000, seed: int = 7, force: bool = False) -> Path:
    """Create a project in `target` from `sample`, with freshly generated data."""
    if rows < 500:
        raise UsageError(f"--rows {rows}: too few rows to train and evaluate (use 500 or more)")
    check_name(sample, "--sample")
    if sample not in available():
        raise UsageError(f"--sample {sample}: no such sample (available: {', '.join(available())})")
    target = target.expanduser().resolve()
    if (target / CONFIG_FILE).exists() and not force:
        raise UsageError(f"{target / CONFIG_FILE} already exists (use --force to overwrite)")
    target.mkdir(parents=True, exist_ok=True)
    src = resources.files(PACKAGE) / sample
    for name in (CONFIG_FILE, "README.md", "generate.py"):
        item = src / name
        if item.is_file():
            with resources.as_file(item) as path:
                shutil.copyfile(path, target / name)
    generator = load_generator(sample)
    from workbench.config import load_config

    cfg = load_config(target / CONFIG_FILE)
    out = target / cfg.data.path
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = generator.generate(n_rows=rows, seed=seed)
    tmp = out.with_name(f".{out.name}.tmp")
    frame.write_parquet(tmp)
    tmp.replace(out)
    (target / ".gitignore").write_text(".workbench/\n")
    return target


def load_generator(sample: str) -> ModuleType:
    """The sample's `generate` module: `generate(n_rows, seed, start, days, drift)` gives a
    polars frame, the same for the same arguments; `DRIFT_STORY` (optional) says in a few
    words how its drift batch's world moved on."""
    check_name(sample, "--sample")
    if sample not in available():
        raise UsageError(f"--sample {sample}: no such sample (available: {', '.join(available())})")
    return importlib.import_module(f"{PACKAGE}.{sample}.generate")


def drift_story(generator: ModuleType) -> str:
    return str(getattr(generator, "DRIFT_STORY", "") or "")


def new_values(config: Config, frame: pl.DataFrame) -> dict[str, list[Any]]:
    """Per column with an `allowed` list in the schema, the values of `frame` it lacks (what a
    drift batch brings that validation would refuse), in order of first appearance."""
    found: dict[str, list[Any]] = {}
    for name, spec in config.schema_.items():
        if spec.allowed is None or name not in frame.columns:
            continue
        seen = frame[name].drop_nulls().cast(pl.String).unique(maintain_order=True).to_list()
        extra = [v for v in seen if v not in spec.allowed]
        if extra:
            found[name] = extra
    return found
