"""Plugin contracts and discovery through the `workbench.plugins` entry point group.

Built-in trainers and runners (in plugins/) register exactly as a third-party package would:
    [project.entry-points."workbench.plugins"]
    lightgbm = "workbench_plugins.lightgbm_trainer:LightGBMTrainer"
Each entry point names a class with a `kind` ("trainer", "runner") and a `name`. A runner
subclasses `Runner` (defaults for every capability but `run`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from workbench.errors import UsageError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from workbench.config import Config
    from workbench.project import Project

GROUP = "workbench.plugins"

#: (iteration, total, metrics at that iteration)
IterationCallback = Callable[[int, int, dict[str, float]], None]


@dataclass
class TrainContext:
    """What a trainer gets. `train` and `valid` hold the features and the target; the target
    is encoded for the task: class indices 0..K-1 (in `classes` order) for binary and
    multiclass, floats for regression. `task` is "binary", "multiclass" or "regression"."""

    config: Config
    params: dict[str, Any]
    features: list[str]
    categorical: list[str]
    target: str
    train: pd.DataFrame
    valid: pd.DataFrame
    on_iteration: IterationCallback
    task: str = "binary"
    classes: list[Any] = field(default_factory=lambda: [0, 1])
    #: the MLflow run the job started (the script trainer hands it to the user's code)
    run_id: str = ""
    #: the holdout rows (features and encoded target); trainers need not look at them
    holdout: pd.DataFrame | None = None
    #: GPUs the job may use ([docker] gpus; 0: none)
    gpus: int = 0
    #: a log line to the job's output (the script trainer streams its command's output)
    on_line: Callable[[str], None] = print
    #: the project's folder (where the script trainer runs its command)
    project_root: Path | None = None


@dataclass
class TrainedModel:
    """What a trainer hands back: a scorer and a way to save itself as an MLflow model dir.

    `predict(frame)` returns, per task (see `workbench.tasks`): the positive-class
    probability per row (binary), an (n, K) matrix of class probabilities in `classes` order
    (multiclass), the value per row (regression). The saved model's pyfunc should score raw
    records the same way, so plain `mlflow.pyfunc.load_model` gives the same numbers."""

    predict: Callable[[pd.DataFrame], np.ndarray]
    save_mlflow_model: Callable[[Path, Any, pd.DataFrame], None]  # (dir, signature, input example)
    best_iteration: int | None = None
    feature_importance: dict[str, float] = field(default_factory=dict)
    flavor: str = ""


@runtime_checkable
class Trainer(Protocol):
    """A trainer may also define `check_params(self, params: dict) -> list[str]`: what is wrong
    with `[trainer.params]`, one "key: problem" string each, found without training. `validate`
    and the pipeline's first step call it (see `param_problems`) so a bad value fails there,
    not inside a job."""

    kind: str  # "trainer"
    name: str

    def train(self, ctx: TrainContext) -> TrainedModel: ...


def param_problems(trainer: Any, params: dict[str, Any]) -> list[str]:
    """The trainer's own `check_params` verdict on `params` (none when it has no such check)."""
    check = getattr(trainer, "check_params", None)
    if check is None:
        return []
    return [str(p) for p in check(dict(params))]


def setting_problems(trainer: Any, config: Config) -> list[str]:
    """The trainer's `check_config(config)` verdict: "[section].key: problem" each (what it
    needs of the task and its own settings: an objective that fits the task, an estimator
    that imports, a command that exists). None when it has no such check."""
    check = getattr(trainer, "check_config", None)
    if check is None:
        return []
    return [str(p) for p in check(config)]


#: How a job ends well: "result" (it reported a result event, as a training job does) or
#: "stopped" (it runs until asked to stop and exits cleanly then, as a server does).
EndsWell = Literal["result", "stopped"]


@dataclass
class JobSpec:
    job_id: str
    kind: str  # "train" | "serve": a label (the container's role); never how the job is judged
    module: str  # python module run with -m
    args: list[str]
    project_root: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    # container port -> (host address, host port) to publish; a local process ignores it
    ports: dict[int, tuple[str, int]] = field(default_factory=dict)
    ends_well: EndsWell = "result"


class RunObserver:
    """What a runner reports about the job it runs, and asks of whoever waits on it. Every
    hook does nothing by default; the jobs layer passes one that parses and records."""

    def on_start(self, handle: str) -> None:
        """The job runs; `handle` (a pid, a container id) reaches it from any process."""

    def on_line(self, line: str) -> None:
        """One line of the job's output (log lines and `@wb` event lines alike)."""

    def should_stop(self) -> bool:
        """Polled while the job runs: True asks the runner to stop it."""
        return False


