"""The inference server's read-only endpoints (health, readiness, version, deployment,
metrics, the OpenAPI spec and its page), and the helpers every response goes through.

A mixin of `workbench.serving.server.InferenceServer`: the state it reads (routes, logger, metrics,
windows) is the server's own.
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any

import orjson

from workbench import __version__
from workbench.serving.metrics import Metrics

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.serving.canary_rule import LiveWindow
    from workbench.serving.prediction_log import PredictionLogger

JSON = [(b"content-type", b"application/json")]
Send = Any
Receive = Any


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes; pure ASCII (ensure_ascii), so any string a client sent, lone
    surrogates and control characters included, comes back escaped and on one line."""
    return json.dumps(obj, separators=(",", ":"), default=str).encode()


def dumps_answer(obj: Any) -> bytes:
    """`dumps` of a prediction's answer, through orjson (~10x json's speed on a batch's
    lists): the same JSON when it is ASCII, which nearly every answer is; one holding a
    non-ASCII string (an id, a passthrough value) or anything orjson refuses goes by `dumps`."""
    try:
        out = orjson.dumps(obj)
    except TypeError:
        return dumps(obj)
    return out if out.isascii() else dumps(obj)


async def read_body(scope: dict[str, Any], receive: Receive, limit: int) -> bytes | None:
    """The request body, or None when over `limit` bytes (a Content-Length says so first)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if len(value) > 12 or (value.isdigit() and int(value) > limit):
                return None
            break
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body  # type: ignore[no-any-return]
    chunks = [body]
    size = len(body)
    while message.get("more_body"):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    extra = headers or []
    if status == 204:  # no content: neither a type nor a length (RFC 9110 section 8.6)
        all_headers = extra
    else:
        typed = any(name == b"content-type" for name, _ in extra)
        length = (b"content-length", str(len(body)).encode())
        all_headers = [*extra, *(() if typed else JSON), length]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


def header_value(request_id: str) -> bytes:
    """The `x-request-id` value: UTF-8 (obs-text in RFC 9110 terms). It cannot make the HTTP
    layer raise: request ids hold no control character (workbench.serving.client_strings checks),
    every byte of a multi-byte UTF-8 sequence is >= 0x80, and a surrogate is escaped."""
    return request_id.encode("utf-8", "backslashreplace")


class ReadEndpoints:
    """GET (and HEAD) endpoints. The attributes below are set by InferenceServer."""

    project: Project
    model: str
    alias: str
    logger: PredictionLogger
    metrics: Metrics
    extra_headers: list[tuple[bytes, bytes]]  # a worker's x-worker-pid
    windows: dict[str, LiveWindow]
    routes: Any  # workbench.serving.server.Routes | None
    last_error: str | None
    started_at: str
    max_batch: int
    _spec: tuple[int, dict[str, Any]] | None  # (production version, its spec)

    async def _health(self, send: Send) -> None:
        await respond(send, 200, b'{"status":"ok"}', self.extra_headers)

    async def _ready(self, send: Send) -> None:
        routes = self.routes
        if routes is None:
            body = {"ready": False, "reason": self.last_error or "the model is loading"}
            return await respond(send, 503, dumps(body))
        refusal = self.logger.refusal()
        if refusal is not None:  # predictions would get a 503: say so to the balancer
            return await respond(send, 503, dumps({"ready": False, "reason": refusal}))
        await respond(send, 200, dumps({"ready": True, "model": self.model, **routes.describe()}))

    def version_info(self) -> dict[str, Any]:
        routes = self.routes
        return {
            "workbench": __version__,
            "model": self.model,
            "alias": self.alias,
            "started_at": self.started_at,
            **(routes.describe() if routes else {"generation": None, "production": None}),
        }

    async def _version(self, send: Send) -> None:
        await respond(send, 200, dumps(self.version_info()))

    async def _deployment(self, send: Send) -> None:
        live = {}
        for name, window in self.windows.items():
            stats = window.stats()
            live[name] = {
                "requests": stats.requests,
                "errors": stats.errors,
                "error_rate": stats.error_rate,
                "p99_ms": stats.p99_ms,
            }
        info = {**self.version_info(), "window_s": self.project.config.serving.canary.window_s}
        await respond(send, 200, dumps({**info, "live": live, "last_error": self.last_error}))

    async def _metrics(self, send: Send) -> None:
        routes = self.routes
        log = self.logger
        info: list[tuple[dict[str, str], float]] = []
        traffic = 0.0
        if routes is not None:
            info.append(({"variant": "production", "version": str(routes.production.version)}, 1))
            if routes.canary is not None:
                info.append(({"variant": "canary", "version": str(routes.canary.version)}, 1))
                traffic = routes.traffic
        text = self.metrics.render(
            {
                "workbench_model_info": ("The versions being served, by variant.", info),
                "workbench_canary_traffic_ratio": (
                    "Share of requests the canary gets.", [({}, traffic)],
                ),
                "workbench_prediction_log_rows_written": (
                    "Prediction log rows written to Parquet.", [({}, log.written)],
                ),
                "workbench_prediction_log_queue": (
                    "Prediction log rows waiting to be written.", [({}, log.queued)],
                ),
                "workbench_prediction_log_queue_limit": (
                    "Rows that may wait before predictions are refused (503).",
                    [({}, log.max_queued)],
                ),
                "workbench_prediction_log_writer_up": (
                    "1 while the prediction log writer runs; 0 once it stopped.",
                    [({}, 1 if log.writer_up else 0)],
                ),
                "workbench_prediction_log_accepting": (
                    "1 while the prediction log takes rows (0: predictions get a 503).",
                    [({}, 0 if log.refusal() else 1)],
                ),
                "workbench_ready": ("1 once a model is loaded.", [({}, 1 if routes else 0)]),
            },
            counters={
                "workbench_prediction_log_rows_quarantined_total": (
                    "Rows Parquet could not hold, put aside in predictions/_quarantine/.",
                    [({}, log.quarantined)],
                ),
                "workbench_prediction_log_rows_dropped_total": (
                    "Rows neither written nor quarantined (both writes failed).",
                    [({}, log.dropped)],
                ),
                "workbench_prediction_log_write_errors_total": (
                    "Failed attempts at writing a prediction log file (retried).",
                    [({}, log.write_errors)],
                ),
            },
        )  # fmt: skip
        await respond(send, 200, text.encode(), [(b"content-type", b"text/plain; version=0.0.4")])

    def openapi(self) -> dict[str, Any]:
        """The spec of production's model (made again once production changes version)."""
        routes = self.routes
        if routes is None:
            return {"openapi": "3.1.0", "info": {"title": self.model, "version": __version__}}
        production = routes.production
        if self._spec is None or self._spec[0] != production.version:
            from workbench.serving.openapi import openapi_spec

            spec = openapi_spec(
                production.predictor.signature,
                f"{self.model} inference",
                __version__,
                max_batch=self.max_batch,
                task=production.shaper.task,
                passthrough=getattr(self, "passthrough", ()),
            )
            self._spec = (production.version, spec)
        return self._spec[1]

    async def _openapi(self, send: Send) -> None:
        await respond(send, 200, dumps(self.openapi()))

    async def _docs(self, send: Send) -> None:
        spec = self.openapi()
        rows = []
        for path, ops in spec.get("paths", {}).items():
            for method, op in ops.items():
                summary = escape(str(op.get("summary", "")))
                rows.append(
                    f"<tr><td>{method.upper()}</td><td>{escape(path)}</td><td>{summary}</td></tr>"
                )
        schema = escape(json.dumps(spec.get("components", {}), indent=2))
        page = (
            f"<!doctype html><title>{escape(self.model)}: API</title>"
            f"<h1>{escape(self.model)} inference API</h1>"
            "<p>The machine-readable spec: <a href='/openapi.json'>/openapi.json</a>.</p>"
            f"<table border=1 cellpadding=4>{''.join(rows)}</table>"
            f"<h2>Schemas</h2><pre>{schema}</pre>"
        )  # fmt: skip
        await respond(send, 200, page.encode(), [(b"content-type", b"text/html; charset=utf-8")])


GETS = {
    "/health": ReadEndpoints._health,
    "/ready": ReadEndpoints._ready,
    "/version": ReadEndpoints._version,
    "/deployment": ReadEndpoints._deployment,
    "/metrics": ReadEndpoints._metrics,
    "/openapi.json": ReadEndpoints._openapi,
    "/docs": ReadEndpoints._docs,
}
#: The methods each path answers (the `Allow` header of a 405, and of OPTIONS).
POSTS = ("/predict", "/invocations", "/labels")
ALLOW = {
    **{path: b"GET, HEAD, OPTIONS" for path in GETS},
    **{path: b"POST, OPTIONS" for path in POSTS},
}
