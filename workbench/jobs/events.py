"""The line protocol between a job and whoever runs it.

A job prints ordinary log lines, and event lines `@wb {json}`: `run` (the MLflow run it
opened), `progress`, `result` (a training job's model), `error`. Runners forward every line;
`decode` parses an event line once into one of the dataclasses below, so nobody downstream
indexes a dict. The wire format is fixed (recorded logs and job images speak it): `emit` of
an event writes the same JSON `decode` reads back.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PREFIX = "@wb "

#: The pipeline's steps, in order, as its `on_step` callback names them. Here (a light
#: module) so a UI can lay them out without importing the pipeline.
PIPELINE_STEPS = ("validate", "train", "evaluate", "gate", "register", "alias")


@dataclass(frozen=True)
class Run:
    """The job opened this MLflow run (first thing a training job says)."""

    run_id: str


@dataclass(frozen=True)
class Progress:
    iteration: int
    total: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    """A training job's result: the run, its model, its final metrics and data snapshot."""

    run_id: str
    model_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    data_digest: str = ""
    flavor: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # fields this version does not know

    def to_dict(self) -> dict[str, Any]:
        """The result's fields as the wire has them (without the event name)."""
        known = {
            "run_id": self.run_id,
            "model_uri": self.model_uri,
            "metrics": dict(self.metrics),
            "data_digest": self.data_digest,
            "flavor": self.flavor,
        }
        return {**known, **self.extra}


@dataclass(frozen=True)
class Error:
    message: str


@dataclass(frozen=True)
class Unknown:
    """An event this version does not know (a newer job's): kept, never acted on."""

    name: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class Malformed:
    """A known event whose fields do not parse (`problem` says which): never acted on."""

    name: str
    fields: dict[str, Any]
    problem: str


Event = Run | Progress | TrainResult | Error | Unknown | Malformed

_NAMES: dict[type, str] = {Run: "run", Progress: "progress", TrainResult: "result", Error: "error"}


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(PREFIX + json.dumps({"event": event, **fields}, default=str) + "\n")
    sys.stdout.flush()


def emit_event(event: Run | Progress | TrainResult | Error) -> None:
    """Print a typed event as its `@wb` line."""
    emit(_NAMES[type(event)], **_fields_of(event))


def _fields_of(event: Run | Progress | TrainResult | Error) -> dict[str, Any]:
    if isinstance(event, TrainResult):
        return event.to_dict()
    if isinstance(event, Progress):
        return {"iteration": event.iteration, "total": event.total, "metrics": event.metrics}
    if isinstance(event, Run):
        return {"run_id": event.run_id}
    return {"message": event.message}


def parse(line: str) -> dict[str, Any] | None:
    """The raw JSON object of an event line (None for any other line). Prefer `decode`."""
    if not line.startswith(PREFIX):
        return None
    try:
        obj = json.loads(line[len(PREFIX) :])
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def decode(line: str) -> Event | None:
    """The typed event of an event line; None for a log line, and for an event line whose
    JSON is not an object (it is shown as the log line it is)."""
    raw = parse(line)
    return None if raw is None else from_fields(raw)


def from_fields(raw: dict[str, Any]) -> Event:
    """The typed event of a parsed `@wb` object."""
    name = raw.get("event")
    fields = {k: v for k, v in raw.items() if k != "event"}
    if not isinstance(name, str):
        return Malformed(str(name), fields, "no event name")
    build = _BUILDERS.get(name)
    if build is None:
        return Unknown(name, fields)
    try:
        return build(fields)
    except (KeyError, TypeError, ValueError) as exc:
        return Malformed(name, fields, f"{type(exc).__name__}: {exc}")


def _text(fields: dict[str, Any], key: str) -> str:
    value = fields[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string")
    return value


def _metrics(fields: dict[str, Any]) -> dict[str, float]:
    metrics = fields.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise TypeError("metrics must be an object")
    return {str(k): float(v) for k, v in metrics.items()}


def _run(fields: dict[str, Any]) -> Run:
    return Run(_text(fields, "run_id"))


def _progress(fields: dict[str, Any]) -> Progress:
    return Progress(int(fields["iteration"]), int(fields["total"]), _metrics(fields))


def _result(fields: dict[str, Any]) -> TrainResult:
    known = {"run_id", "model_uri", "metrics", "data_digest", "flavor"}
    return TrainResult(
        run_id=_text(fields, "run_id"),
        model_uri=_text(fields, "model_uri"),
        metrics=_metrics(fields),
        data_digest=str(fields.get("data_digest") or ""),
        flavor=str(fields.get("flavor") or ""),
        extra={k: v for k, v in fields.items() if k not in known},
    )


def _error(fields: dict[str, Any]) -> Error:
    return Error(str(fields["message"]))


_BUILDERS: dict[str, Callable[[dict[str, Any]], Event]] = {
    "run": _run,
    "progress": _progress,
    "result": _result,
    "error": _error,
}
