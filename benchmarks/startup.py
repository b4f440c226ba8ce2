"""Start-up and runs-table speed with 10,000 runs.

Prints, for a project whose MLflow store and runs index hold N runs (default 10,000):
- the TUI's time to first paint (goal < 0.5 s), and whether mlflow/lightgbm were imported;
- the runs table's load, sort and filter times (goal < 0.1 s);
- `mlflow.search_runs` over the same runs (anchor: 8.4 s measured on these machines);
- with the team services (WORKBENCH_TEST_POSTGRES / WORKBENCH_TEST_MLFLOW, `.ci/services`): the
  runs table's reads over PostgreSQL (SqlReader) and the http tracking server (RestReader):
  first full read, incremental re-reads (nothing changed, 10 changed), beside
  `mlflow.search_runs` on the same store.

    python benchmarks/startup.py [--runs 10000] [--keep DIR] [--only stores]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _runs_store import create_store, fill

from workbench.demo import samples
from workbench.project import Project
from workbench.store import runs_index
from workbench.store.db import Db

PAINT_GOAL_S = 0.5
TABLE_GOAL_S = 0.1
SEARCH_RUNS_ANCHOR_S = 8.4

PAINT_SCRIPT = r"""
import time
t0 = time.perf_counter()
import asyncio, json, sys
from workbench.project import Project
from workbench_tui.app import WorkbenchApp

async def main():
    app = WorkbenchApp(Project.load(sys.argv[1]), sync_on_start=False)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.first_paint_at is None:
            await asyncio.sleep(0.002)
        painted = app.first_paint_at - t0
        print(json.dumps({
            "paint_s": painted,
            "paint_wall": time.time() - (time.perf_counter() - app.first_paint_at),
            "mlflow": "mlflow" in sys.modules,
            "lightgbm": "lightgbm" in sys.modules,
            "runs_shown": app.runs_on_first_paint,
        }))

