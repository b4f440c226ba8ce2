"""Drift check speed.

Prints:
- wide data: 1M current rows x 1,000 features (70% numeric, 30% dictionary-encoded
  categorical, some drifted) streamed from Parquet against a profile of 100k training rows,
  every test (goal < 60 s), with the peak RSS of a fresh process at 250k and 1M rows (it
  should not grow with the rows); and what the prediction log's JSON costs at that width
  per million rows (polars, DuckDB, pyarrow);
- build_profile + check (every test) for 1M reference and 1M current rows x 20 numeric
  features, beside Evidently's DataDriftPreset on the same data when some Python here
  imports evidently ($EVIDENTLY_PYTHON, /tmp/evidently-venv, or this one), run in it;
- check_parquet over 10M current rows streamed from Parquet (goal < 10 s), with the peak RSS
  of a fresh process checking 2M and 10M rows.

    python benchmarks/drift.py [--only wide,json,narrow,stream] [--rows 1000000]
        [--parquet-rows 10000000] [--wide-rows 1000000] [--features 1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _drift_wide as wide

from workbench.drift.evaluate import check_frame
from workbench.drift.profile import ReferenceProfile, build_profile

EVIDENTLY_ANCHOR_S = 97.0
SPEEDUP_GOAL = 50.0
PARQUET_GOAL_S = 10.0
WIDE_GOAL_S = 60.0
WIDE_FILES = 4  # the 250k case reads one of them, the 1M case all
N_FEATURES = 20
CHUNK_ROWS = 1_000_000
SHIFTS = {0: 0.5, 3: 0.1, 7: 0.25, 12: 1.0}  # feature index -> mean shift (in stds)


def _names() -> list[str]:
    return [f"f{i:02d}" for i in range(N_FEATURES)]


def make_frame(rows: int, seed: int, shifted: bool) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {}
    for i, name in enumerate(_names()):
        loc = SHIFTS.get(i, 0.0) if shifted else 0.0
        if i % 4 == 1:
            cols[name] = rng.lognormal(loc, 0.7, rows)
        elif i % 4 == 2:
            cols[name] = rng.uniform(loc, 1 + loc, rows)
        else:
            cols[name] = rng.normal(loc, 1.0, rows)
    return pl.DataFrame(cols)


def write_parquet(path: Path, rows: int, seed: int) -> None:
    """`rows` shifted current rows, written chunk by chunk (never all in memory)."""
    import pyarrow.parquet as pq

    writer = None
    done = 0
    chunk_seed = seed
    try:
        while done < rows:
            n = min(CHUNK_ROWS, rows - done)
            table = make_frame(n, chunk_seed, shifted=True).to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=500_000)
            done += n
            chunk_seed += 1
    finally:
        if writer is not None:
            writer.close()


def narrow(args: argparse.Namespace, tmp: Path) -> ReferenceProfile:
    """1M x 20 numeric, in memory: ours, and Evidently's DataDriftPreset beside it."""
    reference = make_frame(args.rows, 1, shifted=False)
    current = make_frame(args.rows, 2, shifted=True)
    names = _names()
    # Pay one-time imports (scipy.stats ~0.4 s) outside the timing, as for Evidently's.
    warm = build_profile(reference.head(1000), names, set())
    check_frame(warm, current.head(1000))

    t0 = time.perf_counter()
    profile = build_profile(reference, names, set(), source="benchmark")
    t_profile = time.perf_counter() - t0
    report = check_frame(profile, current)
    ours = time.perf_counter() - t0
    flagged = ", ".join(f"{f.feature} {f.status}" for f in report.features if f.status != "ok")
    label = (
        f"drift, {args.rows / 1e6:g}M reference + {args.rows / 1e6:g}M current rows x "
        f"{N_FEATURES} numeric features, every test"
    )
    print(
        f"{label}: {ours:.2f} s (profile {t_profile:.2f} s, check {report.seconds:.2f} s)",
        flush=True,
    )
    print(f"  flagged: {flagged or 'none'} (shifted: {', '.join(names[i] for i in SHIFTS)})")
    python = wide.evidently_python() if not args.no_evidently else None
    if python is None:
        why = "skipped" if args.no_evidently else "evidently not importable here"
        print(
            f"Evidently DataDriftPreset, same data: {why} (anchor {EVIDENTLY_ANCHOR_S:g} s: "
            f"ours {EVIDENTLY_ANCHOR_S / ours:.0f}x faster; goal >= {SPEEDUP_GOAL:g}x)"
        )
    else:
        ev = wide.evidently_seconds(python, reference.to_numpy(), current.to_numpy(), tmp)
        ok = "ok" if ev / ours >= SPEEDUP_GOAL else "MISSED"
        print(
            f"Evidently DataDriftPreset, same data: {ev:.1f} s ({python}); ours {ours:.2f} s: "
            f"{ev / ours:.0f}x faster (goal >= {SPEEDUP_GOAL:g}x: {ok})"
        )
    return profile


