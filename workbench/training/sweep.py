"""The sweep job: `python -m workbench.training.sweep --project DIR --job-id ID --sweep JSON`.

A hyper-parameter search with Optuna (ask and tell, so this loop owns the runs and the stop):
one MLflow parent run ("sweep <time>") and one nested run per trial (MLflow's
`mlflow.parentRunId` tag), each trial trained through the training job's own `fit` with its
params. A trial is scored by the project's metric (`config.metric`) on the VALIDATION split,
in that metric's direction; the holdout is never looked at (it is the gate's). Each trial logs
`valid_<metric>` for every metric of the task; the model is logged for each trial that is the
best so far (so the best trial has its model). At the end the best trial gets the tag
`workbench.sweep.best = "true"` and the parent its params (`best_<param>`), its metric
(`valid_<metric>`) and its run id (tag `workbench.sweep.best_run_id`).

Events: `run` (the parent), `progress` per trial (iteration = trials done, total = trials,
metrics: the trial's and the best `valid_<metric>` so far), `result` at the end (the best
trial's model and metrics; `extra`: best_run_id, best_params, trials_done).

SIGTERM (`workbench stop`, the CLI's Ctrl-C) or SIGINT stops the sweep between trials: a
trial under way is cut at its next iteration and ended KILLED, the best of the trials done is
marked, the parent ends KILLED, and the process ends by the signal (the job is "stopped").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from workbench.data import snapshot as data_mod
from workbench.errors import DataError, WorkbenchError
from workbench.jobs import events
from workbench.project import Project
from workbench.store import tracking
from workbench.tasks import higher_is_better
from workbench.training import job, usage
from workbench.training.evaluation import evaluate
from workbench.training.scoring import as_task_output
from workbench.training.search_space import Dim, SweepSpec

BEST_TAG = "workbench.sweep.best"


class Stopped(Exception):
    """The sweep was asked to stop (raised inside a trial at its next iteration)."""


class StopFlag:
    """Set by SIGTERM / SIGINT; `check` raises Stopped once it is set."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.requested = True

    def check(self) -> None:
        if self.requested:
            raise Stopped


@dataclass
class Trial:
    number: int
    run_id: str
    value: float
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    model_uri: str | None = None


@dataclass
class SweepState:
    key: str  # valid_<metric>
    higher: bool
    best: Trial | None = None
    done: int = 0
    failed: int = 0
    last_error: str = ""

    def beats(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best.value if self.higher else value < self.best.value


def distribution(dim: Dim) -> Any:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if dim.kind == "choice":
        return CategoricalDistribution(list(dim.choices))
    if dim.kind == "int":
        return IntDistribution(int(dim.low), int(dim.high), log=dim.log)
    return FloatDistribution(dim.low, dim.high, log=dim.log)


def run_sweep(
    project: Project, job_id: str, spec: SweepSpec, stop: StopFlag
) -> tuple[str, SweepState]:
    """Run the sweep: the parent run's id, and how it went (its best trial is None when it
    was stopped before any trial ended)."""
    import optuna

    cfg = project.config
    data = job.prepare(project)
    state = SweepState(f"valid_{cfg.metric}", higher_is_better(cfg.metric))
    tracking.setup(project)
    import mlflow

    usage.configure_sampling()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=spec.seed)
    study = optuna.create_study(
        direction="maximize" if state.higher else "minimize", sampler=sampler
    )
    dists = {k: distribution(d) for k, d in spec.space.items()}
    started = time.time()
    parent = mlflow.start_run(
        run_name=spec.name,
        tags={"workbench.job_id": job_id, "workbench.sweep.trials": str(spec.trials)},
        log_system_metrics=True,
    )
    parent_id = parent.info.run_id
    events.emit_event(events.Run(parent_id))
    status = "FAILED"
    try:
        mlflow.log_params(_sweep_params(spec, state.key))
        events.emit_event(events.Progress(0, spec.trials, {}))
        for number in range(1, spec.trials + 1):
            if stop.requested:
                break
            asked = study.ask(dists)
            params = {**cfg.trainer.params, **spec.fixed, **asked.params}
            try:
                trial = _trial(project, data, job_id, spec, number, params, state, stop)
            except Stopped:
                study.tell(asked, state=optuna.trial.TrialState.FAIL)
                break
            except WorkbenchError:
                raise  # wrong for every trial (a param the trainer refuses, the data): stop
            except Exception as exc:  # this trial's params broke the trainer: the next may not
                study.tell(asked, state=optuna.trial.TrialState.FAIL)
                state.failed += 1
                state.last_error = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
                print(f"trial {number}/{spec.trials} failed: {state.last_error}", flush=True)
                continue
            study.tell(asked, trial.value)
            _record(state, trial, spec, asked.params)
        if state.best is None and not stop.requested:
            raise WorkbenchError(
                f"every trial of the sweep failed (last: {state.last_error or 'no trial ran'})"
            )
        _mark_best(mlflow.MlflowClient(), parent_id, state)
        status = "KILLED" if stop.requested else "FINISHED"
    finally:
        mlflow.end_run(status)
        usage.log_gpu_seconds(mlflow.MlflowClient(), parent_id, time.time() - started)
    return parent_id, state


