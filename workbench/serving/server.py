"""The inference server: `python -m workbench.serving` (started by `workbench serve` through a
runner, so it runs as a local process or in a container).

A plain ASGI app on uvicorn (httptools, uvloop when installed): no framework between the
socket and the model. Predict requests are validated against the model's signature, scored on
the event loop (a LightGBM row: ~20 us), logged (a deque append) and counted.

Routing is one immutable `Routes` value: a reconciler thread polls the deployment state, loads
the models it needs, swaps `Routes` in one assignment (no change drops a request), and judges
the canary (canary_rule), rolling it back when it is worse. Workers: serving.workers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.project import Project
from workbench.serving import deployments
from workbench.serving.canary_rule import LiveWindow, judge
from workbench.serving.canary_value import ValueWatch
from workbench.serving.endpoints import (
    ALLOW,
    GETS,
    ReadEndpoints,
    Receive,
    Send,
    dumps,
    dumps_answer,
    header_value,
    read_body,
    respond,
)
from workbench.serving.label_payloads import parse_labels
from workbench.serving.listen import bind
from workbench.serving.log_rows import one_line
from workbench.serving.metrics import Metrics, ServerMetrics
from workbench.serving.payloads import PayloadError, parse_records
from workbench.serving.prediction_log import LogRefused, PredictionLogger
from workbench.serving.responses import passthrough_fields, sticky_record, with_passthrough
from workbench.serving.routes import Routes, Variant
from workbench.serving.runtime import have, quick_switches, settle_heap
from workbench.serving.signature import ModelError
from workbench.serving.state_watch import StateWatch, registry_files
from workbench.store.parquet_log import ParquetLog, utcnow

MAX_BODY = 64 * 1024 * 1024
PACE_MAX_S = 0.5  # the longest a request waits for a lagging log writer before it goes on
PACE_FULL_S = 5.0  # the same, once the log's queue is half full (then the 503s are near)
OFFLOAD_ROWS = 128  # batches at least this big are scored off the event loop
TOO_LARGE = dumps({"error": "body: larger than 64 MiB"})


class InferenceServer(ReadEndpoints):
    """The ASGI app plus the state it serves."""

    def __init__(
        self,
        project: Project,
        logger: PredictionLogger,
        alias: str | None = None,
        token: str | None = None,
        public_url: str = "",
        job_id: str | None = None,
    ) -> None:
        self.project = project
        self.model = project.config.model_name
        self.alias = alias or project.config.serving.alias
        self.logger = logger
        self.token = token.encode() if token else None
        self.public_url = public_url
        self.job_id = job_id
        self.max_batch = project.config.serving.max_batch
        self.passthrough = passthrough_fields(project.config)
        self.routes: Routes | None = None
        self.metrics: Metrics = ServerMetrics()
        rule = project.config.serving.canary
        self.windows = {v: LiveWindow(rule.window_s) for v in ("production", "canary")}
        self.value_watch = ValueWatch(project)  # the canary rule's [monitoring.value] figures
        self.last_error: str | None = None
        self.started_at = utcnow().isoformat(timespec="seconds")
        self._spec: tuple[int, dict[str, Any]] | None = None
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="predict")
        self.tag = ""  # a worker's "[worker N] " before each line it prints
        self.extra_headers: list[tuple[bytes, bytes]] = []  # on every prediction's response

    # --- ASGI -------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                while True:
                    message = await receive()
                    kind = message["type"]
                    await send({"type": kind + ".complete"})
                    if kind == "lifespan.shutdown":
                        return
            return
        try:
            await self._route(scope, receive, send)
        except Exception as exc:  # the last resort: an answer and one log line, never a
            await self._internal_error(scope, send, exc)  # dropped connection

    async def _route(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if method == "POST" and (path == "/predict" or path == "/invocations"):
            if self.token is not None and not self._authorized(scope):
                return await self._unauthorized(send)
            body = await read_body(scope, receive, MAX_BODY)
            if body is None:
                return await respond(send, 413, TOO_LARGE)
            return await self._predict(body, path, scope, send)
        route = GETS.get(path)
        if route is not None and (method == "GET" or method == "HEAD"):
            if path not in ("/health", "/ready") and not self._authorized(scope):
                return await self._unauthorized(send)
            return await route(self, send)
        if path == "/labels" and method == "POST":
            if not self._authorized(scope):
                return await self._unauthorized(send)
            body = await read_body(scope, receive, MAX_BODY)
            if body is None:
                return await respond(send, 413, TOO_LARGE)
            return await self._labels(body, send)
        allow = ALLOW.get(path)
        if allow is None:
            error = f"{path}: no such endpoint (see /docs)"
            return await respond(send, 404, dumps({"error": one_line(error)}))
        if method == "OPTIONS":
            return await respond(send, 204, b"", [(b"allow", allow)])
        error = f"{method} {path}: method not allowed (allowed: {allow.decode()})"
        await respond(send, 405, dumps({"error": one_line(error)}), [(b"allow", allow)])

    async def _internal_error(self, scope: dict[str, Any], send: Send, exc: Exception) -> None:
        where = f"{scope.get('method')} {scope.get('path')}"
        line = one_line(f"{where}: internal error: {type(exc).__name__}: {exc}")
        print(f"error: {line}", file=sys.stderr, flush=True)
        with contextlib.suppress(Exception):  # the response had started: uvicorn closes
            await respond(send, 500, dumps({"error": line}))

    def _authorized(self, scope: dict[str, Any]) -> bool:
        if self.token is None:
            return True
        for name, value in scope["headers"]:
            if name == b"authorization":
                return value.startswith(b"Bearer ") and hmac.compare_digest(value[7:], self.token)
        return False

    async def _unauthorized(self, send: Send) -> None:
        body = dumps({"error": "missing or wrong bearer token (Authorization: Bearer TOKEN)"})
        await respond(send, 401, body, [(b"www-authenticate", b"Bearer")])

    async def _predict(self, body: bytes, path: str, scope: dict[str, Any], send: Send) -> None:
        if self.logger.behind():  # the log writer lags: let it have the GIL for a while
            await self._pace()
        started = time.perf_counter()
        routes = self.routes
        if routes is None:
            detail = self.last_error or "the model is loading"
            return await respond(send, 503, dumps({"error": f"not ready: {detail}"}))
        variant = routes.pick() if routes.sticky_key is None else routes.production
        try:
            parsed = parse_records(
                body, variant.predictor.signature, self.max_batch, self.passthrough
            )
        except PayloadError as exc:
            line = exc.line()
            self._log_failure(body, variant, 422, line, started, path)
            error = dumps({"error": line, "detail": exc.detail()})
            return await respond(send, 422, error, self.extra_headers)
        if routes.sticky_key is not None:
            variant = routes.pick(sticky_record(parsed))
        if variant.name == "canary" and self.vetoed(routes):
            variant = routes.production
        try:
            if len(parsed.records) < OFFLOAD_ROWS:
                outputs = variant.predictor.predict(parsed.records)
            else:
                # Big batches score on a worker thread: LightGBM's C code runs without the
                # GIL, so the loop parses the next request on the other core meanwhile.
                loop = asyncio.get_running_loop()
                outputs = await loop.run_in_executor(
                    self._pool, variant.predictor.predict, parsed.records
                )
        except Exception as exc:  # a model that fails must not take the server down
            line = f"the model (v{variant.version}) failed: {type(exc).__name__}: {exc}"
            line = line.splitlines()[0][:500]
            self._log_failure(body, variant, 500, line, started, path)
            return await respond(send, 500, dumps({"error": line}), self.extra_headers)
        given = parsed.request_ids
        if any(given):
            fresh = iter(self.logger.new_ids(given.count(None)))
            ids = [rid or next(fresh) for rid in given]
        else:
            ids = self.logger.new_ids(len(given))
        if parsed.single:
            fields, one = variant.shaper.single(outputs[0])
            payload: dict[str, Any] = {"request_id": ids[0], **fields}
            logged = [one]
        else:
            fields, logged = variant.shaper.batch(outputs)
            payload = {"request_ids": ids, **fields}
        with_passthrough(payload, parsed)
        seconds = time.perf_counter() - started
        latency_ms = seconds * 1000.0
        model, version, name = self.model, variant.version, variant.name
        try:
            self.logger.log_many(
                ids, model, version, name, parsed.records, logged, latency_ms,
                passthrough=parsed.passthrough,
            )  # fmt: skip
        except LogRefused as exc:  # refused, not lost silently: the client can retry
            self.metrics.observe(path, name, version, 503, seconds, 0)
            error = dumps({"error": f"not logged, so not answered: {exc}"})
            return await respond(send, 503, error, [(b"retry-after", b"1")])
        self.metrics.observe(path, name, version, 200, seconds, len(outputs))
        self.windows[name].add(latency_ms, False)
        payload.update(model=model, version=version, variant=name)
        headers = [(b"x-request-id", header_value(ids[0])), *self.extra_headers]
        await respond(send, 200, dumps_answer(payload), headers)

    async def _pace(self) -> None:
        """Wait (PACE_MAX_S; PACE_FULL_S once its queue is half full) while the log writer
        catches up. Every request in flight waits here, so the loop idles and the writer
        runs: the server answers at the rate it can log, instead of refusing (503)."""
        start = time.monotonic()
        while self.logger.behind():
            limit = PACE_FULL_S if self.logger.congested() else PACE_MAX_S
            if time.monotonic() - start >= limit:
                return
            await asyncio.sleep(0.002)

    def _log_failure(
        self, body: bytes, variant: Variant, status: int, line: str, started: float, path: str
    ) -> None:
        seconds = time.perf_counter() - started
        text = body[:2048].decode("utf-8", "replace")
        with contextlib.suppress(LogRefused, RuntimeError):  # answered; its log row spared
            self.logger.log(
                self.logger.new_ids(1)[0], self.model, variant.version, variant.name,
                json.dumps(text), None, seconds * 1000.0, status, line,
            )  # fmt: skip
        self.metrics.observe(path, variant.name, variant.version, status, seconds, 0)
        if status >= 500:
            self.windows[variant.name].add(seconds * 1000.0, True)

    async def _labels(self, body: bytes, send: Send) -> None:
        routes = self.routes
        if routes is None:  # the classes labels name come with the model
            detail = self.last_error or "the model is loading"
            return await respond(send, 503, dumps({"error": f"not ready: {detail}"}))
        try:
            labels = parse_labels(body, task=routes.production.shaper.task)
        except PayloadError as exc:
            return await respond(send, 422, dumps({"error": exc.line(), "detail": exc.detail()}))
        rows = [
            {"ts": utcnow(), "request_id": rid, "label": value, "source": "POST /labels"}
            for rid, value in labels
        ]
        # A file write per request: labels arrive in batches, far rarer than predictions.
        await asyncio.get_running_loop().run_in_executor(
            None, ParquetLog(self.project.logs_root, "labels").append, rows
        )
        await respond(send, 200, dumps({"accepted": len(rows)}))

    # --- the reconciler -----------------------------------------------------------------------

    def report(self, applied: int | None = None) -> dict[str, Any]:
        routes = self.routes
        return {
            "url": self.public_url,
            "pid": os.getpid(),
            "host_name": socket.gethostname(),
            "job_id": self.job_id,
            "model": self.model,
            "alias": self.alias,
            "started_at": self.started_at,
            "heartbeat": time.time(),
            "applied_generation": applied if applied is not None else -1,
            "token": self.token is not None,
            "last_error": self.last_error,
            **(routes.describe() if routes else {}),
        }

    def reconcile_forever(self, poll_s: float = 0.2) -> None:
        from workbench.serving.predictors import load_predictor, model_dir_for, task_of

        cache: dict[int, Any] = {}
        applied: tuple[Any, ...] | None = None
        applied_gen = -1
        last_report = 0.0
        rule = self.project.config.serving.canary

        def predictor(version: int) -> Any:
            if version not in cache:
                task_of(self.project, version)  # a plain-MLflow version's task file, made now
                cache[version] = load_predictor(model_dir_for(self.project, version), version)
                self.logger.use_version(self.project, version, cache[version].model_dir)
                settle_heap(first=self.routes is None)
            return cache[version]

        watch = StateWatch(deployments.state_path(self.project), registry_files(self.project))
        state: Any = None
        prod: int | None = None
        while not self._stop.is_set():
            try:
                if state is None or watch.due():  # stat the files; read them on a change
                    watch.read()
                    state = deployments.read_state(self.project)
                    prod = deployments.production_version(self.project, state, self.alias)
                if prod is None:
                    raise WorkbenchError(
                        f"model {self.model!r} has no version with alias {self.alias!r} "
                        f"(workbench promote VERSION --alias {self.alias})"
                    )
                canary = state.canary if state.canary and state.canary.version != prod else None
                want = (prod, canary)
                if want != applied:
                    routes = Routes(
                        Variant("production", prod, predictor(prod)),
                        Variant("canary", canary.version, predictor(canary.version))
                        if canary
                        else None,
                        canary.traffic if canary else 0.0,
                        canary.sticky_key if canary else None,
                        state.generation,
                    )
                    first = self.routes is None
                    self.routes = routes  # the swap: one assignment, seen by the next request
                    if applied is None or (canary and applied[1] is None):
                        self.canary_started(canary.version if canary else None)
                    applied = want
                    for version in [v for v in cache if v not in (prod, canary and canary.version)]:
                        del cache[version]
                    self.last_error = None
                    if first:
                        self.say(
                            f"serving {self.model}@{self.alias} (v{prod}) at {self.public_url} "
                            f"(API docs: {self.public_url}/docs)"
                        )
                    else:
                        self.say(f"now serving: {json.dumps(routes.describe())}")
                if applied_gen != state.generation:
                    applied_gen = state.generation
                    last_report = self.publish(applied_gen, last_report, changed=True)
                if self.routes and self.routes.canary:
                    self._judge_canary(rule)
            except (WorkbenchError, ModelError, OSError, ValueError) as exc:
                watch.forget()  # read everything again at the next poll
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if message != self.last_error:
                    self.say(f"error: {message}", error=True)
                self.last_error = message
            last_report = self.publish(applied_gen, last_report)
            self._stop.wait(poll_s)

    def say(self, line: str, error: bool = False) -> None:
        print(f"{self.tag}{line}", file=sys.stderr if error else sys.stdout, flush=True)

    def publish(self, applied: int, last_report: float, changed: bool = False) -> float:
        """The server's report, on a change and every 2 s; returns when it was written."""
        if changed or time.monotonic() - last_report > 2.0:
            deployments.write_server(self.project, self.report(applied))
            return time.monotonic()
        return last_report

    def canary_started(self, version: int | None) -> None:
        """A canary is served from now on: its window starts empty."""
        self.windows["canary"].clear()
        self.value_watch.reset()

    def _judge_canary(self, rule: Any) -> None:
        prod, canary = self.windows["production"].stats(), self.windows["canary"].stats()
        if self.routes is not None:
            version = self.routes.production.version
            prod, canary = self.value_watch.apply(rule, prod, canary, version)
        reason = judge(rule, prod, canary)
        if reason is None or self.routes is None:
            return
        # Production takes all traffic now; the state change and audit record follow.
        self.routes = Routes(self.routes.production, generation=self.routes.generation)
        self.say(f"auto-rollback: {reason}")
        deployments.rollback_canary(self.project, f"auto-rollback: {reason}", actor="auto-rollback")

    def vetoed(self, routes: Routes) -> bool:
        """Whether `routes`' canary was rolled back already (one process: never, it swaps)."""
        return False

    def before_serving(self) -> None:
        """Before the socket is served (one process: at once; /ready says it loads)."""

    def stop(self) -> None:
        self._stop.set()


