"""The `@wb` line protocol: every event kind decoded once into its dataclass, round trips
through `emit_event`, and lines that are not (or not quite) events."""

from __future__ import annotations

import json
import math

import pytest

from workbench.jobs import events
from workbench.jobs.events import Error, Malformed, Progress, Run, TrainResult, Unknown


def line(**obj: object) -> str:
    return events.PREFIX + json.dumps(obj)


def test_run() -> None:
    assert events.decode(line(event="run", run_id="abc")) == Run("abc")


def test_progress() -> None:
    got = events.decode(line(event="progress", iteration=3, total=10, metrics={"auc": 0.5}))
    assert got == Progress(3, 10, {"auc": 0.5})
    assert events.decode(line(event="progress", iteration="3", total=10)) == Progress(3, 10, {})


def test_result_keeps_fields_it_does_not_know() -> None:
    fields = {
        "run_id": "r1",
        "model_uri": "file:///m",
        "metrics": {"holdout_auc": 0.9},
        "data_digest": "d1",
        "flavor": "lightgbm",
        "newer": 1,
    }
    got = events.decode(line(event="result", **fields))
    metrics = {"holdout_auc": 0.9}
    assert got == TrainResult("r1", "file:///m", metrics, "d1", "lightgbm", {"newer": 1})
    assert isinstance(got, TrainResult) and got.to_dict() == fields


def test_result_with_nan_metric() -> None:
    got = events.decode(events.PREFIX + '{"event": "result", "run_id": "r", "model_uri": "u", '
                        '"metrics": {"auc": NaN}}')  # fmt: skip
    assert isinstance(got, TrainResult) and math.isnan(got.metrics["auc"])


def test_error() -> None:
    assert events.decode(line(event="error", message="boom")) == Error("boom")


def test_unknown_event_is_kept_not_acted_on() -> None:
    assert events.decode(line(event="heartbeat", n=1)) == Unknown("heartbeat", {"n": 1})


@pytest.mark.parametrize(
    "obj",
    [
        {"event": "result", "run_id": "r"},  # no model_uri
        {"event": "result", "run_id": "", "model_uri": "u"},
        {"event": "result", "run_id": "r", "model_uri": "u", "metrics": [1]},
        {"event": "progress", "iteration": "x", "total": 1},
        {"event": "progress", "total": 1},
        {"event": "run"},
        {"event": "error"},
        {"no": "event"},
    ],
)
def test_a_known_event_with_bad_fields_is_malformed(obj: dict[str, object]) -> None:
    got = events.decode(line(**obj))
    assert isinstance(got, Malformed) and got.problem


@pytest.mark.parametrize(
    "text", ["plain log line", "@wb {not json", "@wb [1, 2]", '@wb "text"', "", " @wb {}"]
)
def test_lines_that_are_not_events(text: str) -> None:
    assert events.decode(text) is None


@pytest.mark.parametrize(
    "event",
    [
        Run("r"),
        Progress(1, 2, {"auc": 0.5}),
        TrainResult("r", "u", {"auc": 0.5}, "d", "f"),
        Error("no good"),
    ],
)
def test_emit_event_round_trips_on_the_same_wire(
    event: Run | Progress | TrainResult | Error, capsys: pytest.CaptureFixture[str]
) -> None:
    events.emit_event(event)
    out = capsys.readouterr().out
    assert out.endswith("\n") and out.startswith(events.PREFIX)
    assert events.decode(out.rstrip("\n")) == event


def test_the_wire_format_of_a_result_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    events.emit_event(TrainResult("r", "u", {"auc": 0.5}, "d", "lightgbm"))
    assert json.loads(capsys.readouterr().out.removeprefix(events.PREFIX)) == {
        "event": "result",
        "run_id": "r",
        "model_uri": "u",
        "metrics": {"auc": 0.5},
        "data_digest": "d",
        "flavor": "lightgbm",
    }