def _sweep_params(spec: SweepSpec, key: str) -> dict[str, Any]:
    return {
        "sweep_trials": spec.trials,
        "sweep_metric": key,
        "sweep_space": json.dumps({k: d.describe() for k, d in spec.space.items()})[:6000],
        **({"sweep_fixed": json.dumps(spec.fixed)[:6000]} if spec.fixed else {}),
        **({"sweep_seed": spec.seed} if spec.seed is not None else {}),
    }


def _record(state: SweepState, trial: Trial, spec: SweepSpec, asked: dict[str, Any]) -> None:
    """Count the trial, keep it if best, say it (a log line and a progress event)."""
    state.done += 1
    best = state.beats(trial.value)
    if best:
        state.best = trial
    assert state.best is not None
    shown = " ".join(f"{k}={_fmt(v)}" for k, v in asked.items())
    mark = " (best so far)" if best else ""
    print(
        f"trial {trial.number}/{spec.trials}: {state.key}={trial.value:.4f} {shown}{mark}",
        flush=True,
    )
    metrics = {state.key: trial.value, f"best_{state.key}": state.best.value}
    events.emit_event(events.Progress(trial.number, spec.trials, metrics))


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _trial(
    project: Project,
    data: job.Prepared,
    job_id: str,
    spec: SweepSpec,
    number: int,
    params: dict[str, Any],
    state: SweepState,
    stop: StopFlag,
    parent_id: str | None = None,
) -> Trial:
    """One trial: a nested run trained with `params`, scored on the validation split; its
    model logged when it is the best so far. `parent_id`: the sweep's run, when it is not
    this process's active run (a trial in a Ray task)."""
    import mlflow

    cfg = project.config
    started = time.time()
    run = mlflow.start_run(
        run_name=f"trial {number} · {spec.name}",
        nested=True,
        parent_run_id=parent_id,
        tags={"workbench.job_id": job_id, "workbench.sweep.trial": str(number)},
        log_system_metrics=True,
    )
    run_id = run.info.run_id
    try:
        model, step = job.fit(project, data, params, run_id, progress=False, check=stop.check)
        valid_x = data_mod.to_model_frame(data.parts.valid, cfg)
        what = f"the {data.trainer.name} trainer's model"
        output = as_task_output(data.task, model.predict(valid_x), len(valid_x), what)
        truth = data.parts.valid[cfg.data.target].to_numpy()
        scores = {
            f"valid_{k}": v
            for k, v in evaluate(data.task.type, truth, output, data.task.threshold).items()
        }
        # one step past the last iteration: the run's latest value (what the runs table and
        # `compare` show) is the score the sweep decided on, not the trainer's own per-iteration
        # value at its last step (which differs with early stopping, or by its own formula)
        mlflow.log_metrics(scores, step=step + 1)
        mlflow.log_metric("train_seconds", time.time() - started)
        value = scores.get(state.key, math.nan)
        if not math.isfinite(value):
            raise DataError(f"{state.key} is not a number on the validation split ({value})")
        model_uri = None
        if state.beats(value):
            snap = data.snapshot
            model_uri = job.log_model(
                project,
                model,
                data.parts,
                valid_x,
                output,
                snap,
                run,
                data.task,
                scored=data.parts.valid,
            )
    except Stopped:
        mlflow.end_run("KILLED")
        raise
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    mlflow.end_run()
    usage.log_gpu_seconds(mlflow.MlflowClient(), run_id, time.time() - started)
    asked = {k: params[k] for k in spec.space}
    return Trial(number, run_id, value, asked, scores, model_uri)