def serve(
    project: Project,
    host: str,
    port: int,
    alias: str | None = None,
    public_url: str | None = None,
    job_id: str | None = None,
    workers: int = 1,
) -> int:
    """Serve until SIGINT or SIGTERM (workers > 1: forked processes, serving.workers)."""
    cfg = project.config.serving
    token = os.environ.get(cfg.token_env) or None
    sock = bind(host, port)
    url = public_url or f"http://{host}:{sock.getsockname()[1]}"
    kwargs: dict[str, Any] = {"alias": alias, "token": token, "public_url": url, "job_id": job_id}
    if workers > 1:
        from workbench.serving.workers import supervise

        return supervise(project, sock, url, workers, kwargs)
    logger = PredictionLogger(project.logs_root, cfg.log_max_rows, cfg.log_interval_s)
    app = InferenceServer(project, logger, **kwargs)
    try:
        run_app(app, sock)
    finally:
        deployments.clear_server(project, os.getpid())
        print(f"stopped; {logger.written} predictions logged", flush=True)
    return 0


def run_app(app: InferenceServer, sock: socket.socket) -> None:
    """Run `app` (and its reconciler) on `sock` until SIGINT or SIGTERM, then flush its log."""
    import uvicorn

    quick_switches()
    reconciler = threading.Thread(target=app.reconcile_forever, name="reconciler", daemon=True)
    reconciler.start()
    app.before_serving()
    config = uvicorn.Config(
        app,
        loop=have("uvloop", "asyncio"),
        http=have("httptools", "h11"),
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
    # uvicorn turns SIGINT/SIGTERM into a graceful shutdown, then raises the signal again
    # for the handler that was there before it: make that one a no-op, so the process lives
    # on to flush the prediction log below instead of dying by the default handler.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: None)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        app.stop()
        reconciler.join(timeout=5)
        app.logger.close()  # every buffered prediction reaches Parquet before we exit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.serving")
    parser.add_argument("--project", default=".")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--alias", default=None)
    parser.add_argument("--public-url", default=None)
    parser.add_argument("--job-id", default=None)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        from workbench.serving.workers import workers_for

        project = Project.load(Path(args.project))
        cfg = project.config.serving
        return serve(
            project,
            args.host or cfg.host,
            cfg.port if args.port is None else args.port,
            args.alias,
            args.public_url,
            args.job_id,
            workers_for(project, args.workers),
        )
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
