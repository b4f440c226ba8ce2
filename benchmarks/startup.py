"""Start-up and runs-table speed with 10,000 runs.

Prints, for a project whose MLflow store and runs index hold N runs (default 10,000):
- the TUI's time to first paint with data, from process spawn, beside a hello-world Textual
  app (Header, Static, DataTable, Footer) timed from spawn the same way (both through
  `run_test`, the first paint being the refresh after the data is in the table), each the
  median of --rounds, alternated in one run; goal: at most 1.25x the hello-world paint. For
  the usual start (the Overview's cached snapshot fresh), with the snapshot stale (a source
  changed since), and cold (no snapshot: the first start, or workbench.toml changed), and
  which heavy modules were imported by the first paint;
- the runs table's load, sort and filter times (goal < 0.1 s);
- `mlflow.search_runs` over the same runs (anchor: 8.4 s measured on these machines);
- with the team services (WORKBENCH_TEST_POSTGRES / WORKBENCH_TEST_MLFLOW, `.ci/services`): the
  runs table's reads over PostgreSQL (SqlReader) and the http tracking server (RestReader):
  first full read, incremental re-reads (nothing changed, 10 changed), beside
  `mlflow.search_runs` on the same store.

    python benchmarks/startup.py [--runs 10000] [--rounds 7] [--keep DIR] [--only stores]
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _runs_store import create_store, fill

from workbench.demo import samples
from workbench.project import Project
from workbench.store import runs_index
from workbench.store.db import Db

PAINT_RATIO_GOAL = 1.25  # first paint with data / the hello-world app's first paint
TABLE_GOAL_S = 0.1
SEARCH_RUNS_ANCHOR_S = 8.4
HEAVY = ("pydantic", "click", "polars", "pyarrow", "duckdb", "mlflow", "lightgbm")

# Both apps' first paint is the first frame the compositor renders (App._display, hooked here
# in the benchmark only) once the data is in the widgets, so neither waits on the other's
# callback order (the Footer composes its keys after the first frame, in both).
FRAME_HOOK = r"""
import resource, sys, time
import textual.app as _textual_app
FRAME = {}
_display = _textual_app.App._display
def _display_hook(self, screen, renderable):
    _display(self, screen, renderable)
    if renderable is not None and "at" not in FRAME and data_shown(self):
        FRAME["at"] = time.perf_counter()
        FRAME["cpu_s"] = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        FRAME["heavy"] = [m for m in HEAVY_MODULES if m in sys.modules]
_textual_app.App._display = _display_hook

async def wait_for_frame():
    while "at" not in FRAME:
        await asyncio.sleep(0.002)
    return {
        "paint_s": FRAME["at"] - t0,
        "paint_wall": time.time() - (time.perf_counter() - FRAME["at"]),
        "cpu_s": FRAME["cpu_s"],
        "heavy": FRAME["heavy"],
    }
""".replace("HEAVY_MODULES", repr(HEAVY))

# The TUI as `workbench` starts it: the console script's module, the entry point, the app
# `run_tui` runs (workbench_tui.app.start_app), in run_test instead of on a terminal.
PAINT_SCRIPT = r"""
import time
t0 = time.perf_counter()
import asyncio, json, os, sys
FRAME_HOOK
import workbench.cli.main
from workbench.cli import tui
run_tui = tui.ui_entry()

def data_shown(app):
    return getattr(app.screen, "data", None) is not None  # the Overview's, cached or loaded

async def main():
    app = sys.modules[run_tui.__module__].start_app(sys.argv[1])
    async with app.run_test(size=(120, 40)) as pilot:
        shown = await wait_for_frame()
        shown["runs_shown"] = app.screen.runs_table.row_count
        shown["snapshot"] = (
            None if app.start is None else ("fresh" if app.start.fresh else "stale")
        )
        print(json.dumps(shown), flush=True)
        if "--exit-at-paint" in sys.argv:
            os._exit(0)
        for _ in range(600):  # let the workers finish (the snapshot is written by one)
            await app.workers.wait_for_complete()
            await pilot.pause()
            if not list(app.workers):
                break

asyncio.run(main())
""".replace("FRAME_HOOK", FRAME_HOOK)

HELLO_SCRIPT = r"""
import time
t0 = time.perf_counter()
import asyncio, json, os
FRAME_HOOK
from textual.app import App
from textual.widgets import DataTable, Footer, Header, Static