def _mark_best(client: Any, parent_id: str, state: SweepState) -> None:
    """The best trial tagged; its params, metric and run id on the parent."""
    best = state.best
    client.log_metric(parent_id, "trials_done", float(state.done))
    if state.failed:
        client.log_metric(parent_id, "trials_failed", float(state.failed))
    if best is None:
        return
    client.set_tag(best.run_id, BEST_TAG, "true")
    client.set_tag(parent_id, "workbench.sweep.best_run_id", best.run_id)
    client.set_tag(parent_id, "workbench.sweep.best_trial", str(best.number))
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    client.log_batch(
        parent_id,
        metrics=[Metric(k, v, now, 0) for k, v in best.metrics.items()],
        params=[Param(f"best_{k}", str(v)[:6000]) for k, v in best.params.items()],
    )
    if best.model_uri:
        client.set_tag(parent_id, "workbench.model_uri", best.model_uri)


def result_of(
    parent_id: str, best: Trial, spec: SweepSpec, state: SweepState
) -> events.TrainResult:
    """The sweep's result event: the parent run, the best trial's model and metrics."""
    return events.TrainResult(
        run_id=parent_id,
        model_uri=best.model_uri or "",
        metrics=best.metrics,
        extra={
            "best_run_id": best.run_id,
            "best_trial": best.number,
            "best_params": {**spec.fixed, **best.params},
            "trials": spec.trials,
            "trials_done": state.done,
            "trials_failed": state.failed,
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workbench.training.sweep")
    parser.add_argument("--project", required=True)
    parser.add_argument("--job-id", required=True)
    parser.add_argument("--sweep", required=True, help="the sweep's spec (JSON, see SweepSpec)")
    parser.add_argument("--parallel", type=int, default=0, help="trials at once (ray runner)")
    args = parser.parse_args(argv)
    stop = StopFlag()
    stop.install()
    project: Project | None = None
    try:
        spec = SweepSpec.from_json(args.sweep)
        project = Project.load(args.project)
        if os.environ.get("WORKBENCH_RUNNER") == "ray":  # trials as Ray tasks on the cluster
            from workbench.training import sweep_ray

            parent_id, state = sweep_ray.run_sweep(
                project, args.project, args.job_id, spec, stop, args.parallel
            )
        else:
            parent_id, state = run_sweep(project, args.job_id, spec, stop)
    except WorkbenchError as exc:
        events.emit_event(events.Error(str(exc)))
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a library failed: one line, the traceback kept (as training)
        first = (str(exc).strip().splitlines() or [""])[0]
        message = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        where = job._save_traceback(project, args.job_id)
        events.emit_event(events.Error(message))
        print(f"error: {message}" + (f" (traceback: {where})" if where else ""), file=sys.stderr)
        return 1
    best = state.best
    if best is not None:
        shown = f"{state.key}={best.value:.4f}"
        print(f"best: trial {best.number} (run {best.run_id}) {shown}", flush=True)
    if stop.requested:
        print(f"sweep stopped after {state.done} of {spec.trials} trial(s)", flush=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)  # ends as a stopped job (PID 1 ignores it: 143)
        return 143
    assert best is not None and best.model_uri  # the best so far always has its model
    events.emit_event(result_of(parent_id, best, spec, state))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
