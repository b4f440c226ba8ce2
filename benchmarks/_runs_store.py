"""Fill a project's MLflow SQLite store with N realistic runs, fast (bulk SQL into MLflow's
own schema, created by MLflow itself), so MLflow and Workbench read exactly the same runs."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

METRICS = ("holdout_auc", "holdout_logloss", "holdout_f1", "valid_auc", "train_seconds")
PARAMS = ("learning_rate", "num_leaves", "min_data_in_leaf", "feature_fraction", "trainer")


def create_store(project_root: Path) -> None:
    """Let MLflow create its schema and the project's experiment (in a subprocess, so the
    caller's process does not import mlflow)."""
    code = (
        "import sys; from workbench.project import Project; from workbench.store import tracking; "
        "tracking.setup(Project.load(sys.argv[1]))"
    )
    subprocess.run([sys.executable, "-c", code, str(project_root)], check=True)


def build_rows(n_runs: int, exp_id: int, art: str, seed: int = 0, t0: int = 1_767_225_600_000):
    """The rows of N runs for MLflow's runs, latest_metrics, metrics, params and tags tables."""
    rng = random.Random(seed)
    runs, latest, metrics, params, tags = [], [], [], [], []
    for i in range(n_runs):
        rid = uuid.UUID(int=rng.getrandbits(128)).hex
        start = t0 + i * 60_000
        status = "FAILED" if rng.random() < 0.03 else "FINISHED"
        runs.append(
            (
                rid,
                f"run-{i:05d}",
                "LOCAL",
                "bench",
                "",
                "bench",
                status,
                start,
                start + 30_000,
                "",
                "active",
                f"{art}/{rid}/artifacts",
                exp_id,
            )
        )
        for key in METRICS:
            value = rng.uniform(0.80, 0.95) if "auc" in key else rng.uniform(0.01, 2.0)
            latest.append((key, value, start + 30_000, 0, 0, rid))
            metrics.append((key, value, start + 30_000, rid, 0, 0))
        pvals = (
            str(rng.choice([0.01, 0.03, 0.05, 0.1])),
            str(rng.choice([15, 31, 63])),
            str(rng.choice([20, 50, 100])),
            str(rng.choice([0.8, 0.9, 1.0])),
            "lightgbm",
        )
        params += [(k, v, rid) for k, v in zip(PARAMS, pvals, strict=True)]
        tags += [("mlflow.runName", f"run-{i:05d}", rid), ("mlflow.user", "bench", rid)]
    return runs, latest, metrics, params, tags


def fill(db_path: Path, n_runs: int, seed: int = 0) -> None:
    con = sqlite3.connect(db_path)
    exp_id = con.execute("SELECT max(experiment_id) FROM experiments").fetchone()[0]
    art = con.execute(
        "SELECT artifact_location FROM experiments WHERE experiment_id=?", (exp_id,)
    ).fetchone()[0]
    runs, latest, metrics, params, tags = build_rows(n_runs, exp_id, art, seed)
    with con:
        con.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
            "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
            "artifact_uri, experiment_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            runs,
        )
        con.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, "
            "run_uuid) VALUES (?,?,?,?,?,?)",
            latest,
        )
        con.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?,?,?,?,?,?)",
            metrics,
        )
        con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
        con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
    con.close()
