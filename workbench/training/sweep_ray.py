"""The sweep on a Ray cluster: the sweep job (run by the ray runner) fans its trials out as
Ray tasks, `parallel` at a time.

Optuna's ask and tell in batches: the driver asks a batch of `parallel` trials, runs each
as a task (`WORKBENCH_RAY_TRIAL_CPUS` CPUs each, from `[ray] trial_cpus`), and tells the
study their values in trial order, so the log, the progress events and the best so far read
as the local sweep's do. Each task trains its trial in a nested MLflow run of the sweep's
parent (`mlflow.parentRunId`), through the same `sweep._trial`; it logs its model when it
beats the best known when the batch was asked, so the final best always has its model. The
default `parallel` is the cluster's CPUs over the trial's CPUs.

SIGTERM (`workbench stop`, `ray job stop`) stops the sweep: the tasks under way are cancelled,
the best of the trials done is marked, the parent run ends KILLED.
"""

from __future__ import annotations

import logging
import os
import time
from functools import cache
from typing import Any

from workbench.errors import WorkbenchError
from workbench.jobs import events
from workbench.project import Project
from workbench.store import tracking
from workbench.tasks import higher_is_better
from workbench.training import job, sweep, usage
from workbench.training.search_space import SweepSpec
from workbench.training.sweep import StopFlag, SweepState, Trial

WAIT_S = 0.5


@cache
def _prepared(project_arg: str) -> tuple[Project, job.Prepared]:
    """The project and its split data, once per Ray worker process."""
    project = Project.load(project_arg)
    tracking.setup(project)
    return project, job.prepare(project)


def trial_task(
    project_arg: str,
    job_id: str,
    spec_json: str,
    number: int,
    params: dict[str, Any],
    state: SweepState,
    parent_id: str,
) -> Trial:
    """One trial in a Ray task: a nested run of `parent_id` (`state` holds the best known)."""
    usage.configure_sampling()
    project, data = _prepared(project_arg)
    spec = SweepSpec.from_json(spec_json)
    return sweep._trial(project, data, job_id, spec, number, params, state, StopFlag(), parent_id)


def parallelism(requested: int, trial_cpus: float) -> int:
    """`requested`, or the cluster's CPUs over a trial's (at least 1)."""
    if requested > 0:
        return requested
    import ray

    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    cpus = float(resources.get("CPU", 1.0))
    return max(1, int(cpus // trial_cpus))


def run_sweep(
    project: Project, project_arg: str, job_id: str, spec: SweepSpec, stop: StopFlag, parallel: int
) -> tuple[str, SweepState]:
    """The sweep with its trials as Ray tasks: the parent run's id and how it went."""
    import mlflow
    import optuna
    import ray

    cfg = project.config
    job.prepare(project)  # the data and the trainer, checked once before any task
    state = SweepState(f"valid_{cfg.metric}", higher_is_better(cfg.metric))
    tracking.setup(project)
    usage.configure_sampling()
    ray.init(logging_level=logging.WARNING, log_to_driver=True)
    trial_cpus = float(os.environ.get("WORKBENCH_RAY_TRIAL_CPUS") or 1.0)
    width = parallelism(parallel, trial_cpus)
    remote = ray.remote(num_cpus=trial_cpus, max_retries=0)(trial_task)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if state.higher else "minimize",
        sampler=optuna.samplers.TPESampler(seed=spec.seed),
    )
    dists = {k: sweep.distribution(d) for k, d in spec.space.items()}
    started = time.time()
    tags = {"workbench.job_id": job_id, "workbench.sweep.trials": str(spec.trials)}
    parent = mlflow.start_run(
        run_name=spec.name, tags={**tags, "workbench.sweep.parallel": str(width)}
    )
    parent_id = parent.info.run_id
    events.emit_event(events.Run(parent_id))
    print(f"sweep: {spec.trials} trial(s), {width} at a time as Ray tasks", flush=True)
    status = "FAILED"
    try:
        mlflow.log_params(sweep._sweep_params(spec, state.key))
        events.emit_event(events.Progress(0, spec.trials, {}))
        number = 0
        while number < spec.trials and not stop.requested:
            size = min(width, spec.trials - number)
            batch = []
            for n in range(number + 1, number + size + 1):
                asked = study.ask(dists)
                params = {**cfg.trainer.params, **spec.fixed, **asked.params}
                args = (project_arg, job_id, spec.to_json(), n, params, state, parent_id)
                batch.append((n, asked, remote.remote(*args)))
            number += size
            _collect(batch, study, state, spec, stop)
        if state.best is None and not stop.requested:
            raise WorkbenchError(
                f"every trial of the sweep failed (last: {state.last_error or 'no trial ran'})"
            )
        sweep._mark_best(mlflow.MlflowClient(), parent_id, state)
        status = "KILLED" if stop.requested else "FINISHED"
    finally:
        mlflow.end_run(status)
        usage.log_gpu_seconds(mlflow.MlflowClient(), parent_id, time.time() - started)
    return parent_id, state


def _collect(
    batch: list[tuple[int, Any, Any]], study: Any, state: SweepState, spec: SweepSpec, stop: Any
) -> None:
    """Each task's trial told to the study, in trial order; the rest cancelled on a stop."""
    import optuna
    import ray

    fail = optuna.trial.TrialState.FAIL
    for i, (number, asked, ref) in enumerate(batch):
        while not stop.requested and not ray.wait([ref], timeout=WAIT_S)[0]:
            pass
        if stop.requested:
            for _, later, pending in batch[i:]:
                ray.cancel(pending)
                study.tell(later, state=fail)
            return
        try:
            trial: Trial = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            if isinstance(cause, WorkbenchError):
                for _, _later, pending in batch[i + 1 :]:
                    ray.cancel(pending)
                raise cause from None  # wrong for every trial: stop
            study.tell(asked, state=fail)
            state.failed += 1
            state.last_error = f"{type(cause).__name__}: {str(cause).strip()[:200]}"
            print(f"trial {number}/{spec.trials} failed: {state.last_error}", flush=True)
            continue
        study.tell(asked, trial.value)
        sweep._record(state, trial, spec, {k: trial.params[k] for k in spec.space})
