"""Wide data for the drift benchmark: 1,000 mixed features (float32 numeric and
dictionary-encoded categorical, some drifted) written to Parquet in fixed-size files, a
reference profile from a smaller training sample, a fresh process per check for its peak
RSS, the cost of the prediction log's JSON at that width, and Evidently in a Python of its
own.

Used by benchmarks/drift.py; `python benchmarks/_drift_wide.py child PROFILE DATA` is the
child that checks one file or folder and prints JSON.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

N_CATEGORIES = 20
ROW_GROUP = 65_536
CHUNK = 65_536  # rows generated at a time


def names(n_features: int) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature names: 70% numeric."""
    n_cat = n_features * 3 // 10
    return [f"x{i:04d}" for i in range(n_features - n_cat)], [f"c{i:04d}" for i in range(n_cat)]


def drifted(numeric: list[str], categorical: list[str]) -> list[str]:
    """Every 50th numeric feature is shifted by 0.5 std, every 30th categorical reweighted."""
    return numeric[::50] + categorical[::30]


def _cat_p() -> np.ndarray:
    p = 1.0 / np.arange(1, N_CATEGORIES + 1)
    return p / p.sum()


def table(rows: int, n_features: int, seed: int, shifted: bool) -> pa.Table:
    """`rows` rows of the wide data set (current data when `shifted`)."""
    rng = np.random.default_rng(seed)
    numeric, categorical = names(n_features)
    moved = set(drifted(numeric, categorical)) if shifted else set()
    cols: dict[str, pa.Array] = {}
    for i, name in enumerate(numeric):
        loc = 0.5 if name in moved else 0.0
        kind = i % 3
        if kind == 0:
            x = rng.normal(loc, 1.0, rows)
        elif kind == 1:
            x = rng.lognormal(loc * 0.7, 0.7, rows)
        else:
            x = rng.uniform(loc, 1 + loc, rows)
        # float32, as wide feature tables usually are (and half the disk: random float64
        # does not compress, and 1M x 700 of them is 5.6 GB to read).
        cols[name] = pa.array(x.astype(np.float32))
    words = pa.array([f"v{k:02d}" for k in range(N_CATEGORIES)])
    p = _cat_p()
    for name in categorical:
        q = p[::-1].copy() if name in moved else p
        codes = rng.choice(N_CATEGORIES, rows, p=q).astype(np.int8)
        cols[name] = pa.DictionaryArray.from_arrays(pa.array(codes), words)
    return pa.table(cols)