def data_shown(app):
    return app.query_one(DataTable).row_count > 0

class Hello(App):
    def compose(self):
        yield Header()
        yield Static("Hello, world")
        yield DataTable()
        yield Footer()
    def on_mount(self):
        table = self.query_one(DataTable)
        table.add_columns("run", "name", "auc")
        for i in range(10):
            table.add_row(f"{i:08x}", f"run-{i}", f"{0.9 + i / 1000:.4f}")

async def main():
    app = Hello()
    async with app.run_test(size=(120, 40)):
        print(json.dumps(await wait_for_frame()), flush=True)
        os._exit(0)

asyncio.run(main())
""".replace("FRAME_HOOK", FRAME_HOOK)

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
    ap.add_argument("--rounds", type=int, default=7, help="spawns of each app for the medians")
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


def _spawn(script: str, *args: str) -> dict[str, Any]:
    """One app from process spawn: its first paint (s since spawn) and what it reported."""
    spawned = time.time()
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit("first paint: FAILED\n" + out.stderr[-2000:])
    p: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[0])
    p["wall"] = float(p["paint_wall"]) - spawned
    return p


def paint_lines(project: Project, rounds: int) -> None:
    """The first paint with data beside the hello-world app's, alternated, medians. Each
    timed process exits at its first paint (so the snapshot stays as each case needs it)."""
    from workbench_tui import overview_cache

    snapshot = overview_cache.path_for(project.root)
    root = str(project.root)
    _spawn(PAINT_SCRIPT, root)  # writes the snapshot (and warms the OS's file cache)
    fresh = snapshot.read_bytes()
    body = json.loads(fresh)
    body["sources"][str(project.mlflow_db)] = [0, 0, 0]  # as if the store changed since
    stale = json.dumps(body).encode()
    cases: dict[str, list[dict[str, Any]]] = {"hello": [], "fresh": [], "stale": [], "cold": []}
    for _ in range(rounds):  # all four in every round: the machine's load hits them alike
        cases["hello"].append(_spawn(HELLO_SCRIPT))
        snapshot.write_bytes(fresh)
        cases["fresh"].append(_spawn(PAINT_SCRIPT, root, "--exit-at-paint"))
        snapshot.write_bytes(stale)
        cases["stale"].append(_spawn(PAINT_SCRIPT, root, "--exit-at-paint"))
        snapshot.unlink()  # the first start, or workbench.toml changed since
        cases["cold"].append(_spawn(PAINT_SCRIPT, root, "--exit-at-paint"))
    snapshot.write_bytes(fresh)

    def med(case: str, key: str) -> float:
        return statistics.median(float(p[key]) for p in cases[case])

    def runs(case: str) -> str:
        return ", ".join(f"{float(p['wall']):.3f}" for p in cases[case])

    hello, hello_cpu = med("hello", "wall"), med("hello", "cpu_s")
    print(
        f"hello-world Textual app (Header, Static, DataTable, Footer) first paint, from process "
        f"spawn: {hello:.3f} s, CPU {hello_cpu:.3f} s (medians of {rounds}; runs {runs('hello')})"
    )
    labels = {
        "fresh": "from the cached Overview snapshot, fresh (the usual start)",
        "stale": "from the snapshot, stale (a source changed since: marked, then refreshed)",
        "cold": "no snapshot (first start, or workbench.toml changed): project and data first",
    }
    for case, label in labels.items():
        last = cases[case][-1]
        wall, cpu = med(case, "wall"), med(case, "cpu_s")
        ratio = wall / hello
        verdict = "met" if ratio <= PAINT_RATIO_GOAL else "NOT met"
        heavy = ", ".join(last["heavy"]) or "none of " + "/".join(HEAVY)
        print(
            f"TUI first paint with data ({last['runs_shown']} runs on screen), {label}: "
            f"{wall:.3f} s from process spawn, CPU {cpu:.3f} s (medians of {rounds}; runs "
            f"{runs(case)}): {ratio:.2f}x the hello-world paint, CPU {cpu / hello_cpu:.2f}x "
            f"(goal <= {PAINT_RATIO_GOAL}x: {verdict}); imported by then: {heavy}"
        )


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

    paint_lines(project, args.rounds)

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
