"""A closed-loop HTTP/1.1 load generator for the serving benchmark.

C keep-alive connections, each sending one request, waiting for its whole response, then
sending the next. Requests are prebuilt bytes; responses are parsed by hand (status line,
Content-Length or chunked body), every status is checked, every latency is timed with
`time.perf_counter_ns`. Runs on uvloop when it is installed; the caller runs it in a process
of its own (not a server's), so client and server never share a GIL.

    python benchmarks/_loadgen.py trivial-server PORT    # a raw asyncio server, for the ceiling
    python benchmarks/_loadgen.py self-test              # that ceiling, measured
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

RECONNECT_PAUSE_S = 0.05
DRAIN_TIMEOUT_S = 10.0  # after the measured window, in-flight requests get this long
MAX_FAILURE_SAMPLES = 3


def build_request(
    method: str, path: str, host: str, port: int, body: bytes = b"", content_type: str = ""
) -> bytes:
    """The bytes of one HTTP/1.1 request, built once and sent many times."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LoadResult:
    """One phase: warm-up, then `duration_s` measured, then the in-flight requests drained."""

    duration_s: float
    concurrency: int
    latencies_ns: list[int] = field(default_factory=list)  # responses inside the window
    measured_ok: int = 0  # 200s that completed inside the measured window
    ok: int = 0  # every 200, warm-up and drain included
    failures: int = 0  # non-200 statuses, lost connections, timeouts (every part)
    failure_samples: list[str] = field(default_factory=list)
    first_body: bytes = b""

    @property
    def rps(self) -> float:
        return self.measured_ok / self.duration_s

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile of the measured latencies, in ms (nan when none)."""
        if not self.latencies_ns:
            return float("nan")
        ordered = sorted(self.latencies_ns)
        rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100)
        return ordered[int(rank) - 1] / 1e6

    def fail(self, why: str) -> None:
        self.failures += 1
        if len(self.failure_samples) < MAX_FAILURE_SAMPLES:
            self.failure_samples.append(why)


class _Conn(asyncio.Protocol):
    """One keep-alive connection running its own closed loop of requests."""

    def __init__(self, gen: _Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.sent_ns = 0
        self.in_flight = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        self.buf = b""
        self.in_flight = True
        req = self.gen.next_request()
        self.sent_ns = time.perf_counter_ns()
        self.transport.write(req)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        buf = self.buf + data if self.buf else data
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            self.buf = buf
            return
        head = buf[:head_end].lower()
        body_start = head_end + 4
        cl = head.find(b"\r\ncontent-length:")
        if cl >= 0:
            eol = head.find(b"\r\n", cl + 2)
            length = int(head[cl + 17 : eol if eol >= 0 else len(head)])
            if len(buf) < body_start + length:
                self.buf = buf
                return
            body = buf[body_start : body_start + length]
        elif b"transfer-encoding: chunked" in head:
            if not buf.endswith(b"0\r\n\r\n"):
                self.buf = buf
                return
            body = _dechunk(buf[body_start:])
        else:  # no length: the body ends with the connection (not keep-alive)
            self.buf = buf
            return
        self.buf = b""
        self.in_flight = False
        status = int(buf[9:12])
        keep = b"\r\nconnection: close" not in head
        self.gen.done(self, status, body, self.sent_ns, now)
        if not keep and self.transport is not None:
            self.transport.close()
        elif not self.gen.stopping:
            self.send()
        elif self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.in_flight:
            self.in_flight = False
            self.gen.result.fail(f"connection lost mid-request ({exc or 'closed by the server'})")
        if not self.closed.done():
            self.closed.set_result(None)


def _dechunk(data: bytes) -> bytes:
    out, i = [], 0
    while True:
        eol = data.find(b"\r\n", i)
        size = int(data[i:eol].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(data[eol + 2 : eol + 2 + size])
        i = eol + 2 + size + 2


class _Generator:
    def __init__(
        self,
        host: str,
        port: int,
        requests: Sequence[bytes],
        concurrency: int,
        warmup_s: float,
        duration_s: float,
    ) -> None:
        self.host, self.port = host, port
        self.requests = requests
        self.n = 0
        self.concurrency = concurrency
        self.warmup_s, self.duration_s = warmup_s, duration_s
        self.result = LoadResult(duration_s=duration_s, concurrency=concurrency)
        self.stopping = False
        self.start_ns = self.end_ns = 0

    def next_request(self) -> bytes:
        self.n += 1
        return self.requests[self.n % len(self.requests)]

    def done(self, conn: _Conn, status: int, body: bytes, sent_ns: int, now_ns: int) -> None:
        res = self.result
        if status != 200:
            res.fail(f"HTTP {status}: {body[:300].decode(errors='replace')}")
            return
        res.ok += 1
        if not res.first_body:
            res.first_body = body
        if self.start_ns <= now_ns < self.end_ns:
            res.measured_ok += 1
            res.latencies_ns.append(now_ns - sent_ns)
        elif now_ns >= self.end_ns:
            self.stopping = True

    async def _connection(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.stopping:
            try:
                _, conn = await loop.create_connection(lambda: _Conn(self), self.host, self.port)
            except OSError as exc:
                self.result.fail(f"cannot connect: {exc}")
                await asyncio.sleep(RECONNECT_PAUSE_S)
                continue
            await conn.closed  # the server closed it, or we did once stopping
            if not self.stopping:
                await asyncio.sleep(0)  # reconnect: a server that closes per request

    async def run(self) -> LoadResult:
        now = time.perf_counter_ns()
        self.start_ns = now + int(self.warmup_s * 1e9)
        self.end_ns = self.start_ns + int(self.duration_s * 1e9)
        tasks = [asyncio.ensure_future(self._connection()) for _ in range(self.concurrency)]
        await asyncio.sleep(self.warmup_s + self.duration_s)
        self.stopping = True  # idle connections (none, in a closed loop) would stop here
        _, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S)
        for task in pending:
            self.result.fail(f"no response within {DRAIN_TIMEOUT_S:.0f} s after the window")
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        return self.result


def run_load(
    host: str,
    port: int,
    requests: Sequence[bytes],
    concurrency: int = 8,
    warmup_s: float = 1.0,
    duration_s: float = 10.0,
) -> LoadResult:
    """Drive the server at host:port with `concurrency` closed loops cycling over `requests`."""
    gen = _Generator(host, port, requests, concurrency, warmup_s, duration_s)
    return _run(gen.run())


def _run(coro):  # type: ignore[no-untyped-def]
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


# wrk, an independent load generator, when it is installed -----------------------------------


@dataclass
class WrkResult:
    """What `wrk --latency` printed: throughput and latency percentiles over every request."""

    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int

    @property
    def failures(self) -> int:
        return self.non_2xx + self.socket_errors


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, body: bytes, connections: int, duration_s: float, scratch: Path) -> WrkResult:
    """POST `body` to `url` from `connections` keep-alive connections (closed loops, like
    ours) for `duration_s`, with wrk (`-t` at most 2: this machine's cores)."""
    scratch.mkdir(parents=True, exist_ok=True)
    data = scratch / f"wrk-body-{len(body)}.json"
    data.write_bytes(body)
    script = scratch / f"wrk-{len(body)}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{data}", "rb")\n'
        'wrk.body = f:read("*a")\n'
        "f:close()\n"
    )
    threads = max(1, min(2, connections))
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s:g}s", "--latency"]
    out = subprocess.run(
        [*cmd, "-s", str(script), url], capture_output=True, text=True, timeout=duration_s + 60
    )
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip()[:300]}")
    return parse_wrk(out.stdout, connections)


