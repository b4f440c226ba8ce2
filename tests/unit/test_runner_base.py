"""The runner base class: a runner that only runs gets safe defaults for every capability
the jobs layer, the TUI and the CLI call; the built-in runners subclass it."""

from __future__ import annotations

from pathlib import Path

import pytest
from workbench_plugins.docker_runner import DockerRunner
from workbench_plugins.local_runner import LocalRunner

from workbench.errors import UsageError
from workbench.jobs.events import Progress
from workbench.jobs.observer import QUIET, JobObserver
from workbench.jobs.watch import Watch, judge
from workbench.plugins import JobSpec, Runner, RunObserver


class OnlyRuns(Runner):
    name = "only-runs"

    def run(self, spec: JobSpec, observer: RunObserver) -> tuple[int, str | None]:
        observer.on_start("h1")
        observer.on_line("hello")
        return 0, None


def test_defaults_say_the_runner_cannot() -> None:
    runner = OnlyRuns()
    assert runner.kind == "runner" and runner.available()
    assert runner.why_unavailable() is None
    assert runner.why_not_for(None) is None  # type: ignore[arg-type]
    assert runner.status("h1") == ("running", None)  # cannot tell: the record stays as it is
    assert runner.stats("h1") == {}
    assert runner.pids("h1") == []
    assert runner.collect("h1", "/nowhere.log") is None
    assert runner.stream_output("h1") is None
    assert runner.job_record("job-1") == {}  # nothing beyond what every job records
    with pytest.raises(UsageError, match="cannot stop"):
        runner.stop("h1")


def test_run_is_required() -> None:
    class Nothing(Runner):
        pass

    with pytest.raises(TypeError):
        Nothing()  # type: ignore[abstract]


def test_the_built_in_runners_subclass_it() -> None:
    assert issubclass(LocalRunner, Runner) and issubclass(DockerRunner, Runner)
    assert LocalRunner().stream_output("1") is None  # its log file is the only source
    assert not hasattr(LocalRunner(), "follow")  # what `workbench logs` probes until ported


def test_the_run_observer_defaults() -> None:
    observer = RunObserver()
    observer.on_start("h")
    observer.on_line("x")
    assert observer.should_stop() is False


def test_the_job_observer_defaults() -> None:
    QUIET.on_progress(Progress(1, 2))
    QUIET.on_log("x")
    QUIET.on_step("train", "done", "")
    assert QUIET.should_stop() is False
    seen: list[object] = []
    observer = JobObserver(on_progress=seen.append)
    observer.on_progress(Progress(1, 2, {"auc": 0.5}))
    assert seen == [Progress(1, 2, {"auc": 0.5})] and observer.should_stop() is False


def _spec(ends_well: str) -> JobSpec:
    return JobSpec("j", "k", "m", [], Path("."), Path("j.log"), ends_well=ends_well)  # type: ignore[arg-type]


def _watched(*lines: str, stop: bool = False) -> Watch:
    logs: list[str] = []
    watch = Watch(JobObserver(on_log=logs.append, should_stop=lambda: stop), lambda h: None)
    for text in lines:
        watch.on_line(text)
    return watch


RESULT = '@wb {"event": "result", "run_id": "r", "model_uri": "u", "metrics": {}}'


def test_judge_by_what_the_caller_declared_not_the_kind() -> None:
    assert judge(_spec("result"), 0, None, _watched(RESULT))[0] == "succeeded"
    assert judge(_spec("result"), 0, None, _watched())[:2] == ("failed", 1)
    assert judge(_spec("stopped"), 0, None, _watched()) == ("stopped", 0, "stopped")
    assert judge(_spec("stopped"), 1, "boom", _watched())[0] == "failed"
    assert judge(_spec("result"), -15, "stopped", _watched()) == ("stopped", -15, "stopped by user")
    assert judge(_spec("result"), 1, "x", _watched(stop=True))[0] == "stopped"
    error = '@wb {"event": "error", "message": "bad param"}'
    assert judge(_spec("result"), 1, "exit 1", _watched(error)) == ("failed", 1, "bad param")


def test_watch_parses_once_and_passes_logs_and_progress_on() -> None:
    logs: list[str] = []
    progress: list[Progress] = []
    watch = Watch(JobObserver(on_log=logs.append, on_progress=progress.append), lambda h: None)
    for text in ['@wb {"event": "run", "run_id": "r0"}', "a log line", "@wb {torn",
                 '@wb {"event": "progress", "iteration": 1, "total": 2}',
                 '@wb {"event": "later", "x": 1}', RESULT]:  # fmt: skip
        watch.on_line(text)
    assert logs == ["a log line", "@wb {torn"]
    assert progress == [Progress(1, 2)]
    assert watch.run_id == "r" and watch.result is not None and watch.result.model_uri == "u"