class Runner(ABC):
    """The base of every runner plugin: `run` is the one method a runner must have; the rest
    are capabilities with defaults that say "this runner cannot", so callers call them
    instead of probing with `hasattr`."""

    kind: str = "runner"
    name: str = "runner"

    def available(self) -> bool:
        return True

    def why_unavailable(self) -> str | None:
        """Why `available()` is False, in one line (None: no reason known)."""
        return None

    def why_not_for(self, project: Project) -> str | None:
        """Why this project's jobs cannot run here now (None: they can, as far as it knows)."""
        return None

    @abstractmethod
    def run(self, spec: JobSpec, observer: RunObserver) -> tuple[int, str | None]:
        """Run to completion, feeding each output line to `observer.on_line`; return (exit
        code, reason). `observer.on_start` receives the job's handle once it runs. A job
        stopped on request (`observer.should_stop`) returns the reason "stopped"."""

    def status(self, handle: str) -> tuple[str, int | None]:
        """("running" | "exited" | "missing", exit code when known) of a job by its handle.
        A runner that cannot tell says "running": the record is left as it is."""
        return "running", None

    def stop(self, handle: str) -> None:
        """Ask the job to stop (SIGTERM, then SIGKILL after a grace period)."""
        raise UsageError(f"the {self.name} runner cannot stop a job by its handle")

    def stats(self, handle: str) -> dict[str, float]:
        """Resource use now: cpu_percent, memory_mb (empty when the job is gone or unknown)."""
        return {}

    def pids(self, handle: str) -> list[int]:
        """The job's host pids, to match GPU processes ([] when it cannot say)."""
        return []

    def collect(self, handle: str, log_path: str) -> None:
        """A job that ended while nobody followed it: bring its whole log to `log_path` and
        clean up (nothing to do when the runner writes the log itself)."""
        return None

    def stream_output(self, handle: str) -> Iterator[str] | None:
        """The job's output from the start, following until it ends, read from the runner
        itself; None when the runner has no such source (the log file is the only one)."""
        return None

    def job_record(self, job_id: str) -> dict[str, Any]:
        """What the jobs log should keep of how this runner ran the job (merged into the job
        row's `args` once it starts): e.g. the Docker runner's image, image id and the
        resources it gave the container. Empty: nothing beyond what every job records."""
        return {}


class StopWatcher:
    """For runners: polls `should_stop` in a thread and calls `stop` once when it says so."""

    def __init__(self, should_stop: Callable[[], bool] | None, stop: Callable[[], None]) -> None:
        import threading

        self._should_stop, self._stop = should_stop, stop
        self._done = threading.Event()
        self.requested = False
        if should_stop is not None:
            threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while not self._done.wait(0.2):
            if self._should_stop and self._should_stop():
                self.requested = True
                self._stop()
                return

    def close(self) -> None:
        self._done.set()


def error_line(line: str) -> str | None:
    """The error a job's output line reports, if it reports one (for the job's reason)."""
    if line.startswith("error: ") or "Error:" in line:
        return line.removeprefix("error: ")
    return None


def lines_of(chunks: Iterable[bytes]) -> Iterator[str]:
    """Whole text lines from a stream of byte chunks (a container's log stream)."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        *whole, buf = buf.split(b"\n")
        for raw in whole:
            yield raw.decode("utf-8", "replace")
    if buf:
        yield buf.decode("utf-8", "replace")


@cache
def _registry() -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {}
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # a broken third-party plugin must not take the tool down
            import sys

            print(
                f"workbench: plugin {ep.name!r} ({ep.value}) failed to load: {exc}", file=sys.stderr
            )
            continue
        found[(getattr(cls, "kind", "?"), getattr(cls, "name", ep.name))] = cls
    return found


def available(kind: str) -> list[str]:
    return sorted(name for k, name in _registry() if k == kind)


_FOUND: dict[tuple[str, str], Any] = {}


def _find(kind: str, name: str) -> Any:
    """The class of plugin `name`: its own entry point loaded alone when it is named so (the
    usual case: no other plugin's imports are paid), else the whole registry searched."""
    key = (kind, name)
    if key in _FOUND:
        return _FOUND[key]
    cls = None
    for ep in entry_points(group=GROUP, name=name):
        try:
            candidate = ep.load()
        except Exception:  # reported with the rest by _registry() below
            continue
        if getattr(candidate, "kind", "?") == kind and getattr(candidate, "name", name) == name:
            cls = candidate
            break
    if cls is None:
        cls = _registry().get(key)
    if cls is not None:
        _FOUND[key] = cls
    return cls


def load(kind: str, name: str) -> Any:
    """Instantiate plugin `name` of `kind`, or raise a UsageError listing what is installed."""
    cls = _find(kind, name)
    if cls is None:
        have = ", ".join(available(kind)) or "none"
        raise UsageError(f"no {kind} plugin named {name!r} (installed: {have})")
    return cls()
