"""The runs table over team stores, for startup.py: N runs seeded into a fresh PostgreSQL
database (MLflow makes the tables, the rows go straight into them) and into a dedicated
experiment of the shared tracking server's database, read through SqlReader and RestReader
(first full read, incremental re-reads) beside `mlflow.search_runs` on the same store."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from _runs_store import build_rows

TABLES = {
    "runs": "run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
    "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id",
    "latest_metrics": "key, value, timestamp, step, is_nan, run_uuid",
    "metrics": "key, value, timestamp, run_uuid, step, is_nan",
    "params": "key, value, run_uuid",
    "tags": "key, value, run_uuid",
}
NAN_COLUMN = {"latest_metrics": 4, "metrics": 5}  # is_nan is a boolean in PostgreSQL

MAKE_STORE = r"""
import sys, mlflow
client = mlflow.MlflowClient(tracking_uri=sys.argv[1])
print(client.create_experiment(sys.argv[2], artifact_location=sys.argv[3]))
"""

SEARCH = r"""
import sys, time, json
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
t = time.perf_counter()
df = mlflow.search_runs(search_all_experiments=True, max_results=100000)
print(json.dumps({"seconds": time.perf_counter() - t, "rows": len(df)}))
"""


def _pg(url: str) -> Any:
    import psycopg2

    return psycopg2.connect(url.replace("postgresql+psycopg2", "postgresql"))


def seed(url: str, exp_id: int, art: str, n_runs: int) -> list[str]:
    """Insert N runs into experiment `exp_id` of the store at `url`; their ids."""
    from psycopg2.extras import execute_values

    tables = build_rows(n_runs, exp_id, art, seed=random.randrange(1 << 30))
    con = _pg(url)
    with con, con.cursor() as cur:
        for (table, columns), rows in zip(TABLES.items(), tables, strict=True):
            if table in NAN_COLUMN:
                col = NAN_COLUMN[table]
                rows = [(*r[:col], bool(r[col]), *r[col + 1 :]) for r in rows]
            execute_values(cur, f"INSERT INTO {table} ({columns}) VALUES %s", rows, page_size=5000)
    con.close()
    return [r[0] for r in tables[0]]


def touch(url: str, run_ids: list[str]) -> None:
    """End `run_ids` now (what a finished training does to its run)."""
    con = _pg(url)
    with con, con.cursor() as cur:
        cur.execute(
            "UPDATE runs SET end_time = %s WHERE run_uuid = ANY(%s)",
            (int(time.time() * 1000), run_ids),
        )
    con.close()


@contextmanager
def postgres_store(base: str, n_runs: int) -> Iterator[str]:
    """A fresh database with MLflow's tables and N runs; dropped afterwards."""
    name = f"wbbench_{uuid.uuid4().hex[:10]}"
    admin = _pg(f"{base}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = f"{base}/{name}"
    try:
        out = subprocess.run(
            [sys.executable, "-c", MAKE_STORE, url, "bench", "file:///tmp/wbbench-artifacts"],
            capture_output=True,
            text=True,
            check=True,
        )
        seed(url, int(out.stdout.strip().splitlines()[-1]), "file:///tmp/wbbench-artifacts", n_runs)
        yield url
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextmanager
def server_experiment(server: str, db_url: str, n_runs: int) -> Iterator[list[str]]:
    """A dedicated experiment on the tracking server with N runs (inserted into its database);
    the runs are removed and the experiment deleted afterwards."""
    import requests

    auth = (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"])
    api = f"{server}/api/2.0/mlflow"
    name = f"wbbench-{uuid.uuid4().hex[:10]}"
    resp = requests.post(f"{api}/experiments/create", json={"name": name}, auth=auth, timeout=60)
    resp.raise_for_status()
    exp_id = resp.json()["experiment_id"]
    exp = requests.get(
        f"{api}/experiments/get", params={"experiment_id": exp_id}, auth=auth, timeout=60
    ).json()["experiment"]
    try:
        yield seed(db_url, int(exp_id), exp["artifact_location"], n_runs)
    finally:
        con = _pg(db_url)
        with con, con.cursor() as cur:
            ids = "SELECT run_uuid FROM runs WHERE experiment_id = %s"
            for table in ("latest_metrics", "metrics", "params", "tags"):
                cur.execute(f"DELETE FROM {table} WHERE run_uuid IN ({ids})", (int(exp_id),))
            cur.execute("DELETE FROM runs WHERE experiment_id = %s", (int(exp_id),))
        con.close()
        requests.post(f"{api}/experiments/delete", json={"experiment_id": exp_id}, auth=auth)


def search_runs_s(uri: str) -> tuple[float, int]:
    """`mlflow.search_runs` over every experiment of the store at `uri`: seconds, rows."""
    out = subprocess.run(
        [sys.executable, "-c", SEARCH, uri], capture_output=True, text=True, check=True
    )
    s = json.loads(out.stdout.strip().splitlines()[-1])
    return float(s["seconds"]), int(s["rows"])


def reads(
    make: Callable[[], Any], url: str, run_ids: list[str], label: str, anchor_s: float
) -> None:
    """Print the first full read, the incremental re-reads (nothing changed, 10 changed) and
    `mlflow.search_runs` over the same store."""
    reader = make()
    started = int(time.time() * 1000)
    t = time.perf_counter()
    runs = reader.read_runs()
    full_s = time.perf_counter() - t
    t = time.perf_counter()
    same = reader.read_runs(since_ms=started)
    none_s = time.perf_counter() - t
    touched_at = int(time.time() * 1000)
    touch(url, run_ids[:10])
    t = time.perf_counter()
    changed = reader.read_runs(since_ms=touched_at)
    ten_s = time.perf_counter() - t
    search_s, rows = search_runs_s(reader.base if hasattr(reader, "base") else reader.url)
    print(
        f"runs table over {label}: first full read {len(runs):,} runs in {full_s:.2f} s; "
        f"incremental re-read, nothing changed: {none_s:.3f} s ({len(same)} runs), "
        f"10 changed: {ten_s:.3f} s ({len(changed)} runs)"
    )
    print(
        f"mlflow.search_runs over the same {rows:,} runs ({label}): {search_s:.2f} s "
        f"(anchor {anchor_s} s on SQLite); the first full read is {search_s / full_s:.1f}x "
        f"faster, the 10-changed re-read {search_s / ten_s:,.0f}x"
    )
