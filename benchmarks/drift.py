"""Drift check speed.

Prints:
- build_profile + check (every test) for 1M reference and 1M current rows x 20 numeric
  features, beside Evidently's DataDriftPreset on the same data when Evidently is installed
  (anchor: 97 s measured on these machines; goal >= 50x faster);
- check_parquet over 10M current rows streamed from Parquet (goal < 10 s), with the peak RSS
  of a fresh process checking 2M and 10M rows (it should not grow with the row count).

    python benchmarks/drift.py [--rows 1000000] [--parquet-rows 10000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.drift.evaluate import check_frame
from workbench.drift.profile import ReferenceProfile, build_profile

EVIDENTLY_ANCHOR_S = 97.0
SPEEDUP_GOAL = 50.0
PARQUET_GOAL_S = 10.0
N_FEATURES = 20
CHUNK_ROWS = 1_000_000
SHIFTS = {0: 0.5, 3: 0.1, 7: 0.25, 12: 1.0}  # feature index -> mean shift (in stds)

CHILD = r"""
import json, resource, sys, time
from workbench.drift.evaluate import check_parquet
from workbench.drift.profile import ReferenceProfile
import scipy.stats  # noqa: F401  (import cost is not the check's)


def peak_kb():
    # VmHWM starts afresh at exec; ru_maxrss would carry the parent's peak over.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


profile = ReferenceProfile.load(sys.argv[1])
before = peak_kb()
t0 = time.perf_counter()
report = check_parquet(profile, sys.argv[2])
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "rows": report.n_rows, "alerts": report.alerts,
                  "before_kb": before, "peak_kb": peak_kb()}))
"""


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


def evidently_seconds(reference: pl.DataFrame, current: pl.DataFrame) -> float | None:
    """DataDriftPreset on the same data, or None when Evidently is not installed."""
    try:
        import evidently  # noqa: F401
    except ImportError:
        return None
    ref, cur = reference.to_pandas(), current.to_pandas()
    try:  # evidently >= 0.7
        from evidently import Report
        from evidently.presets import DataDriftPreset

        t0 = time.perf_counter()
        Report([DataDriftPreset()]).run(cur, ref)
        return time.perf_counter() - t0
    except ImportError:
        from evidently.metric_preset import DataDriftPreset
        from evidently.report import Report

        t0 = time.perf_counter()
        report = Report(metrics=[DataDriftPreset()])
        report.run(reference_data=ref, current_data=cur)
        report.as_dict()
        return time.perf_counter() - t0


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


def run_child(profile_path: Path, data: Path) -> dict:
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(profile_path), str(data)],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parquet-rows", type=int, default=10_000_000)
    parser.add_argument("--keep", type=Path, help="write the Parquet files here and keep them")
    args = parser.parse_args()

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
        f"{label}: {ours:.2f} s (profile {t_profile:.2f} s, check {report.seconds:.2f} s; "
        f"Evidently DataDriftPreset anchor {EVIDENTLY_ANCHOR_S:g} s: "
        f"{EVIDENTLY_ANCHOR_S / ours:.0f}x faster; goal >= {SPEEDUP_GOAL:g}x)"
    )
    print(f"  flagged: {flagged or 'none'} (shifted: {', '.join(names[i] for i in SHIFTS)})")
    ev = evidently_seconds(reference, current)
    if ev is None:
        print(
            f"Evidently DataDriftPreset, same data: skipped (evidently not installed; "
            f"anchor {EVIDENTLY_ANCHOR_S:g} s, ours {EVIDENTLY_ANCHOR_S / ours:.0f}x faster)"
        )
    else:
        print(
            f"Evidently DataDriftPreset, same data: {ev:.1f} s measured "
            f"(ours {ev / ours:.0f}x faster; goal >= {SPEEDUP_GOAL:g}x)"
        )
    del reference, current

    tmp = args.keep or Path(tempfile.mkdtemp(prefix="wb-drift-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        profile_path = tmp / "profile.json"
        profile.save(profile_path)
        ReferenceProfile.load(profile_path)
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
        a = run_child(profile_path, small)
        b = run_child(profile_path, big)
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
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
