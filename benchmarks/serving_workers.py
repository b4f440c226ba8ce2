"""Serving on several workers: `workbench serve --workers W` against `mlflow models serve
--workers W`, same model, same single-record request, measured with `wrk`.

For each worker count (1, 2 and N, N = one per core capped at 8, unless --workers says
otherwise) prints requests per second and p50/p99 latency for both servers, and the ratio
ours/mlflow. Our server logs every prediction to Parquet while it is measured; mlflow's logs
nothing. The project setup is benchmarks/serving.py's (the demo project, made on first use).

wrk (Debian: `apt-get install -y wrk`) runs from this machine too: on a machine with few cores
the load generator takes CPU from the servers, and the figures say so (the core count is
printed first).

    python benchmarks/serving_workers.py [--project DIR] [--workers 1,2,4] [--duration 10]
                                         [--connections 16] [--threads 2] [--skip-mlflow]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import HOST, BenchError, Server, _cleanup, _probe, _start, _stop, _wait_ready
from serving import _ensure_demo, _records  # the project setup of the one-worker benchmark

from workbench.project import Project
from workbench.serving.workers import default_workers
from workbench.store import mlflow_tables as mlflow_store

LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx responses and socket errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", help="a demo project (default: a new one in a temp folder)")
    ap.add_argument("--workers", help="comma-separated worker counts (default: 1,2,N)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--skip-mlflow", action="store_true")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (Debian: apt-get install -y wrk)", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    servers: list[Server] = []
    try:
        for line in _bench(args, scratch, servers):
            print(line, flush=True)
        return 0
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in servers:
            _cleanup(server)
        shutil.rmtree(scratch, ignore_errors=True)


def _counts(args: argparse.Namespace) -> list[int]:
    if args.workers:
        return sorted({int(w) for w in args.workers.split(",")})
    return sorted({1, 2, default_workers()})


def _bench(args: argparse.Namespace, scratch: Path, servers: list[Server]) -> list[str]:
    root = Path(args.project).resolve() if args.project else scratch / "proj"
    _ensure_demo(root)
    project = Project.load(root)
    model, alias = project.config.model_name, project.config.serving.alias
    versions = mlflow_store.read_model_versions(project.mlflow_db, model)
    mv = next((v for v in versions if alias in v.aliases), None)
    if mv is None or not mv.source:
        raise BenchError(f"{root}: no version of {model} holds the alias {alias!r}")
    from urllib.parse import unquote, urlparse

    model_dir = Path(unquote(urlparse(mv.source).path))
    record = _records(project, project.config.features, 1)[0]
    ours_body = json.dumps(record).encode()
    theirs_body = json.dumps({"dataframe_records": [record]}).encode()
    cores = os.cpu_count() or 1
    lines = [
        f"machine: {cores} cores (os.cpu_count), shared with wrk ({args.threads} threads) and "
        f"with whatever else runs here: more workers than free cores cannot scale",
        f"model: {model} v{mv.version}; single-record POSTs from {args.connections} keep-alive "
        f"connections, {args.duration:g} s per run after {args.warmup:g} s of warm-up",
    ]
    for workers in _counts(args):
        ours = _measure_ours(args, scratch, servers, root, workers, ours_body)
        line = f"{workers} worker(s): workbench serve {_fmt(ours)} (prediction logging on)"
        if not args.skip_mlflow:
            theirs = _measure_mlflow(
                args, scratch, servers, project, model_dir, workers, theirs_body
            )
            ratio = ours.rps / max(theirs.rps, 1e-9)
            line += f"; mlflow models serve {_fmt(theirs)}; ours/mlflow {ratio:.2f}x"
        lines.append(line)
        print(line, file=sys.stderr, flush=True)
    return lines


def _fmt(r: WrkResult) -> str:
    errors = f", {r.errors} errors" if r.errors else ""
    return f"{r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms{errors}"


def _measure_ours(
    args: argparse.Namespace,
    scratch: Path,
    servers: list[Server],
    root: Path,
    workers: int,
    body: bytes,
) -> WrkResult:
    cmd = [sys.executable, "-m", "workbench", "serve", "--project", str(root)]
    cmd += ["--port", "{port}", "--runner", "local", "--workers", str(workers)]
    server = _start(f"workbench serve x{workers}", cmd, scratch, servers, os.environ.copy())
    _wait_ready(server, "/ready")
    _wait_all_ready(server, root)
    _probe(server, "/predict", body, json.dumps([json.loads(body)] * 2).encode())
    result = _wrk(args, scratch, server.port, "/predict", body)
    _stop(server)
    return result


def _wait_all_ready(server: Server, root: Path) -> None:
    """Every worker has a model: the server's report says its lowest applied generation."""
    import time

    from workbench.serving import deployments

    project = Project.load(root)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        report = deployments.read_server(project)
        if report and report.get("applied_generation", -1) >= 0:
            return
        time.sleep(0.1)
    raise BenchError(f"{server.name}: not every worker was ready; its output:\n{server.tail()}")


def _measure_mlflow(
    args: argparse.Namespace,
    scratch: Path,
    servers: list[Server],
    project: Project,
    model_dir: Path,
    workers: int,
    body: bytes,
) -> WrkResult:
    env = os.environ.copy()
    env["MLFLOW_TRACKING_URI"] = project.tracking_uri
    import uvicorn  # mlflow runs `uvicorn` from PATH: the one installed beside this mlflow

    bins = [Path(sys.executable).parent, Path(uvicorn.__file__).parents[4] / "bin"]
    env["PATH"] = os.pathsep.join([*map(str, bins), env.get("PATH", "")])
    env.pop("MLFLOW_MODELS_WORKERS", None)
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir)]
    cmd += ["--env-manager", "local", "--host", HOST, "-p", "{port}", "--workers", str(workers)]
    server = _start(f"mlflow models serve x{workers}", cmd, scratch, servers, env)
    _wait_ready(server, "/ping")
    result = _wrk(args, scratch, server.port, "/invocations", body)
    _stop(server)
    return result


def _wrk(args: argparse.Namespace, scratch: Path, port: int, path: str, body: bytes) -> WrkResult:
    script = scratch / f"post-{port}.lua"
    script.write_text(LUA.format(body=json.dumps(body.decode())))
    url = f"http://{HOST}:{port}{path}"
    base = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-s", str(script)]
    subprocess.run([*base, "-d", f"{args.warmup:g}s", url], capture_output=True, check=False)
    out = subprocess.run(
        [*base, "-d", f"{args.duration:g}s", "--latency", url], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise BenchError(f"wrk failed: {out.stderr.strip() or out.stdout.strip()}")
    return _parse(out.stdout)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _parse(text: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)", text, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)", text, re.M)
    if not (rps and p50 and p99):
        raise BenchError(f"cannot read wrk's output:\n{text}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+)", text)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkResult(
        float(rps.group(1)),
        float(p50.group(1)) * _UNITS[p50.group(2)],
        float(p99.group(1)) * _UNITS[p99.group(2)],
        errors,
    )


if __name__ == "__main__":
    raise SystemExit(main())
