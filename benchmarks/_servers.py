"""The servers `benchmarks/serving.py` measures: started, waited for, probed, loaded and
stopped as separate process groups (one line on failure, everything they started cleaned up)."""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from _loadgen import LoadResult, build_request, free_port, run_load

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
HOST = "127.0.0.1"
JSON = "application/json"


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
    server: Server,
    path: str,
    bodies: list[bytes],
    n: int,
    args: argparse.Namespace,
    connections: int,
) -> Phase:
    kind = "single record" if n == 1 else f"batches of {n:,}"
    _note(
        f"{server.name}, {kind}, {connections} connection(s): "
        f"{args.warmup:g} s warm-up + {args.duration:g} s"
    )
    requests = [build_request("POST", path, HOST, server.port, b, JSON) for b in bodies]
    result = run_load(HOST, server.port, requests, connections, args.warmup, args.duration)
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