def parse_wrk(text: str, connections: int) -> WrkResult:
    def latency(q: str) -> float:
        m = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return WrkResult(
        connections=connections,
        rps=float(rps.group(1)) if rps else float("nan"),
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        requests=int(total.group(1)) if total else 0,
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=sum(int(g) for g in sock.groups()) if sock else 0,
    )


# A trivial server, to show the generator is not the bottleneck ------------------------------


class _TrivialServer(asyncio.Protocol):
    RESPONSE = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n"
        b'{"predictions":[0.5]}'
    )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].lower()
            cl = head.find(b"\r\ncontent-length:")
            length = 0
            if cl >= 0:
                eol = head.find(b"\r\n", cl + 2)
                length = int(head[cl + 17 : eol if eol >= 0 else len(head)])
            if len(self.buf) < head_end + 4 + length:
                return
            self.buf = self.buf[head_end + 4 + length :]
            self.transport.write(self.RESPONSE)


def serve_trivial(port: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_TrivialServer, "127.0.0.1", port)
        print(f"trivial server on {port}", flush=True)
        await server.serve_forever()

    _run(main())


def client_ceiling(
    requests: Sequence[bytes], concurrency: int = 8, duration_s: float = 2.0
) -> LoadResult:
    """Requests per second the generator reaches against a server that does nothing (its own
    process, started here and killed after)."""
    with TrivialServer() as port:
        reqs = [_retarget(r, port) for r in requests]
        return run_load("127.0.0.1", port, reqs, concurrency, 0.5, duration_s)


class TrivialServer:
    """A do-nothing server in a process of its own, for as long as the `with` lasts; its
    port is what `with` gives."""

    def __enter__(self) -> int:
        port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "trivial-server", str(port)],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # listening
        return port

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


def _retarget(request: bytes, port: int) -> bytes:
    head, sep, body = request.partition(b"\r\n\r\n")
    lines = [
        f"Host: 127.0.0.1:{port}".encode() if line.startswith(b"Host:") else line
        for line in head.split(b"\r\n")
    ]
    return b"\r\n".join(lines) + sep + body


if __name__ == "__main__":
    if sys.argv[1:2] == ["trivial-server"]:
        serve_trivial(int(sys.argv[2]))
    elif sys.argv[1:2] == ["self-test"]:
        body = b'{"amount": 12.5, "merchant_category": "grocery", "hour": 13}'
        req = build_request("POST", "/predict", "127.0.0.1", 0, body, "application/json")
        for c in (1, 8):
            r = client_ceiling([req], concurrency=c, duration_s=3.0)
            print(
                f"load generator against a trivial server, {c} connection(s): {r.rps:,.0f} req/s, "
                f"p50 {r.percentile_ms(50):.3f} ms, p99 {r.percentile_ms(99):.3f} ms, "
                f"{r.failures} failures"
            )
    else:
        raise SystemExit(__doc__)