asyncio.run(main())
"""

SEARCH_SCRIPT = r"""
import sys, time, json
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
t = time.perf_counter()
df = mlflow.search_runs(search_all_experiments=True, max_results=100000)
print(json.dumps({"seconds": time.perf_counter() - t, "rows": len(df)}))
"""


def _median_ms(fn, repeat: int = 7) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--keep", help="build the project here instead of a temp dir")
    ap.add_argument("--skip-mlflow", action="store_true", help="do not time mlflow.search_runs")
    ap.add_argument("--only", choices=["stores"], help="only the team stores' runs reads")
    args = ap.parse_args()
    if args.only != "stores":
        sqlite_lines(args)
    store_lines(args.runs)
    return 0


def store_lines(n_runs: int) -> None:
    """The runs table over PostgreSQL and over the http tracking server (when they answer)."""
    import _team_stores as team

    from workbench.store.rest_reader import RestReader
    from workbench.store.sql_reader import SqlReader

    base = os.environ.get("WORKBENCH_TEST_POSTGRES")
    if not base:
        print("team stores: WORKBENCH_TEST_POSTGRES is not set (.ci/services), skipped")
        return
    with team.postgres_store(base, n_runs) as url:
        con = team._pg(url)
        with con, con.cursor() as cur:
            cur.execute("SELECT run_uuid FROM runs")
            ids = [r[0] for r in cur.fetchall()]
        con.close()
        team.reads(lambda: SqlReader(url), url, ids, "PostgreSQL", SEARCH_RUNS_ANCHOR_S)
    server = os.environ.get("WORKBENCH_TEST_MLFLOW")
    if not server:
        print("tracking server: WORKBENCH_TEST_MLFLOW is not set (.ci/services), skipped")
        return
    os.environ.setdefault("MLFLOW_TRACKING_USERNAME", "alice")
    os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", "alice-password-1")
    server_db = f"{base}/mlflow"
    with team.server_experiment(server, server_db, n_runs) as ids:
        label = "the http tracking server (basic auth)"
        team.reads(lambda: RestReader(server), server_db, ids, label, SEARCH_RUNS_ANCHOR_S)


def sqlite_lines(args: argparse.Namespace) -> None:

    root = Path(args.keep or tempfile.mkdtemp(prefix="wb-bench-startup-")) / "proj"
    project = Project.load(samples.init(root, "fraud_detection", rows=2000, force=True))
    create_store(project.root)
    t = time.perf_counter()
    fill(project.mlflow_db, args.runs)
    print(
        f"store: {args.runs:,} runs written to MLflow's SQLite store in "
        f"{time.perf_counter() - t:.2f} s ({project.mlflow_db})"
    )

    t = time.perf_counter()
    res = runs_index.sync(project)
    sync_s = time.perf_counter() - t
    print(f"runs index sync: {res.changed:,} runs from the MLflow store in {sync_s:.2f} s")
    t = time.perf_counter()
    res = runs_index.sync(project)
    print(
        f"runs index re-sync, nothing changed: {time.perf_counter() - t:.3f} s "
        f"({res.changed} rows appended)"
    )

    db = Db(project.logs)
    load_ms, df = _median_ms(lambda: runs_index.runs_frame(db))
    sort_ms, _ = _median_ms(lambda: runs_index.sort_filter(df, "m.holdout_auc", True, ""))
    filt = "learning_rate=0.05 auc>0.9"
    filt_ms, out = _median_ms(lambda: runs_index.sort_filter(df, None, True, filt))
    both_ms, both = _median_ms(lambda: runs_index.sort_filter(df, "m.holdout_auc", True, filt))
    text_ms, _ = _median_ms(lambda: runs_index.sort_filter(df, "start_time", True, "run-09"))
    print(f"runs table load (DuckDB over Parquet -> frame, {df.height:,} runs): {load_ms:.1f} ms")
    print(
        f"runs table sort by holdout_auc: {sort_ms:.1f} ms "
        f"(goal {TABLE_GOAL_S * 1000:.0f} ms: {sort_ms / (TABLE_GOAL_S * 1000):.2f}x of budget)"
    )
    print(
        f"runs table filter {filt!r} ({out.height:,} match): {filt_ms:.1f} ms "
        f"({filt_ms / (TABLE_GOAL_S * 1000):.2f}x of budget)"
    )
    print(
        f"runs table text filter 'run-09' + sort by start time: {text_ms:.1f} ms "
        f"({text_ms / (TABLE_GOAL_S * 1000):.2f}x of budget)"
    )
    print(
        f"runs table filter + sort ({both.height:,} rows): {both_ms:.1f} ms "
        f"({both_ms / (TABLE_GOAL_S * 1000):.2f}x of budget)"
    )

    spawned = time.time()
    paint = subprocess.run(
        [sys.executable, "-c", PAINT_SCRIPT, str(project.root)], capture_output=True, text=True
    )
    if paint.returncode == 0:
        p = json.loads(paint.stdout.strip().splitlines()[-1])
        wall = p["paint_wall"] - spawned
        print(
            f"TUI first paint with data ({p['runs_shown']} runs on screen), from process "
            f"spawn: {wall:.3f} s (goal {PAINT_GOAL_S} s: {wall / PAINT_GOAL_S:.2f}x of "
            f"budget); from the script's first line: {p['paint_s']:.3f} s; "
            f"mlflow imported: {'yes' if p['mlflow'] else 'no'}; "
            f"lightgbm imported: {'yes' if p['lightgbm'] else 'no'}"
        )
    else:
        print("TUI first paint: FAILED\n" + paint.stderr[-2000:])

    if not args.skip_mlflow:
        out = subprocess.run(
            [sys.executable, "-c", SEARCH_SCRIPT, project.tracking_uri],
            capture_output=True,
            text=True,
            check=True,
        )
        s = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"mlflow.search_runs over the same {s['rows']:,} runs: {s['seconds']:.2f} s "
            f"(anchor {SEARCH_RUNS_ANCHOR_S} s); workbench filter + sort is "
            f"{s['seconds'] * 1000 / both_ms:,.0f}x faster, load + filter + sort "
            f"{s['seconds'] * 1000 / (load_ms + both_ms):,.0f}x"
        )


if __name__ == "__main__":
    raise SystemExit(main())
