"""Projects made from scikit-learn's bundled datasets (no download, hundreds of rows): breast
cancer (binary, column names with spaces), wine (multiclass), diabetes (regression); their
holdout as Workbench splits it, and a server on loopback."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl

from tests.helpers import free_port
from workbench.data import snapshot as data_mod
from workbench.data import target as target_mod
from workbench.project import Project

DATASETS = {"binary": "breast_cancer", "multiclass": "wine", "regression": "diabetes"}
#: what `write_project` puts after `[validation] min_rows = 10` unless told otherwise
FAST = "max_outlier_fraction = 1.0\n[trainer.params]\nnum_iterations = 25"


def frame(task: str) -> pl.DataFrame:
    from sklearn import datasets

    loader = getattr(datasets, f"load_{DATASETS[task]}")
    return pl.from_pandas(loader(as_frame=True).frame)


def write_project(
    root: Path,
    task: str,
    df: pl.DataFrame | None = None,
    *,
    name: str | None = None,
    task_keys: str = "",
    settings: str = FAST,
) -> Path:
    """A project folder whose workbench.toml declares every column of the dataset (default:
    the task's); `task_keys` are more lines of `[task]`, `settings` the lines after
    `[validation] min_rows = 10` (more validation keys, then further tables)."""
    df = frame(task) if df is None else df
    (root / "data").mkdir(parents=True, exist_ok=True)
    df.write_parquet(root / "data" / "data.parquet")
    lines = [
        "[project]",
        f'name = "{name or DATASETS[task]}"',
        "[data]",
        'path = "data/data.parquet"',
        'target = "target"',
        'split = "random"',
        "[task]",
        f'type = "{task}"',
        task_keys,
        "[validation]",
        "min_rows = 10",
        settings,
    ]
    for column, dtype in df.schema.items():
        kind = "int" if dtype.is_integer() else "float" if dtype.is_numeric() else "str"
        quoted = column.replace("\\", "\\\\").replace('"', '\\"')
        lines += [f'[schema."{quoted}"]', f'type = "{kind}"']
    (root / "workbench.toml").write_text("\n".join(lines) + "\n")
    return root


def labelled_project(root: Path, dataset: str, trainer: str = "") -> Project:
    """`cancer` (binary, labels "benign"/"malignant", positive "malignant") or `diabetes`
    (regression), named after `dataset`, with the `trainer` lines (default: none)."""
    if dataset == "cancer":
        labels = {0: "malignant", 1: "benign"}
        df = frame("binary").with_columns(pl.col("target").replace_strict(labels))
        path = write_project(
            root, "binary", df, name=dataset, task_keys='positive_class = "malignant"',
            settings=trainer,
        )  # fmt: skip
    else:
        path = write_project(root, "regression", name=dataset, settings=trainer)
    return Project.load(path)


def holdout(project: Project) -> tuple[pd.DataFrame, pd.Series]:
    """The project's holdout features (pandas) and raw target, as Workbench splits them."""
    cfg = project.config
    frame = data_mod.load_frame(project.data_path)
    classes = target_mod.classes_of(frame, cfg)
    index = data_mod.split(frame.with_row_index("__row"), cfg).holdout["__row"].to_list()
    rows = frame[index]
    assert data_mod.split(target_mod.encode(frame, cfg, classes), cfg).holdout.height == len(rows)
    return data_mod.to_model_frame(rows, cfg), rows[cfg.data.target].to_pandas()


def call(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={"content-type": "application/json"})
        resp = conn.getresponse()
        text = resp.read()
    finally:
        conn.close()
    return resp.status, json.loads(text) if text.startswith(b"{") else text.decode()


@contextmanager
def serving(project: Project, timeout: float = 120) -> Iterator[int]:
    """`workbench serve` on a free loopback port (a local process); yields the port."""
    port = free_port()
    cmd = [sys.executable, "-m", "workbench", "serve", "--project", str(project.root)]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--runner", "local"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise AssertionError(f"the server exited: {out}")
            try:
                if call(port, "GET", "/ready")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the server was not ready in time")
            time.sleep(0.2)
        yield port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
