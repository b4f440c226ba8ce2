"""Serving speed: `workbench serve` against `mlflow models serve`, same model, same requests.

Prints, for the production version of the demo project's model (fraud_detection), one worker
each, prediction logging on for ours:
- single-record requests from 16 connections and from 1: requests per second and p50/p99
  latency, from our load generator and, when `wrk` is on PATH, from wrk beside it; and the
  same for a server that does nothing (this machine's floor at that moment). Goals: p99 < 5 ms
  at 16 connections, < 1 ms at 1; the issue measured 87 ms and 60 ms (its anchors);
- rows per second for batches of 1,000 records, as records (`dataframe_records`) and as
  columns (`dataframe_split`), for each server (goal: ours >= 5x mlflow's);
- batches of 10,000 rows as columns, one at a time: the server's time per batch (its logged
  latency) and the client's (goal: < 20 ms);
- that every prediction the server answered is in its Parquet prediction log (read through
  DuckDB) after a SIGTERM, and that no request failed.

Each connection is a closed loop, as wrk's are: a request is sent when the previous answer
has arrived, and every request's latency is timed from its send to its whole answer (none is
sampled or left out). The load comes from C keep-alive connections (benchmarks/_loadgen.py)
in this process, or from wrk; both share this machine's cores with the server, which the
do-nothing server's figures show.

    python benchmarks/serving.py [--project DIR] [--concurrency 16] [--duration 10]
                                 [--skip-mlflow] [--skip-ours] [--no-wrk]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loadgen import (
    TrivialServer,
    WrkResult,
    build_request,
    client_ceiling,
    have_wrk,
    run_wrk,
)
from _servers import (
    HOST,
    JSON,
    BenchError,
    Phase,
    Server,
    _cleanup,
    _note,
    _phase,
    _probe,
    _request,
    _start,
    _stop,
    _wait_ready,
)

from workbench.data.snapshot import load_frame
from workbench.project import Project
from workbench.store import mlflow_tables as mlflow_store

BATCH_GOAL_RATIO = 5.0  # ours / mlflow, rows per second at 1,000-row batches
P99_GOAL_MS = {16: 5.0, 1: 1.0}  # single records, by connections
ISSUE_P99_MS = {16: 87.0, 1: 60.0}  # what the issue measured with wrk (its anchors)
BIG_BATCH = 10_000
BIG_GOAL_MS = 20.0
FLAVOR_NAMES = {"lightgbm": "LightGBM", "sklearn": "scikit-learn", "xgboost": "XGBoost"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", help="a trained project to reuse (made with `workbench demo`)")
    ap.add_argument("--concurrency", type=int, default=16, help="connections (closed loops)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds measured per phase")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per phase")
    ap.add_argument("--batch", type=int, default=1000, help="records per batch request")
    ap.add_argument("--skip-mlflow", action="store_true", help="measure workbench serve only")
    ap.add_argument("--skip-ours", action="store_true", help="measure mlflow models serve only")
    ap.add_argument("--no-wrk", action="store_true", help="do not run wrk even when installed")
    args = ap.parse_args()
    args.wrk = have_wrk() and not args.no_wrk

    scratch = Path(tempfile.mkdtemp(prefix="wb-bench-serving-"))
    servers: list[Server] = []
    try:
        return _bench(args, scratch, servers)
    except BenchError as exc:
        print(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        print("interrupted; servers stopped")
        return 130
    finally:
        for server in servers:
            _cleanup(server)
        shutil.rmtree(scratch, ignore_errors=True)


def _bench(args: argparse.Namespace, scratch: Path, servers: list[Server]) -> int:
    root = Path(args.project).resolve() if args.project else scratch / "proj"
    _ensure_demo(root)
    project = Project.load(root)
    features = project.config.features
    model = project.config.model_name
    alias = project.config.serving.alias
    mv = next(
        (
            v
            for v in mlflow_store.read_model_versions(project.mlflow_db, model)
            if alias in v.aliases
        ),
        None,
    )
    if mv is None or not mv.source:
        raise BenchError(f"{root}: no version of {model} holds the alias {alias!r}")
    model_dir = Path(unquote(urlparse(mv.source).path))

    records = _records(project, features, n=max(BIG_BATCH, 8 * args.batch))
    single = [json.dumps(r).encode() for r in records[:1000]]
    chunks = [records[i : i + args.batch] for i in range(0, 8 * args.batch, args.batch)]
    batches = [json.dumps({"dataframe_records": c}).encode() for c in chunks]
    splits = [json.dumps({"dataframe_split": _split(c, features)}).encode() for c in chunks]
    big = json.dumps(_split(records[:BIG_BATCH], features)).encode()  # the plain columns form
    conns = sorted({args.concurrency, 1}, reverse=True)

    lines = [
        f"model: {model} v{mv.version} ({_flavor(model_dir)}, {len(features)} features), "
        f"{os.cpu_count()} cores shared by server and load, {args.duration:g} s per phase "
        f"(after {args.warmup:g} s of warm-up), 1 server worker each, "
        f"wrk: {'yes' if args.wrk else 'not installed' if not have_wrk() else 'off'}"
    ]
    ceiling = client_ceiling(
        [build_request("POST", "/predict", HOST, 0, single[0], JSON)], args.concurrency, 2.0
    )
    lines.append(
        f"load generator ceiling (a do-nothing asyncio server, {args.concurrency} connections): "
        f"{ceiling.rps:,.0f} req/s, p50 {ceiling.percentile_ms(50):.2f} ms, "
        f"p99 {ceiling.percentile_ms(99):.2f} ms"
    )
    floor: dict[int, WrkResult] = {}
    if args.wrk:
        with TrivialServer() as port:
            for c in conns:
                floor[c] = run_wrk(f"http://{HOST}:{port}/", single[0], c, 5.0, scratch)

    ours: dict[str, Phase] = {}
    theirs: dict[str, Phase] = {}
    wrk_ours: dict[int, WrkResult] = {}
    log_line = ""
    big_line = ""
    failed = ceiling.failures > 0

    if not args.skip_ours:
        from workbench.store.db import Db

        before = _logged(Db(project.logs))
        server = _start(
            "workbench serve",
            [
                *(sys.executable, "-m", "workbench", "serve", "--project", str(root)),
                *("--port", "{port}", "--runner", "local", "--workers", "1"),
            ],
            scratch,
            servers,
            os.environ.copy(),
        )
        _wait_ready(server, "/ready")
        _probe(server, "/predict", single[0], batches[0])
        _probe(server, "/predict", single[0], splits[0])
        for c in conns:
            ours[f"single{c}"] = _phase(server, "/predict", single, 1, args, c)
            if args.wrk:
                url = f"http://{HOST}:{server.port}/predict"
                wrk_ours[c] = run_wrk(url, single[0], c, args.duration, scratch)
        for kind, bodies in (("records", batches), ("columns", splits)):
            ours[kind] = _phase(server, "/predict", bodies, args.batch, args, args.concurrency)
        big_line = _big_batches(server, big, project, args)
        answered = _answered(server)
        stop_s = _stop(server)
        after = _logged(Db(project.logs))
        found = after["n"] - before["n"]
        found_ok = after["ok"] - before["ok"]
        lost = answered - found_ok
        log_line = (
            f"prediction log: the server answered {answered:,} predictions (warm-up and wrk "
            f"included), {found:,} rows found in the Parquet log through DuckDB after SIGTERM "
            f"(stopped and flushed in {stop_s:.2f} s): "
            + ("none lost" if lost == 0 else f"{lost:,} MISSING" if lost > 0 else "extra rows")
        )
        failed |= lost != 0 or found != found_ok
        failed |= any(w.failures for w in wrk_ours.values())

    if not args.skip_mlflow:
        env = os.environ.copy()
        env["MLFLOW_TRACKING_URI"] = project.tracking_uri
        # mlflow runs `uvicorn` from PATH: make it this interpreter's.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.pop("MLFLOW_MODELS_WORKERS", None)
        server = _start(
            "mlflow models serve",
            [
                *(sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir)),
                *("--env-manager", "local", "--host", HOST, "-p", "{port}", "--workers", "1"),
            ],
            scratch,
            servers,
            env,
        )
        _wait_ready(server, "/ping")
        mlflow_single = [
            json.dumps({"dataframe_records": [r]}).encode() for r in records[: len(single)]
        ]
        _probe(server, "/invocations", mlflow_single[0], batches[0])
        _probe(server, "/invocations", mlflow_single[0], splits[0])
        c = args.concurrency
        theirs[f"single{c}"] = _phase(server, "/invocations", mlflow_single, 1, args, c)
        for kind, bodies in (("records", batches), ("columns", splits)):
            theirs[kind] = _phase(server, "/invocations", bodies, args.batch, args, c)
        _stop(server)

    ready = [f"{s.name} {s.ready_s:.1f} s" for s in servers]
    lines.append(f"time from spawn to ready: {', '.join(ready)}")
    for c in conns:
        phase = ours.get(f"single{c}")
        if phase is None:
            continue
        r = phase.result
        p99 = r.percentile_ms(99)
        goal = P99_GOAL_MS.get(c, P99_GOAL_MS[16])
        line = (
            f"workbench serve, single record, {c} connection{'s' if c > 1 else ''}: "
            f"{r.rps:,.0f} req/s, p50 {r.percentile_ms(50):.2f} ms, p99 {p99:.2f} ms "
            f"(goal < {goal:g} ms: {p99 / goal:.2f}x of it)"
        )
        w = wrk_ours.get(c)
        if w is not None:
            line += (
                f"; wrk: {w.rps:,.0f} req/s, p50 {w.p50_ms:.2f} ms, p99 {w.p99_ms:.2f} ms "
                f"({w.p99_ms / goal:.2f}x of the goal"
            )
            if c in ISSUE_P99_MS:
                line += f", {w.p99_ms / ISSUE_P99_MS[c]:.3f}x the issue's {ISSUE_P99_MS[c]:g} ms"
            line += ")"
        if c in floor:
            f = floor[c]
            line += (
                f"; a do-nothing server under wrk: p50 {f.p50_ms:.2f} ms, p99 {f.p99_ms:.2f} ms "
                f"(this machine's floor now)"
            )
        lines.append(line + ", prediction logging on")
    phase = theirs.get(f"single{args.concurrency}")
    if phase is not None:
        r = phase.result
        lines.append(
            f"mlflow models serve, single record, {args.concurrency} connections: "
            f"{r.rps:,.0f} req/s, p50 {r.percentile_ms(50):.1f} ms, p99 "
            f"{r.percentile_ms(99):.1f} ms (1 uvicorn worker, its access log on as shipped, "
            f"no prediction logging)"
        )
    key = f"single{args.concurrency}"
    if key in ours and key in theirs:
        ratio = ours[key].result.rps / max(theirs[key].result.rps, 1e-9)
        lines.append(f"single-record throughput: workbench / mlflow = {ratio:.2f}x")
    for kind, form in (("records", "dataframe_records"), ("columns", "dataframe_split")):
        for name, phases in (("workbench serve", ours), ("mlflow models serve", theirs)):
            if kind in phases:
                r = phases[kind].result
                lines.append(
                    f"{name}, batches of {args.batch:,} as {form}: "
                    f"{r.rps * args.batch:,.0f} rows/s (p50 {r.percentile_ms(50):.1f} ms, "
                    f"p99 {r.percentile_ms(99):.1f} ms per batch)"
                )
        if kind in ours and kind in theirs:
            ratio = ours[kind].result.rps / max(theirs[kind].result.rps, 1e-9)
            lines.append(
                f"batch throughput as {form}: workbench / mlflow = {ratio:.2f}x "
                f"(goal >= {BATCH_GOAL_RATIO:g}x: {_met(ratio >= BATCH_GOAL_RATIO)})"
            )
    if "columns" in ours and "records" in theirs:
        ratio = ours["columns"].result.rps / max(theirs["records"].result.rps, 1e-9)
        lines.append(
            f"batch throughput, ours as columns / mlflow's as records = {ratio:.2f}x (the "
            f"issue's 1.09x was records against records)"
        )
    if big_line:
        lines.append(big_line)
    if log_line:
        lines.append(log_line)
    for name, phases in (("workbench serve", ours), ("mlflow models serve", theirs)):
        for kind, phase in phases.items():
            r = phase.result
            if r.failures:
                failed = True
                lines.append(
                    f"FAILURES: {name}, {kind}: {r.failures:,} of {r.ok + r.failures:,} requests "
                    f"failed; first: {' | '.join(r.failure_samples)}"
                )
    for c, w in wrk_ours.items():
        if w.failures:
            lines.append(
                f"FAILURES: wrk, {c} connections: {w.non_2xx:,} non-2xx answers, "
                f"{w.socket_errors:,} socket errors of {w.requests:,} requests"
            )
    print("\n".join(lines))
    return 1 if failed else 0


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _split(records: list[dict[str, Any]], features: list[str]) -> dict[str, Any]:
    return {"columns": features, "data": [[r[f] for f in features] for r in records]}


def _big_batches(server: Server, body: bytes, project: Project, args: argparse.Namespace) -> str:
    """Batches of BIG_BATCH rows as columns, one at a time for a few seconds: the server's
    own time per batch (the latency it logs) and the client's, as p50 and max."""
    from workbench.store.db import Db

    _note(f"{server.name}, batches of {BIG_BATCH:,} one at a time")
    started = time.time()
    client: list[float] = []
    deadline = time.perf_counter() + max(3.0, args.duration / 2)
    while time.perf_counter() < deadline or len(client) < 5:
        t = time.perf_counter()
        status, text = _request(server.port, "POST", "/predict", body)
        client.append((time.perf_counter() - t) * 1000)
        if status != 200:
            raise BenchError(
                f"{server.name}: a batch of {BIG_BATCH:,} answered {status}: "
                f"{text[:300].decode(errors='replace')}"
            )
    time.sleep(project.config.serving.log_interval_s + 1.0)  # the writer's next flush
    rows = Db(project.logs).rows(
        "SELECT latency_ms FROM predictions WHERE ts >= to_timestamp(?) AND status = 200 "
        "GROUP BY ts, latency_ms HAVING count(*) = ? ORDER BY latency_ms",
        [started, BIG_BATCH],
    )
    server_ms = sorted(float(r["latency_ms"]) for r in rows)
    client.sort()
    mid = server_ms[len(server_ms) // 2] if server_ms else math.nan
    return (
        f"workbench serve, batches of {BIG_BATCH:,} rows as columns, one at a time "
        f"({len(client)} batches): server time p50 {mid:.1f} ms, max "
        f"{server_ms[-1] if server_ms else math.nan:.1f} ms (goal < {BIG_GOAL_MS:g} ms: "
        f"{mid / BIG_GOAL_MS:.2f}x of it); client time p50 {client[len(client) // 2]:.1f} ms "
        f"(the body's JSON both ways over loopback included)"
    )


def _answered(server: Server) -> int:
    """Predictions the server says it answered (its /metrics), just before it is stopped."""
    _, text = _request(server.port, "GET", "/metrics")
    return sum(
        int(float(m.group(1)))
        for m in re.finditer(rb"^workbench_predictions_total\{[^}]*\} (\S+)$", text, re.M)
    )


# --- the project and its requests ----------------------------------------------------------


def _ensure_demo(root: Path) -> None:
    """Make the demo project at `root`, or finish one there (a no-op when it is complete)."""
    have = (root / "workbench.toml").is_file() and any(
        v.aliases for v in mlflow_store.read_model_versions(root / ".workbench" / "mlflow.db")
    )
    if have:
        return
    _note(f"making the demo project in {root} (trains two models, about a minute)")
    out = subprocess.run(
        [sys.executable, "-m", "workbench", "demo", str(root), "--headless", "--first-act-only"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise BenchError(f"workbench demo {root} --headless failed:\n{out.stdout}{out.stderr}")


def _records(project: Project, features: list[str], n: int) -> list[dict[str, Any]]:
    """`n` real rows of the project's data (features only), a fixed sample. Rows with a
    missing value are left out: the signature marks every feature required, and workbench
    serve answers 422 to a null in one (mlflow's server scores it as NaN)."""
    df = load_frame(project.data_path).select(features)
    df = df.fill_nan(None).drop_nulls()
    return df.sample(n=min(n, df.height), seed=7, shuffle=True).to_dicts()


def _flavor(model_dir: Path) -> str:
    import yaml

    meta = yaml.safe_load((model_dir / "MLmodel").read_text())
    names = [f for f in meta.get("flavors", {}) if f != "python_function"] or ["pyfunc"]
    return FLAVOR_NAMES.get(names[0], names[0])


def _logged(db: Any) -> dict[str, int]:
    row = db.rows(
        "SELECT count(*) AS n, count(*) FILTER (WHERE status = 200) AS ok FROM predictions"
    )[0]
    return {"n": int(row["n"]), "ok": int(row["ok"] or 0)}


if __name__ == "__main__":
    raise SystemExit(main())
