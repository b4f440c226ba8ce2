"""Small projects from scikit-learn's bundled datasets (real data, hundreds of rows), their
holdout as Workbench splits it, and a server on loopback: shared by the script trainer's and
`workbench register`'s tests."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl

from workbench.data import snapshot as data_mod
from workbench.data import target as target_mod
from workbench.project import Project


def write_project(root: Path, dataset: str, trainer: str = "") -> Project:
    """`cancer` (binary, labels "benign"/"malignant") or `diabetes` (regression): the data as
    Parquet with its column names (spaces and all), a workbench.toml declaring each column."""
    from sklearn import datasets

    if dataset == "cancer":
        frame = datasets.load_breast_cancer(as_frame=True).frame
        frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
        task = '[task]\ntype = "binary"\npositive_class = "malignant"\n'
    else:
        frame = datasets.load_diabetes(as_frame=True).frame
        task = '[task]\ntype = "regression"\n'
    (root / "data").mkdir(parents=True, exist_ok=True)
    pl.from_pandas(frame).write_parquet(root / "data" / "data.parquet")
    kinds = {c: "float" if pd.api.types.is_numeric_dtype(frame[c]) else "str" for c in frame}
    schema = "".join(f'[schema."{c}"]\ntype = "{kind}"\n' for c, kind in kinds.items())
    (root / "workbench.toml").write_text(
        f'[project]\nname = "{dataset}"\n[data]\npath = "data/data.parquet"\ntarget = "target"\n'
        f'split = "random"\n{task}[validation]\nmin_rows = 10\n{trainer}{schema}'
    )
    return Project.load(root)


def holdout(project: Project) -> tuple[pd.DataFrame, pd.Series]:
    """The project's holdout features (pandas) and raw target, as Workbench splits them."""
    cfg = project.config
    frame = data_mod.load_frame(project.data_path)
    classes = target_mod.classes_of(frame, cfg)
    index = data_mod.split(frame.with_row_index("__row"), cfg).holdout["__row"].to_list()
    rows = frame[index]
    assert data_mod.split(target_mod.encode(frame, cfg, classes), cfg).holdout.height == len(rows)
    return data_mod.to_model_frame(rows, cfg), rows[cfg.data.target].to_pandas()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