def stream(args: argparse.Namespace, tmp: Path, profile: ReferenceProfile) -> None:
    """10M x 20 streamed from Parquet, peak RSS at 2M and 10M rows."""
    profile_path = tmp / "profile.json"
    profile.save(profile_path)
    small_rows = max(args.parquet_rows // 5, 1)
    small, big = tmp / "current_small.parquet", tmp / "current_big.parquet"
    t0 = time.perf_counter()
    write_parquet(small, small_rows, 100)
    write_parquet(big, args.parquet_rows, 100)
    t_write = time.perf_counter() - t0
    size_mb = big.stat().st_size / 1e6
    print(
        f"  (wrote {small_rows / 1e6:g}M + {args.parquet_rows / 1e6:g}M rows to Parquet "
        f"in {t_write:.0f} s; {size_mb:.0f} MB)"
    )
    a = wide.run_child(profile_path, small)
    b = wide.run_child(profile_path, big)
    ok = "ok" if b["seconds"] < PARQUET_GOAL_S else "MISSED"
    print(
        f"drift, {args.parquet_rows / 1e6:g}M current rows x {N_FEATURES} features "
        f"streamed from Parquet: {b['seconds']:.2f} s (goal < {PARQUET_GOAL_S:g} s: {ok}; "
        f"{b['rows'] / b['seconds'] / 1e6:.1f}M rows/s)"
    )
    print(
        f"  peak RSS: {a['peak_kb'] / 1024:.0f} MB for {a['rows'] / 1e6:g}M rows, "
        f"{b['peak_kb'] / 1024:.0f} MB for {b['rows'] / 1e6:g}M rows "
        f"(after imports and profile: {a['before_kb'] / 1024:.0f} MB; "
        f"{a['seconds']:.2f} s for {a['rows'] / 1e6:g}M rows)"
    )


def wide_data(args: argparse.Namespace, tmp: Path) -> Path:
    """1M x 1,000 from Parquet; the profile's path."""
    nf, rows = args.features, args.wide_rows
    profile_path = tmp / "wide_profile.json"
    t_profile = wide.reference_profile(args.reference_rows, nf, profile_path)
    folder = tmp / "wide"
    t0 = time.perf_counter()
    wide.write_files(folder, WIDE_FILES, rows // WIDE_FILES, nf, 100)
    size = sum(f.stat().st_size for f in folder.iterdir()) / 1e9
    print(
        f"  (wide: profiled {args.reference_rows:,} training rows x {nf:,} features in "
        f"{t_profile:.1f} s; wrote {rows:,} current rows in {WIDE_FILES} Parquet files in "
        f"{time.perf_counter() - t0:.0f} s, {size:.1f} GB)",
        flush=True,
    )
    a = wide.run_child(profile_path, folder / "part-0.parquet")
    b = wide.run_child(profile_path, folder)
    numeric, categorical = wide.names(nf)
    moved = set(wide.drifted(numeric, categorical))
    caught = len(moved & set(b["flagged"]))
    warned = len(moved & set(b["warned"]))
    false = len((set(b["flagged"]) | set(b["warned"])) - moved)
    secs = b["seconds"]
    print(
        f"drift: {b['rows']:,} rows x {nf:,} features in {secs:.0f} s (goal {WIDE_GOAL_S:g} s: "
        f"{secs / WIDE_GOAL_S:.2f}x), peak RSS {b['peak_kb'] / 1024**2:.1f} GB at "
        f"{b['rows'] / 1e6:g}M rows vs {a['peak_kb'] / 1024**2:.1f} GB at {a['rows'] / 1e3:g}k"
    )
    print(
        f"  {a['seconds']:.1f} s for {a['rows']:,} rows; CPU {b['cpu']:.0f} s at 1M rows; "
        f"of the {len(moved)} drifted features {caught} alert, {warned} warn; "
        f"{false} others flagged; after imports and profile {b['before_kb'] / 1024:.0f} MB"
    )
    return profile_path


def log_json(args: argparse.Namespace, tmp: Path, profile_path: Path) -> None:
    """What the prediction log's JSON `features` cost at this width, per million rows."""
    c = wide.json_costs(args.json_rows, args.features, tmp, profile_path)
    print(
        f"prediction log JSON at {args.features:,} features ({c['mb_per_row'] * 1e3:.0f} kB a "
        f"row), seconds per million rows: read the column {c['read']:.0f}, decode: polars "
        f"json_decode {c['polars']:.0f}, DuckDB json_transform {c['duckdb']:.0f} (used), "
        f"pyarrow JSON {c['pyarrow']:.0f} (measured on {args.json_rows:,} rows)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="wide,json,narrow,stream", help="sections to run")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parquet-rows", type=int, default=10_000_000)
    parser.add_argument("--wide-rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=1000)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--json-rows", type=int, default=10_000)
    parser.add_argument("--no-evidently", action="store_true", help="do not run Evidently")
    parser.add_argument("--keep", type=Path, help="write the Parquet files here and keep them")
    args = parser.parse_args()
    only = set(args.only.split(","))

    tmp = args.keep or Path(tempfile.mkdtemp(prefix="wb-drift-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        if "wide" in only or "json" in only:
            profile_path = wide_data(args, tmp) if "wide" in only else None
            if "json" in only:
                if profile_path is None:
                    profile_path = tmp / "wide_profile.json"
                    wide.reference_profile(args.json_rows, args.features, profile_path)
                log_json(args, tmp, profile_path)
            if args.keep is None:
                shutil.rmtree(tmp / "wide", ignore_errors=True)
        if "narrow" in only or "stream" in only:
            profile = narrow(args, tmp)
            if "stream" in only:
                stream(args, tmp, profile)
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
