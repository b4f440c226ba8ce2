"""The script trainer: your own training command, run as the training job.

    [trainer]
    plugin = "script"
    command = ["python", "train.py"]      # run in the project's folder

The job has started the MLflow run when the command starts. The command gets the splits as
Parquet files (raw target values) and the run through the environment:

    MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME, MLFLOW_RUN_ID   the project's store and run
    WORKBENCH_TRAIN_PATH, WORKBENCH_VALID_PATH, WORKBENCH_HOLDOUT_PATH   the splits
    WORKBENCH_TARGET, WORKBENCH_TASK, WORKBENCH_FEATURES (a JSON list)

so `mlflow.sklearn.autolog()` and a fit, or `mlflow.<flavour>.log_model(...)`, land in the
job's run without importing Workbench. `python` / `python3` as the program is the job's own
interpreter. The command's output is the job's log, line by line; progress lines
(`workbench.training.report_progress`) drive the progress bar. Once it exits 0, the model
it logged in the run is fetched and scored on the holdout like any trainer's model.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import JobFailed
from workbench.plugins import TrainContext, TrainedModel

if TYPE_CHECKING:
    import pandas as pd

    from workbench.config import Config

_PYTHONS = ("python", "python3")
_HINT = '[trainer].command: set your training command, e.g. command = ["python", "train.py"]'


def _program(prog: str, root: Path | None) -> str | None:
    """The program's path (None: not found): the job's Python for `python`, a file (relative
    to the project) for a path, else the PATH's."""
    if prog in _PYTHONS:
        return sys.executable
    if "/" in prog or os.sep in prog:
        path = Path(prog).expanduser()
        if not path.is_absolute():
            if root is None:
                return prog  # nowhere to look: the job says it if it is not there
            path = root / path
        return str(path) if path.is_file() else None
    return shutil.which(prog)


def _cwd_project_root() -> Path | None:
    from workbench.errors import ConfigError
    from workbench.project import find_project_root

    try:
        return find_project_root()
    except ConfigError:
        return None


class ScriptTrainer:
    kind = "trainer"
    name = "script"

    def check_config(self, config: Config) -> list[str]:
        command = config.trainer.command
        if not command:
            return [_HINT]
        if _program(command[0], _cwd_project_root()) is None:
            where = "on PATH or in the project"
            return [f"[trainer].command: program {command[0]!r} not found ({where})"]
        return []

    def train(self, ctx: TrainContext) -> TrainedModel:
        import mlflow

        from workbench.tasks import ModelTask
        from workbench.training import model_folder

        root = ctx.project_root or Path.cwd()
        command = ctx.config.trainer.command
        if not command:
            raise JobFailed(_HINT)
        program = _program(command[0], root)
        if program is None:
            raise JobFailed(f"your training command's program {command[0]!r} is not found")
        client = mlflow.MlflowClient()
        with tempfile.TemporaryDirectory(prefix="workbench-script-") as tmp:
            env = {**_environment(ctx, client), **_write_splits(ctx, Path(tmp))}
            code, last_error = _run([program, *command[1:]], root, env, ctx)
        if code != 0:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
            raise JobFailed(
                f"your training command {how}" + (f": {last_error}" if last_error else "")
            )
        uri = model_folder.find_run_model(client, ctx.run_id)
        if uri is None:
            raise JobFailed(
                f"your training command logged no model in run {ctx.run_id} "
                "(call mlflow.<flavour>.log_model or autolog)"
            )
        keep = Path(tempfile.mkdtemp(prefix="workbench-model-"))
        atexit.register(shutil.rmtree, keep, ignore_errors=True)
        local = model_folder.fetch(uri, keep, mlflow.get_tracking_uri())
        task = ModelTask(ctx.task, ctx.classes, ctx.config.evaluation.threshold, ctx.target)
        what = "the model your training command logged"
        columns = model_folder.check_inputs(local, ctx.features, what, strict=False)
        ctx.on_line(f"script trainer: scoring the {model_folder.main_flavour(local)} model {uri}")
        return model_folder.trained_model(local, task, columns)


def _environment(ctx: TrainContext, client: Any) -> dict[str, str]:
    """The run, its experiment and the store, for a plain MLflow script. New experiments the
    script makes get their artifacts under the project's store too: MLflow's client takes
    a SQLite store's default artifact root from `_MLFLOW_SERVER_ARTIFACT_ROOT` (else
    `./mlruns` in the working folder)."""
    import mlflow

    from workbench.project import Project

    experiment = client.get_experiment(client.get_run(ctx.run_id).info.experiment_id)
    root = ctx.project_root or Path.cwd()
    artifact_root = Project(root, ctx.config).artifacts.as_uri()
    return {
        "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
        "MLFLOW_REGISTRY_URI": mlflow.get_registry_uri(),
        "MLFLOW_EXPERIMENT_NAME": experiment.name,
        "MLFLOW_RUN_ID": ctx.run_id,
        "_MLFLOW_SERVER_ARTIFACT_ROOT": artifact_root,
        "WORKBENCH_TARGET": ctx.target,
        "WORKBENCH_TASK": ctx.task,
        "WORKBENCH_FEATURES": json.dumps(ctx.features),
        "PYTHONUNBUFFERED": "1",
    }


def _raw(frame: pd.DataFrame, ctx: TrainContext) -> pd.DataFrame:
    """Features and the target as the data has it (class labels, not indices)."""
    import numpy as np

    out = frame[[*ctx.features, ctx.target]].copy()
    if ctx.task != "regression":
        codes = out[ctx.target].to_numpy(dtype="int64")
        out[ctx.target] = np.asarray(ctx.classes)[codes]
    return out


def _write_splits(ctx: TrainContext, folder: Path) -> dict[str, str]:
    env = {}
    parts = {"TRAIN": ctx.train, "VALID": ctx.valid, "HOLDOUT": ctx.holdout}
    for name, frame in parts.items():
        if frame is None:
            continue
        path = folder / f"{name.lower()}.parquet"
        _raw(frame, ctx).to_parquet(path, index=False)
        env[f"WORKBENCH_{name}_PATH"] = str(path)
    return env


def _run(command: list[str], root: Path, env: dict[str, str], ctx: TrainContext) -> tuple[int, str]:
    """Run the command, each output line to the job's log (progress lines to the job's
    progress); (exit code, last non-empty stderr line)."""
    environ = {k: v for k, v in os.environ.items() if k != "MLFLOW_EXPERIMENT_ID"}
    try:
        proc = subprocess.Popen(
            command,
            cwd=root,
            env={**environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            errors="replace",
        )
    except OSError as exc:
        raise JobFailed(f"cannot start your training command {command[0]}: {exc}") from None
    lock = threading.Lock()
    last_error = [""]

    def errors() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip("\n")
            if line.strip():
                last_error[0] = line.strip()
            with lock:
                ctx.on_line(line)

    reader = threading.Thread(target=errors, daemon=True)
    reader.start()
    assert proc.stdout is not None
    for line in proc.stdout:
        with lock:
            _forward(line.rstrip("\n"), ctx)
    code = proc.wait()
    reader.join(timeout=10)
    return code, last_error[0]


def _forward(line: str, ctx: TrainContext) -> None:
    """A progress line becomes the job's progress (and metrics at its step); any other
    `@wb` line from the command is shown, never taken as the job's own event."""
    from workbench.jobs import events

    event = events.decode(line)
    if isinstance(event, events.Progress):
        ctx.on_iteration(event.iteration, event.total, event.metrics)
    elif event is not None:
        ctx.on_line(f"(ignored: only progress events are read from your command) {line}")
    else:
        ctx.on_line(line)
