"""The training job. Runs as `python -m workbench.training --project DIR --job-id ID` in a
child process (local runner) or a container (Docker runner), logs the run to MLflow, and
prints `@wb` events: progress per iteration, then the result.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench import plugins
from workbench.data import snapshot as data_mod
from workbench.data import target as target_mod
from workbench.drift import PROFILE_FILE
from workbench.jobs import events
from workbench.project import Project
from workbench.store import tracking
from workbench.tasks import ModelTask
from workbench.training import calibration, fairness, usage
from workbench.training.evaluation import evaluate
from workbench.training.scoring import as_task_output
from workbench.value import outcome_metrics

METRIC_FLUSH_EVERY = 25


@dataclass(frozen=True)
class Prepared:
    """What every run of a job trains on: the trainer, the split data and its snapshot."""

    trainer: Any
    parts: Any
    snapshot: str
    task: ModelTask


def prepare(project: Project) -> Prepared:
    cfg = project.config
    trainer = plugins.load("trainer", cfg.trainer.plugin)
    frame = data_mod.load_frame(project.data_path, cfg.schema_)
    snapshot = data_mod.digest(project.data_path)
    classes = target_mod.classes_of(frame, cfg)
    task = ModelTask(cfg.task.type, classes, cfg.evaluation.threshold, cfg.data.target)
    parts = data_mod.split(target_mod.encode(frame, cfg, classes), cfg)
    return Prepared(trainer, parts, snapshot, task)


def train(
    project: Project,
    job_id: str,
    run_name: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> events.TrainResult:
    cfg = project.config
    data = prepare(project)
    trainer, parts, snapshot, task = data.trainer, data.parts, data.snapshot, data.task
    params = {**cfg.trainer.params, **(overrides or {})}

    tracking.setup(project)
    import mlflow

    usage.configure_sampling()
    started = time.time()
    # The job id is a tag from the run's first write: a job killed before it announces the run
    # still leaves a run its settling can find (orphans.py).
    with mlflow.start_run(
        run_name=run_name, tags={"workbench.job_id": job_id}, log_system_metrics=True
    ) as run:
        run_id = run.info.run_id
        events.emit_event(events.Run(run_id))
        model, _ = fit(project, data, params, run_id)
        holdout_x = data_mod.to_model_frame(parts.holdout, cfg)
        output = as_task_output(
            task, model.predict(holdout_x), len(holdout_x), f"the {trainer.name} trainer's model"
        )
        holdout = evaluate(
            task.type, parts.holdout[cfg.data.target].to_numpy(), output, task.threshold
        )
        final = {f"holdout_{k}": v for k, v in holdout.items()}
        y_holdout = parts.holdout[cfg.data.target].to_numpy()  # its outcomes: for the value
        final.update(outcome_metrics(task.type, y_holdout, output, task.threshold))
        if model.best_iteration:
            final["best_iteration"] = float(model.best_iteration)
        final["train_seconds"] = time.time() - started
        mlflow.log_metrics(final)
        model_uri = log_model(project, model, parts, holdout_x, output, snapshot, run, task)
    used = usage.log_gpu_seconds(mlflow.MlflowClient(), run_id, time.time() - started)
    if used is not None:
        final["gpu_seconds"] = used

    result = events.TrainResult(run_id, model_uri, final, snapshot, model.flavor)
    events.emit_event(result)
    return result


def fit(
    project: Project,
    data: Prepared,
    params: dict[str, Any],
    run_id: str,
    progress: bool = True,
    check: Callable[[], None] | None = None,
) -> tuple[Any, int]:
    """Log the inputs of the active run `run_id` and train on them: the model and the last
    iteration reported. `progress`: a progress event per iteration (a training job's);
    `check` is called at each iteration (it may raise to stop the training)."""
    cfg = project.config
    import mlflow

    train_pd = log_inputs(project, data.trainer.name, params, data.parts, data.snapshot, data.task)
    metrics = _MetricStream(mlflow.MlflowClient(), run_id, progress, check)
    ctx = plugins.TrainContext(
        config=cfg,
        params=params,
        features=cfg.features,
        categorical=data_mod.categorical_features(cfg),
        target=cfg.data.target,
        train=train_pd,
        valid=data.parts.valid.to_pandas(),
        on_iteration=metrics.on_iteration,
        task=data.task.type,
        classes=data.task.classes,
        run_id=run_id,
        holdout=data.parts.holdout.to_pandas(),
        gpus=cfg.gpus if isinstance(cfg.gpus, int) else 1,  # "all": at least one
        project_root=project.root,
    )
    model = data.trainer.train(ctx)
    metrics.flush()
    return model, metrics.last_step


def log_inputs(
    project: Project,
    trainer: str,
    params: dict[str, Any],
    parts: Any,
    snapshot: str,
    task: ModelTask,
) -> Any:
    """Tags, params and the dataset input of the active run; the training rows as pandas."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    cfg = project.config
    commit = tracking.git_commit(project.root)
    mlflow.set_tags(
        {
            "workbench.trainer": trainer,
            "workbench.data_digest": snapshot,
            "workbench.project": cfg.project.name,
            "workbench.task": task.type,
            **({"mlflow.source.git.commit": commit} if commit else {}),
        }
    )
    mlflow.log_params(
        {
            **{k: str(v) for k, v in params.items()},
            "trainer": trainer,
            "data_digest": snapshot,
            "rows_train": parts.train.height,
            "rows_valid": parts.valid.height,
            "rows_holdout": parts.holdout.height,
            "features": len(cfg.features),
            "task": task.type,
            **({"classes": json.dumps(task.classes, default=str)[:500]} if task.classes else {}),
        }
    )
    train_pd = parts.train.to_pandas()
    dataset = from_pandas(
        train_pd,
        source=str(project.data_path),
        targets=cfg.data.target,
        name=Path(cfg.data.path).name,
        digest=snapshot,
    )
    _log_input(dataset)
    return train_pd


def _log_input(dataset: Any) -> None:
    """`mlflow.log_input`, again when a concurrent writer inserted the same dataset first:
    MLflow's store checks for the row, then inserts it, so two runs logging one dataset at
    once (a sweep's parallel trials, two pipelines on a shared server) race on its unique key.
    The second try finds the row."""
    import mlflow
    from mlflow.exceptions import MlflowException

    for attempt in range(3):
        try:
            mlflow.log_input(dataset, context="training")
            return
        except MlflowException as exc:
            text = str(exc).lower()
            raced = "unique" in text or "duplicate key" in text or "integrityerror" in text
            if attempt == 2 or not raced:
                raise
            time.sleep(0.05 * (attempt + 1))


class _MetricStream:
    """Per-iteration metrics to MLflow in batches, and a progress event at most every 0.1 s
    (and at the last iteration)."""

    def __init__(
        self,
        client: Any,
        run_id: str,
        progress: bool = True,
        check: Callable[[], None] | None = None,
    ) -> None:
        self.client, self.run_id = client, run_id
        self.pending: list[Any] = []
        self.last_emit = 0.0
        self.progress, self.check, self.last_step = progress, check, 0

    def on_iteration(self, i: int, total: int, scores: dict[str, float]) -> None:
        from mlflow.entities import Metric

        if self.check is not None:
            self.check()
        self.last_step = max(self.last_step, i)
        now_ms = int(time.time() * 1000)
        self.pending.extend(Metric(k, v, now_ms, i) for k, v in scores.items())
        if len(self.pending) >= METRIC_FLUSH_EVERY * max(1, len(scores)):
            self.flush()
        now = time.monotonic()
        if self.progress and (i == total or now - self.last_emit > 0.1):
            self.last_emit = now
            events.emit_event(events.Progress(i, total, scores))

    def flush(self) -> None:
        if self.pending:
            self.client.log_batch(self.run_id, metrics=list(self.pending))
            self.pending.clear()


def log_model(
    project: Project,
    model: Any,
    parts: Any,
    holdout_x: Any,
    output: Any,
    snapshot: str,
    run: Any,
    task: ModelTask,
    scored: Any = None,
) -> str:
    """The model (with its signature and input example), the drift reference profile beside
    it, and feature importance, logged to the active run; returns the model's URI. `output`
    is the model's on `scored`, the rows of `holdout_x` (default: the holdout; a sweep's
    trial scores the validation split)."""
    import mlflow
    from mlflow.models import infer_signature

    from workbench.training.reference import profile_of

    example = holdout_x.head(5)
    signature = infer_signature(example, model.predict(example))
    # The drift reference, computed once here and stored beside the model: checks never
    # rescan the training data. Features from the training rows; the prediction distribution
    # from the holdout (what serving traffic should look like).
    profile = profile_of(project, parts, task, output, f"training rows of snapshot {snapshot}")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "model"
        model.save_mlflow_model(model_dir, signature, example)
        profile.save(model_dir / PROFILE_FILE)
        rows = parts.holdout if scored is None else scored
        calibration.write(model_dir, task, rows[task.target], output, snapshot)
        task.save(model_dir)
        fairness.write(project, parts, task, output, model_dir, rows)  # [monitoring] segments
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
    if model.feature_importance:
        mlflow.log_dict(model.feature_importance, "feature_importance.json")
    model_uri = f"{run.info.artifact_uri}/model"
    mlflow.set_tag("workbench.model_uri", model_uri)
    return model_uri


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workbench.training")
    parser.add_argument("--project", required=True)
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--run-name")
    parser.add_argument("--params", default="{}", help="JSON object of trainer param overrides")
    args = parser.parse_args(argv)
    from workbench.errors import WorkbenchError

    project: Project | None = None
    try:
        overrides = json.loads(args.params)
        project = Project.load(args.project)
        train(project, args.job_id, args.run_name, overrides)
    except WorkbenchError as exc:
        events.emit_event(events.Error(str(exc)))
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # the trainer or a library failed: one line, traceback kept
        first = (str(exc).strip().splitlines() or [""])[0]
        message = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        where = _save_traceback(project, args.job_id)
        events.emit_event(events.Error(message))
        print(f"error: {message}" + (f" (traceback: {where})" if where else ""), file=sys.stderr)
        return 1
    return 0


def _save_traceback(project: Project | None, job_id: str) -> str | None:
    import traceback

    text = traceback.format_exc()
    if project is None:
        sys.stderr.write(text)
        return None
    path = project.jobs_dir / f"{job_id}.traceback.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError:
        sys.stderr.write(text)
        return None
    return str(path)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
