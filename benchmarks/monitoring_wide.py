"""Monitoring wide traffic from the prediction log: 1M logged predictions x 1,000 features.

Writes a prediction log in the writer's format (the JSON record, the typed lists of
drift/log_layout.py, the segments, the entity key in `passthrough`) through the log's own
`ParquetLog.append`, and labels for 30 % of it (numpy and polars make the rows: that is not
what is timed), a reference profile from 100,000
training rows of the same generator, and the offline file of the next training (the same
entities; one feature in cents for 10 % of them, the injected transform bug). Then times,
each in a fresh process for its peak RSS, over the newest 100,000 rows and over all of them:

- drift: `monitoring.checks.prediction_batches` into a Counter and `evaluate` (what
  `workbench drift` does with the log);
- distribution skew: `monitoring.skew.measures` over the same streamed counts;
- segments: `monitoring.segments.compute` (2 segment features x 25 groups, 200 bootstrap
  resamples, the fairness gaps);
- feature skew: `monitoring.skew_join.run`, the served rows joined on the key with the offline
  Parquet files (1,000 features), both spilled to disk in buckets by a hash of the key.

Also the drift pass from the JSON instead of the lists (the log as it was before them) on the
newest rows, and what laying out one record costs the writer.

    python benchmarks/monitoring_wide.py [--rows 1000000] [--features 1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL_S = 60.0
SMALL = 100_000
STEP_US = 3_000  # one logged row every 3 ms, newest first: 100k rows are the last 5 minutes
FILE_ROWS = 50_000
MODEL = "wide"
KEY = "entity"
BUG = "x0001"  # logged in cents for one entity in ten
WORDS: Any = None  # the 20 category words (a pyarrow array, made in main)


def names(n: int) -> tuple[list[str], list[str]]:
    n_cat = n * 3 // 10
    return [f"x{i:04d}" for i in range(n - n_cat)], [f"c{i:04d}" for i in range(n_cat)]


def _chunk(rng: Any, rows: int, n_num: int, n_cat: int, shifted: bool) -> tuple[Any, Any]:
    """`rows` rows: (numeric float64 array rows x n_num, categorical codes rows x n_cat).
    Standard normal numbers and 20 skewed categories; when `shifted`, every 50th numeric
    feature moved by 0.5 and every 30th categorical one made uniform."""
    import numpy as np

    num = rng.standard_normal((rows, n_num))
    codes = np.minimum((20 * rng.random((rows, n_cat)) ** 2).astype(np.int32), 19)
    if shifted:
        num[:, ::50] += 0.5
        codes[:, ::30] = rng.integers(0, 20, (rows, len(range(0, n_cat, 30))))
    return num, codes


def _frame(num: Any, codes: Any, numeric: list[str], categorical: list[str]) -> Any:
    """The rows as a polars frame, one column per feature."""
    import polars as pl
    import pyarrow as pa

    cols: dict[str, Any] = {n: num[:, i] for i, n in enumerate(numeric)}
    for i, n in enumerate(categorical):
        cols[n] = pl.from_arrow(
            pa.DictionaryArray.from_arrays(codes[:, i], WORDS).cast(pa.string())
        )
    return pl.DataFrame(cols)


def _list(values: Any, width: int) -> Any:
    import numpy as np
    import pyarrow as pa

    rows = len(values) // width if width else 0
    offsets = pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, values)


def write(root: Path, rows: int, n_features: int) -> dict[str, float]:
    """The log (through `ParquetLog.append`, as the server's writer writes), its labels, the
    offline file and the profile; seconds of each."""
    import numpy as np
    import polars as pl
    import pyarrow as pa

    from workbench.drift.profile import build_profile
    from workbench.store.parquet_log import SCHEMAS, ParquetLog, utcnow

    numeric, categorical = names(n_features)
    took: dict[str, float] = {}
    rng = np.random.default_rng(7)
    now = utcnow()
    (root / "meta.json").write_text(json.dumps({"now": now.isoformat()}))
    offline = root / "offline"
    offline.mkdir()

    t0 = time.perf_counter()
    frame = _frame(*_chunk(rng, SMALL, len(numeric), len(categorical), False), numeric, categorical)
    build_profile(frame, numeric + categorical, set(categorical)).save(root / "profile.json")
    took["profile"] = time.perf_counter() - t0
    del frame

    t0 = time.perf_counter()
    log = ParquetLog(root / "logs", "predictions")
    bug = numeric.index(BUG)
    for start in range(0, rows, FILE_ROWS):
        n = min(FILE_ROWS, rows - start)
        i = np.arange(start, start + n)
        num, codes = _chunk(rng, n, len(numeric), len(categorical), True)
        frame = _frame(num, codes, numeric, categorical)
        served = frame.select(pl.struct(pl.all()).struct.json_encode()).to_series().to_arrow()
        cats = pa.DictionaryArray.from_arrays(codes.ravel(), WORDS).cast(pa.string())
        seg = pa.array(
            [[("region", f"r{k % 25}"), ("channel", f"c{(k // 25) % 25}")] for k in i.tolist()],
            pa.map_(pa.string(), pa.string()),
        )
        label = (i * 2654435761 % 100) < 20  # the same rows as the labels below
        output = np.minimum(1.0, 0.3 * label + 0.7 * rng.random(n))
        table = pa.table(
            {
                "ts": pa.array(now.timestamp() * 1e6 - i * STEP_US, pa.int64()).cast(
                    pa.timestamp("us", tz="UTC")
                ),
                "request_id": pa.array([f"r{k}" for k in i.tolist()]),
                "model": pa.array([MODEL] * n),
                "version": pa.array(np.ones(n, dtype=np.int64)),
                "variant": pa.array(["production"] * n),
                "features": served,
                "output": pa.array(output),
                "latency_ms": pa.array(np.ones(n)),
                "status": pa.array(np.full(n, 200, dtype=np.int64)),
                "error": pa.nulls(n, pa.string()),
                "segments": seg,
                "passthrough": pa.array([f'{{"{KEY}": "e{k}"}}' for k in i.tolist()]),
                "numeric": _list(pa.array(num.ravel()), len(numeric)),
                "categorical": _list(cats, len(categorical)),
                "laid_out": pa.array(np.ones(n, dtype=bool)),
            },
            schema=SCHEMAS["predictions"],
        )
        log.append(table)
        keyed = frame.with_columns(pl.Series(KEY, [f"e{k}" for k in i.tolist()]))
        cents = np.where(i % 10 == 0, num[:, bug] / 100, num[:, bug])
        keyed = keyed.with_columns(pl.Series(BUG, cents))  # the injected transform bug
        keyed.write_parquet(offline / f"part-{start // FILE_ROWS:04d}.parquet")
    took["log"] = time.perf_counter() - t0
    i = np.arange(rows)
    labelled = i[i % 10 < 3]
    ParquetLog(root / "logs", "labels").append(
        pa.table(
            {
                "ts": pa.array([now] * len(labelled), pa.timestamp("us", tz="UTC")),
                "request_id": pa.array([f"r{k}" for k in labelled.tolist()]),
                "label": pa.array(((labelled * 2654435761 % 100) < 20).astype(np.float64)),
                "source": pa.array(["bench"] * len(labelled)),
            }
        )
    )
    return took


# -- the child: one measurement in a fresh process ----------------------------------------


def _peak_kb() -> int:
    from _drift_wide import peak_kb  # VmHWM: ru_maxrss would carry the parent's peak over

    return peak_kb()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(what: str, root: str, window_s: float, json_only: bool) -> None:

    from workbench.config_monitoring import MonitoringSection
    from workbench.drift.counter import Counter
    from workbench.drift.evaluate import evaluate
    from workbench.drift.profile import ReferenceProfile
    from workbench.monitoring import checks, segments, skew
    from workbench.store.db import Db
    from workbench.tasks import ModelTask

    base = Path(root)
    profile = ReferenceProfile.load(base / "profile.json")
    written = datetime.fromisoformat(json.loads((base / "meta.json").read_text())["now"])
    since = written - timedelta(seconds=window_s)
    out: dict[str, Any] = {}
    with Db(base / "logs") as db:
        if json_only:  # the log as it was before the lists: every row from its JSON
            checks.has_columns = lambda *_: False  # type: ignore[assignment]
        before = _peak_kb()
        t0, c0 = time.perf_counter(), _cpu()
        if what in ("drift", "dist"):
            counter = Counter(profile)
            rows = 0
            for batch, outputs in checks.prediction_batches(db, MODEL, 1, profile, since, None):
                counter.update(batch, predictions=outputs if what == "drift" else None)
                rows += batch.num_rows
            if what == "drift":
                report = evaluate(profile, counter, min_rows=100)
                out["flagged"] = [
                    f.feature for f in report.features if f.status in ("alert", "warn")
                ]
            else:
                measured = skew.measures(profile, counter, True, 0.05, 0.1)
                out["flagged"] = [m["feature"] for m in measured if m["alert"]]
            out["rows"] = rows
        elif what == "segments":
            mon = MonitoringSection(segments=["region", "channel"], sensitive=["region"])
            task = ModelTask("binary", [0, 1], 0.5, "y")
            window = f"{int(window_s)}s"
            rep = segments.compute(db, MODEL, 1, task, "auc", mon, window, now=written)
            out["rows"], out["groups"] = rep.rows, len(rep.groups) + rep.suppressed
        elif what == "skew":
            from workbench.drift.log_layout import Layout
            from workbench.monitoring import skew_join, skew_sources

            files = str(base / "offline" / "*.parquet")
            rel = f"read_parquet('{files}')"
            (rows_off,) = db.con.execute(f"SELECT count(*) FROM {rel}").fetchone() or (0,)
            out["offline_rows"] = rows_off
            names = [d[0] for d in db.con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()]
            feats = [
                skew_join.Feature(n, "categorical" if n.startswith("c") else "numeric")
                for n in names
                if n != KEY
            ]
            layout = Layout.of(profile)
            src = skew_join.Sources(
                served=skew_sources.served_sql(KEY, None, layout, 1, False),
                params=[MODEL, since],
                offline=f"SELECT {KEY} AS _key, * EXCLUDE ({KEY}) FROM {rel}",
                offline_rows=int(rows_off),
                layout=layout,
            )
            tally = skew_join.run(db, src, feats, False, 1e-6)
            joined = tally.joined
            mism = {f.name: m for f, m in zip(feats, tally.mismatches, strict=True)}
            out["rows"], out["joined"] = tally.served, joined
            out["flagged"] = [n for n, m in mism.items() if m / max(joined, 1) > 0.01]
            out["bug_share"] = mism[BUG] / max(joined, 1)
        out["seconds"] = time.perf_counter() - t0
        out["cpu"] = _cpu() - c0
    out["peak_kb"], out["before_kb"] = _peak_kb(), before
    print(json.dumps(out))


def run_child(what: str, root: Path, window_s: float, json_only: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "child", what, str(root), str(window_s)]
    if json_only:
        cmd.append("--json-only")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"child {what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def writer_cost(n_features: int, records: int = 2_000) -> float:
    """Microseconds to lay out one record of `n_features` (Layout.encode, the writer's part)."""
    import numpy as np

    from workbench.drift.log_layout import Layout

    numeric, categorical = names(n_features)
    rng = np.random.default_rng(1)
    recs = [
        {**{n: float(v) for n, v in zip(numeric, rng.normal(size=len(numeric)), strict=True)},
         **{n: "v3" for n in categorical}}
        for _ in range(records)
    ]  # fmt: skip
    layout = Layout(tuple(numeric), tuple(categorical))
    t0 = time.perf_counter()
    layout.encode(recs)
    return (time.perf_counter() - t0) / records * 1e6


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3], float(sys.argv[4]), "--json-only" in sys.argv)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="write the data here and keep it (reused)")
    parser.add_argument(
        "--only", default="drift,dist,segments,skew,json", help="what to measure (comma-separated)"
    )
    args = parser.parse_args()
    global WORDS
    import pyarrow as pa

    WORDS = pa.array([f"v{k}" for k in range(20)])
    root = args.keep or Path(tempfile.mkdtemp(prefix="wb-monitoring-wide-"))
    try:
        if not (root / "profile.json").exists():
            if root.exists() and any(root.iterdir()):
                shutil.rmtree(root)
            root.mkdir(parents=True, exist_ok=True)
            took = write(root, args.rows, args.features)
            size = sum(f.stat().st_size for f in (root / "logs").rglob("*.parquet")) / 1e9
            print(
                f"(wrote {args.rows:,} logged predictions x {args.features:,} features in "
                f"{took['log']:.0f} s, {size:.1f} GB with the JSON; profiled {SMALL:,} training "
                f"rows in {took['profile']:.0f} s)",
                flush=True,
            )
        small_s = (SMALL - 1) * STEP_US / 1e6
        all_s = args.rows * STEP_US / 1e6 + 600
        numeric, categorical = names(args.features)
        moved = set(numeric[::50] + categorical[::30])
        only = set(args.only.split(","))
        for what, label in (("drift", "drift"), ("dist", "distribution skew"),
                            ("segments", "segments"), ("skew", "feature skew")):  # fmt: skip
            if what not in only:
                continue
            a = run_child(what, root, small_s)
            half = run_child(what, root, (args.rows // 2 - 1) * STEP_US / 1e6)
            b = run_child(what, root, all_s)
            ok = "ok" if b["seconds"] < GOAL_S else "MISSED"
            print(
                f"{label}: {b['rows']:,} rows x {args.features:,} features in "
                f"{b['seconds']:.1f} s (goal {GOAL_S:g} s: {b['seconds'] / GOAL_S:.2f}x, {ok}); "
                f"peak RSS {a['peak_kb'] / 1024:.0f} / {half['peak_kb'] / 1024:.0f} / "
                f"{b['peak_kb'] / 1024:.0f} MB at {a['rows']:,} / {half['rows']:,} / "
                f"{b['rows']:,} rows ({a['seconds']:.1f} / {half['seconds']:.1f} s)",
                flush=True,
            )
            extra = f"  CPU {b['cpu']:.0f} s"
            if "flagged" in b and what in ("drift", "dist"):
                caught = len(moved & set(b["flagged"]))
                said = "warn or alert" if what == "drift" else "alert"
                extra += f"; of the {len(moved)} shifted features {caught} {said}, "
                extra += f"{len(set(b['flagged']) - moved)} others"
            if what == "skew":
                extra += (
                    f"; joined {b['joined']:,} of {b['offline_rows']:,} offline rows; "
                    f"{BUG} mismatched in {b['bug_share']:.1%}; flagged {b['flagged']}"
                )
            if what == "segments":
                extra += f"; {b['groups']} groups"
            print(extra, flush=True)
        if "json" in only:
            j = run_child("drift", root, small_s, json_only=True)
            d = run_child("drift", root, small_s)
            per_m = 1e6 / max(j["rows"], 1)
            print(
                f"drift from the JSON instead (the log before its typed lists): "
                f"{j['seconds']:.1f} s for {j['rows']:,} rows ({j['seconds'] * per_m:.0f} s per "
                f"million) vs {d['seconds']:.1f} s from the lists "
                f"({j['seconds'] / max(d['seconds'], 1e-9):.1f}x)"
            )
        print(f"writer: laying out a record of {args.features:,} features costs "
              f"{writer_cost(args.features):.0f} us")  # fmt: skip
        print(f"  (load average {' '.join(f'{x:.1f}' for x in os.getloadavg())})")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