def write_files(folder: Path, files: int, rows_per_file: int, n_features: int, seed: int) -> None:
    """`files` Parquet files of `rows_per_file` current rows each, chunk by chunk."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(files):
        writer = None
        done = 0
        try:
            while done < rows_per_file:
                n = min(CHUNK, rows_per_file - done)
                t = table(n, n_features, seed + 1000 * k + done, shifted=True)
                if writer is None:
                    writer = pq.ParquetWriter(folder / f"part-{k}.parquet", t.schema)
                writer.write_table(t, row_group_size=ROW_GROUP)
                done += n
        finally:
            if writer is not None:
                writer.close()


def reference_profile(rows: int, n_features: int, path: Path) -> float:
    """Profile `rows` reference rows, save it to `path`; the seconds it took."""
    import polars as pl

    from workbench.drift.profile import build_profile

    numeric, categorical = names(n_features)
    frame = pl.from_arrow(table(rows, n_features, 1, shifted=False))
    assert isinstance(frame, pl.DataFrame)
    t0 = time.perf_counter()
    profile = build_profile(frame, numeric + categorical, set(categorical), source="benchmark")
    seconds = time.perf_counter() - t0
    profile.save(path)
    return seconds


def peak_kb() -> int:
    # VmHWM starts afresh at exec; ru_maxrss would carry the parent's peak over.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(profile_path: str, data: str) -> None:
    import scipy.stats  # noqa: F401  (import cost is not the check's)

    from workbench.drift.evaluate import check_parquet
    from workbench.drift.profile import ReferenceProfile

    profile = ReferenceProfile.load(Path(profile_path))
    before = peak_kb()
    t0, c0 = time.perf_counter(), time.process_time()
    report = check_parquet(profile, data)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    flagged = sorted(f.feature for f in report.features if f.status == "alert")
    warned = sorted(f.feature for f in report.features if f.status == "warn")
    out = {"seconds": seconds, "cpu": cpu, "rows": report.n_rows, "alerts": report.alerts}
    out.update(before_kb=before, peak_kb=peak_kb(), flagged=flagged, warned=warned)
    print(json.dumps(out))


def run_child(profile_path: Path, data: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "child", str(profile_path), str(data)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------ the log's JSON


def json_costs(rows: int, n_features: int, folder: Path, profile_path: Path) -> dict[str, float]:
    """Seconds per million rows to decode the prediction log's `features` JSON at this width
    into typed columns: polars `str.json_decode`, DuckDB `json_transform`
    from the Parquet file (what the check uses), pyarrow's JSON reader; and reading the column."""
    import duckdb
    import polars as pl
    import pyarrow.compute as pc
    import pyarrow.json as pj

    from workbench.drift.profile import ReferenceProfile
    from workbench.drift.sources import json_frame, json_struct

    t = table(rows, n_features, 7, shifted=False)
    frame = pl.from_arrow(t)
    assert isinstance(frame, pl.DataFrame)
    texts = frame.select(pl.struct(pl.all()).struct.json_encode().alias("features"))
    path = folder / "log.parquet"
    texts.write_parquet(path)
    profile = ReferenceProfile.load(profile_path)
    out: dict[str, float] = {"mb_per_row": texts["features"].str.len_bytes().mean() / 1e6}
    per_m = 1e6 / rows

    t0 = time.perf_counter()
    col = pq.read_table(path, columns=["features"]).column(0)
    out["read"] = (time.perf_counter() - t0) * per_m

    t0 = time.perf_counter()
    json_frame(col, json_struct(profile))
    out["polars"] = (time.perf_counter() - t0) * per_m

    kinds = {n: fp.kind for n, fp in profile.features.items()}
    spec = json.dumps({n: "VARCHAR" if k == "categorical" else "DOUBLE" for n, k in kinds.items()})
    con = duckdb.connect()
    con.execute(f"SET threads = {os.cpu_count() or 1}")
    t0 = time.perf_counter()
    con.sql(
        f"SELECT unnest(json_transform(features, '{spec}')) FROM read_parquet('{path}')"
    ).to_arrow_table()
    out["duckdb"] = (time.perf_counter() - t0) * per_m
    con.close()

    schema = pa.schema(
        [
            (n, pa.string() if fp.kind == "categorical" else pa.float64())
            for n, fp in profile.features.items()
        ]
    )
    t0 = time.perf_counter()
    whole = col.combine_chunks()
    nl, empty = pa.scalar("\n", whole.type), pa.scalar("", whole.type)
    lines = pc.binary_join_element_wise(whole, nl, empty)
    end = int(
        np.frombuffer(lines.buffers()[1], np.int32 if whole.type == pa.string() else np.int64)[
            len(lines)
        ]
    )
    buf = lines.buffers()[2].slice(0, end)
    opts = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    pj.read_json(pa.BufferReader(buf), parse_options=opts)
    out["pyarrow"] = (time.perf_counter() - t0) * per_m
    return out


# ------------------------------------------------------------------ Evidently

EVIDENTLY = r"""
import sys, time
import numpy as np
import pandas as pd
ref = pd.DataFrame(np.load(sys.argv[1]))
cur = pd.DataFrame(np.load(sys.argv[2]))
ref.columns = cur.columns = [f"f{i:02d}" for i in range(ref.shape[1])]
try:
    from evidently import Report
    from evidently.presets import DataDriftPreset
    t0 = time.perf_counter()
    Report([DataDriftPreset()]).run(cur, ref)
except ImportError:
    from evidently.metric_preset import DataDriftPreset
    from evidently.report import Report
    t0 = time.perf_counter()
    report = Report(metrics=[DataDriftPreset()])
    report.run(reference_data=ref, current_data=cur)
    report.as_dict()
print(time.perf_counter() - t0)
"""

CANDIDATES = (
    str(ROOT / ".venv-evidently" / "bin" / "python"),  # `make evidently`
    "/tmp/evidently-venv/bin/python",
    "/opt/evidently/bin/python",
)


def evidently_python() -> str | None:
    """A Python in which `import evidently` works: $EVIDENTLY_PYTHON, a known virtualenv,
    or this one; None when there is none."""
    found = [os.environ.get("EVIDENTLY_PYTHON", ""), *CANDIDATES, sys.executable]
    for python in found:
        if not python or not Path(python).exists():
            continue
        ok = subprocess.run(
            [python, "-c", "import evidently"], capture_output=True, timeout=120, check=False
        )
        if ok.returncode == 0:
            return python
    return None


def evidently_seconds(python: str, reference: np.ndarray, current: np.ndarray, tmp: Path) -> float:
    """Evidently's DataDriftPreset on the same arrays, timed inside `python`."""
    np.save(tmp / "ref.npy", reference)
    np.save(tmp / "cur.npy", current)
    out = subprocess.run(
        [python, "-c", EVIDENTLY, str(tmp / "ref.npy"), str(tmp / "cur.npy")],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: _drift_wide.py child PROFILE DATA")
