"""Serving speed: `workbench serve` against `mlflow models serve`, same model, same requests.

Prints, for the production version of the demo project's model (fraud_detection):
- the load generator's ceiling against a server that does nothing (so it is not the bottleneck);
- requests per second and p50/p99 latency for single-record requests, for each server
  (goal: workbench >= 3x mlflow's requests per second, p99 < 10 ms, prediction logging on);
- rows per second for batches of 1,000 records, for each server;
- that every prediction sent to workbench is in its Parquet prediction log (read via DuckDB)
  after a SIGTERM.

Both servers run one worker, one at a time, each in its own process group; the load comes
from C keep-alive connections in closed loops (benchmarks/_loadgen.py) in this process.

    python benchmarks/serving.py [--project DIR] [--concurrency 8] [--duration 10]
                                 [--skip-mlflow] [--skip-ours]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loadgen import LoadResult, build_request, client_ceiling, free_port, run_load

from workbench.data.snapshot import load_frame
from workbench.project import Project
from workbench.store import mlflow_tables as mlflow_store

RPS_GOAL_RATIO = 3.0
P99_GOAL_MS = 10.0
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
HOST = "127.0.0.1"
JSON = "application/json"
FLAVOR_NAMES = {"lightgbm": "LightGBM", "sklearn": "scikit-learn", "xgboost": "XGBoost"}


class BenchError(Exception):
    """A server did not start, or did not answer as it should: one line, exit 1."""


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    output: Path  # its stdout + stderr (a file: a pipe nobody reads would block it)
    started: float  # perf_counter at spawn
    ready_s: float = math.nan
    family: dict[int, psutil.Process] = field(default_factory=dict)  # what it started

    def tail(self, lines: int = 40) -> str:
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Phase:
    """One measured phase, plus what it put in the prediction log."""

    label: str
    result: LoadResult
    records_per_request: int

    @property
    def ok_records(self) -> int:
        return self.result.ok * self.records_per_request


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", help="a trained project to reuse (made with `workbench demo`)")
    ap.add_argument("--concurrency", type=int, default=8, help="connections (closed loops)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds measured per phase")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per phase")
    ap.add_argument("--batch", type=int, default=1000, help="records per batch request")
    ap.add_argument("--skip-mlflow", action="store_true", help="measure workbench serve only")
    ap.add_argument("--skip-ours", action="store_true", help="measure mlflow models serve only")
    args = ap.parse_args()

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

    records = _records(project, features, n=max(1000, 8 * args.batch))
    single = [json.dumps(r).encode() for r in records[:1000]]
    batches = [
        json.dumps({"dataframe_records": records[i : i + args.batch]}).encode()
        for i in range(0, len(records) - args.batch + 1, args.batch)
    ][:8]

    lines = [
        f"model: {model} v{mv.version} ({_flavor(model_dir)}, {len(features)} features), "
        f"requests from {args.concurrency} connection{'s' if args.concurrency != 1 else ''} "
        f"for {args.duration:g} s each "
        f"(after {args.warmup:g} s of warm-up), 1 server worker each"
    ]
    ceiling = client_ceiling(
        [build_request("POST", "/predict", HOST, 0, single[0], JSON)], args.concurrency, 2.0
    )
    lines.append(
        f"load generator ceiling (a do-nothing asyncio server, same connections): "
        f"{ceiling.rps:,.0f} req/s, p50 {ceiling.percentile_ms(50):.2f} ms"
    )

    ours: dict[str, Phase] = {}
    theirs: dict[str, Phase] = {}
    log_line = ""
    failed = ceiling.failures > 0

    if not args.skip_ours:
        from workbench.store.db import Db

        before = _logged(Db(project.logs))
        server = _start(
            "workbench serve",
            [
                *(sys.executable, "-m", "workbench", "serve", "--project", str(root)),
                *("--port", "{port}", "--runner", "local"),
            ],
            scratch,
            servers,
            os.environ.copy(),
        )
        _wait_ready(server, "/ready")
        _probe(server, "/predict", single[0], batches[0])
        for kind, bodies, n in (("single", single, 1), ("batch", batches, args.batch)):
            ours[kind] = _phase(server, "/predict", bodies, n, args)
        stop_s = _stop(server)
        after = _logged(Db(project.logs))
        sent = 1 + args.batch + sum(p.ok_records for p in ours.values())  # probes + phases
        found = after["n"] - before["n"]
        found_ok = after["ok"] - before["ok"]
        n_req = 2 + sum(p.result.ok for p in ours.values())
        lost = sent - found_ok
        log_line = (
            f"prediction log: {sent:,} predictions sent in {n_req:,} successful requests "
            f"(warm-up included), {found:,} rows found in the Parquet log through DuckDB "
            f"after SIGTERM (stopped and flushed in {stop_s:.2f} s): "
            + ("none lost" if lost == 0 else f"{lost:,} MISSING" if lost > 0 else "extra rows")
        )
        failed |= lost != 0 or found != found_ok

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
        for kind, bodies, n in (("single", mlflow_single, 1), ("batch", batches, args.batch)):
            theirs[kind] = _phase(server, "/invocations", bodies, n, args)
        _stop(server)

    ready = [f"{s.name} {s.ready_s:.1f} s" for s in servers]
    lines.append(f"time from spawn to ready: {', '.join(ready)}")
    if "single" in ours:
        r = ours["single"].result
        p99 = r.percentile_ms(99)
        lines.append(
            f"workbench serve, single record: {r.rps:,.0f} req/s, p50 {r.percentile_ms(50):.1f} "
            f"ms, p99 {p99:.1f} ms (goal p99 < {P99_GOAL_MS:g} ms: {p99 / P99_GOAL_MS:.2f}x "
            f"of budget), prediction logging on"
        )
    if "single" in theirs:
        r = theirs["single"].result
        lines.append(
            f"mlflow models serve, single record: {r.rps:,.0f} req/s, p50 "
            f"{r.percentile_ms(50):.1f} ms, p99 {r.percentile_ms(99):.1f} ms (1 uvicorn worker, "
            f"its access log on as shipped, no prediction logging)"
        )
    if ours and theirs:
        ratio = ours["single"].result.rps / max(theirs["single"].result.rps, 1e-9)
        lines.append(
            f"single-record throughput: workbench / mlflow = {ratio:.2f}x "
            f"(goal >= {RPS_GOAL_RATIO:g}x: {'met' if ratio >= RPS_GOAL_RATIO else 'NOT met'})"
        )
    for name, phases in (("workbench serve", ours), ("mlflow models serve", theirs)):
        if "batch" in phases:
            r = phases["batch"].result
            lines.append(
                f"{name}, batches of {args.batch:,}: {r.rps * args.batch:,.0f} rows/s "
                f"(p50 {r.percentile_ms(50):.1f} ms, p99 {r.percentile_ms(99):.1f} ms per batch)"
            )
    if ours and theirs:
        ratio = ours["batch"].result.rps / max(theirs["batch"].result.rps, 1e-9)
        lines.append(f"batch throughput: workbench / mlflow = {ratio:.2f}x")
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
    print("\n".join(lines))
    return 1 if failed else 0


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


# --- servers ---------------------------------------------------------------------------------


def _note(text: str) -> None:
    print(f"  ... {text}", file=sys.stderr, flush=True)


def _start(
    name: str, cmd: list[str], scratch: Path, servers: list[Server], env: dict[str, str]
) -> Server:
    port = free_port()
    cmd = [str(port) if part == "{port}" else part for part in cmd]
    output = scratch / f"{name.replace(' ', '-')}.log"
    _note(f"starting {name} on port {port}")
    with open(output, "wb") as fh:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=scratch,
            start_new_session=True,  # its own process group: killpg takes its children too
        )
    server = Server(name, proc, port, output, started=time.perf_counter())
    servers.append(server)
    return server


def _wait_ready(server: Server, path: str) -> None:
    deadline = server.started + READY_TIMEOUT_S
    while time.perf_counter() < deadline:
        if not server.alive():
            raise BenchError(
                f"{server.name} exited with {server.proc.returncode} before it was ready; "
                f"its output:\n{server.tail()}"
            )
        try:
            status, _ = _request(server.port, "GET", path, timeout=2.0)
            if status == 200:
                server.ready_s = time.perf_counter() - server.started
                _note(f"{server.name} ready in {server.ready_s:.1f} s")
                _adopt(server)
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise BenchError(
        f"{server.name}: GET {path} not 200 within {READY_TIMEOUT_S:.0f} s; "
        f"its output:\n{server.tail()}"
    )


def _request(
    port: int, method: str, path: str, body: bytes | None = None, timeout: float = 30.0
) -> tuple[int, bytes]:
    con = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        con.request(method, path, body=body, headers={"Content-Type": JSON} if body else {})
        resp = con.getresponse()
        return resp.status, resp.read()
    finally:
        con.close()


def _probe(server: Server, path: str, single: bytes, batch: bytes) -> None:
    """One single record and one batch, before any load: each must get 200 and JSON."""
    for what, body in (("a single record", single), ("a batch", batch)):
        status, text = _request(server.port, "POST", path, body)
        try:
            json.loads(text)
        except ValueError:
            status = -status
        if status != 200:
            raise BenchError(
                f"{server.name}: POST {path} with {what} answered {abs(status)}: "
                f"{text[:500].decode(errors='replace')}\nits output:\n{server.tail()}"
            )


def _phase(
    server: Server, path: str, bodies: list[bytes], n: int, args: argparse.Namespace
) -> Phase:
    kind = "single record" if n == 1 else f"batches of {n:,}"
    _note(f"{server.name}, {kind}: {args.warmup:g} s warm-up + {args.duration:g} s")
    requests = [build_request("POST", path, HOST, server.port, b, JSON) for b in bodies]
    result = run_load(HOST, server.port, requests, args.concurrency, args.warmup, args.duration)
    if not server.alive():
        raise BenchError(f"{server.name} died under load; its output:\n{server.tail()}")
    return Phase(kind, result, n)


def _stop(server: Server) -> float:
    """SIGTERM to its process group, as a person's Ctrl-C or a supervisor would; the seconds
    until it and every process it started have exited (the server flushes on the way)."""
    _adopt(server)
    t = time.perf_counter()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.proc.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(_tree(server), timeout=STOP_TIMEOUT_S)
    if alive:
        raise BenchError(
            f"{server.name}: {len(alive)} process(es) still running {STOP_TIMEOUT_S:.0f} s "
            f"after SIGTERM; its output:\n{server.tail()}"
        )
    return time.perf_counter() - t


def _adopt(server: Server) -> None:
    """Note every process the server started, now, while they are its descendants: the local
    runner starts the real server in a session of its own, out of reach of our killpg."""
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(server.proc.pid).children(recursive=True):
            server.family.setdefault(child.pid, child)


def _tree(server: Server) -> list[psutil.Process]:
    procs = list(server.family.values())
    with contextlib.suppress(psutil.Error):
        procs.insert(0, psutil.Process(server.proc.pid))
    return [p for p in procs if p.is_running()]


def _cleanup(server: Server) -> None:
    """Whatever is left of a server: SIGTERM first (a chance to flush), then SIGKILL, to its
    process group and to each process it started (by pid; psutil guards against pid reuse)."""
    if server.alive():
        _adopt(server)
    procs = _tree(server)
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if not procs:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(server.proc.pid, sig)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        _, procs = psutil.wait_procs(procs, timeout=wait_s)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.proc.wait(timeout=1)


if __name__ == "__main__":
    raise SystemExit(main())
