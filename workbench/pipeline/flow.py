"""The pipeline: validate -> train -> evaluate -> gate -> register -> aliases.

Each step reports through the observer's `on_step(name, status, detail)`; training streams
progress and log lines to the same observer, and polls its `should_stop`. The
champion (the version holding the production alias) is scored on the candidate's holdout, so
the gate compares both models on the same rows. The version is registered with the alias
moves the gate decided on (its intent), so a pipeline killed between registering and moving
leaves a version the next reader settles.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.data import snapshot as data_mod
from workbench.data.validation import ValidationReport, validate_frame
from workbench.errors import JobFailed, ValidationFailed
from workbench.jobs.control import JobOutcome, run_training
from workbench.jobs.events import TrainResult
from workbench.jobs.observer import QUIET, JobObserver
from workbench.pipeline.gate import decide, decide_value
from workbench.plugins import Runner
from workbench.project import Project
from workbench.registry import versions as registry

#: The candidate run's tag naming the production version the gate compared it with.
CHAMPION_TAG = "workbench.champion_version"
#: The run's tag summing up the validation of the data it trained on (JSON, see
#: `validation_summary`); the whole report is the run's artifact VALIDATION_ARTIFACT.
VALIDATION_TAG = "workbench.validation"
VALIDATION_ARTIFACT = "validation/report.json"
#: The first warnings the summary names (the artifact has them all).
_WARNINGS_SHOWN = 5


@dataclass
class PipelineResult:
    run_id: str
    model: str
    version: int
    metrics: dict[str, float]
    gate: dict[str, Any]
    aliases_set: list[str]
    job_id: str
    runner: str
    data_digest: str
    champion_version: int | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None  # the approval request auto-promote made instead of moving

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate(project: Project) -> ValidationReport:
    frame = data_mod.load_frame(project.data_path, project.config.schema_)
    return validate_frame(frame, project.config)


def score_champion(project: Project, version: int) -> dict[str, float]:
    """Score the production version on the current holdout, as the task needs (classifier
    probabilities, never hard labels)."""
    from workbench.data import target as target_mod
    from workbench.serving.predictors import model_dir_for
    from workbench.training.evaluation import evaluate
    from workbench.training.reference import complete
    from workbench.training.scoring import ScoringError, load_scorer
    from workbench.value import outcome_metrics

    cfg = project.config
    frame = data_mod.load_frame(project.data_path, cfg.schema_)
    classes = target_mod.classes_of(frame, cfg)
    holdout = data_mod.split(target_mod.encode(frame, cfg, classes), cfg).holdout
    model_dir = model_dir_for(project, version)
    task = complete(project, model_dir, version, profile=False)  # plain MLflow: made now
    if task.type != cfg.task.type:
        raise ScoringError(
            f"production (v{version}) is a {task.type} model; the project's task is {cfg.task.type}"
        )
    if task.type != "regression" and [str(c) for c in task.classes] != [str(c) for c in classes]:
        raise ScoringError(
            f"production (v{version}) knows classes {task.classes[:6]}; the data has {classes[:6]}"
        )
    output = load_scorer(model_dir, task)(data_mod.to_model_frame(holdout, cfg))
    y = holdout[cfg.data.target].to_numpy()
    scores = evaluate(task.type, y, output, task.threshold)
    # its outcomes at the threshold too (`outcome_tp`, ...): what [gate] by_value prices
    return {f"holdout_{k}": v for k, v in scores.items()} | outcome_metrics(
        task.type, y, output, task.threshold
    )


def _record_champion(project: Project, run_id: str, version: int, scores: dict[str, float]) -> None:
    """What the gate saw, kept on the candidate's run: production's metrics on the same holdout
    (`champion_holdout_auc`, ...) and which version that was, so tables can show both."""
    import math

    from workbench.store import tracking

    client = tracking.client(project)
    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(f"champion_{k}", v, now, 0) for k, v in scores.items() if not math.isnan(v)]
        + [Metric("champion_version", float(version), now, 0)],
        tags=[RunTag(CHAMPION_TAG, str(version))],
    )


def time_range(frame: Any, column: str | None) -> dict[str, Any] | None:
    """{column, start, end} (ISO) of the data's timestamp column; None without one."""
    if not column or column not in frame.columns or not frame.height:
        return None
    col = frame.get_column(column)
    lo, hi = col.min(), col.max()
    if lo is None or hi is None:
        return None

    def text(value: Any) -> str:
        return value.isoformat() if hasattr(value, "isoformat") else str(value)

    return {"column": column, "start": text(lo), "end": text(hi)}


def validation_summary(report: ValidationReport, span: dict[str, Any] | None) -> dict[str, Any]:
    """What the run's VALIDATION_TAG keeps: the verdict, the counts, the first warnings as
    `check column: detail`, the data's time range and where the whole report is."""
    shown = [
        f"{c.check} {c.column}: {c.detail[:160]}" if c.column else f"{c.check}: {c.detail[:160]}"
        for c in report.warnings[:_WARNINGS_SHOWN]
    ]
    return {
        "passed": report.passed,
        "rows": report.rows,
        "columns": report.columns,
        "checks": len(report.checks),
        "failures": len(report.failures),
        "warnings": len(report.warnings),
        "first_warnings": shown,
        "time_range": span,
        "report": VALIDATION_ARTIFACT,
    }


def _record_validation(
    project: Project, run_id: str, report: ValidationReport, span: dict[str, Any] | None
) -> None:
    """The validation of the data the run trained on, kept on the run: the summary tag (one
    `log_batch`) and the whole report as an artifact."""
    import json

    from mlflow.entities import RunTag

    from workbench.store import tracking

    client = tracking.client(project)
    summary = json.dumps(validation_summary(report, span), separators=(",", ":"), default=str)
    client.log_batch(run_id, tags=[RunTag(VALIDATION_TAG, summary)])
    client.log_dict(run_id, {**report.to_dict(), "time_range": span}, VALIDATION_ARTIFACT)


def _validate_step(
    project: Project, step: Callable[[str, str, str], object]
) -> tuple[ValidationReport, dict[str, Any] | None]:
    """The report of the project's data and its time range (ValidationFailed when it fails)."""
    step("validate", "running", str(project.data_path))
    frame = data_mod.load_frame(project.data_path, project.config.schema_)
    report = validate_frame(frame, project.config)
    span = time_range(frame, project.config.data.timestamp)
    if not report.passed:
        step("validate", "failed", f"{len(report.failures)} check(s) failed")
        raise ValidationFailed(
            f"data validation failed: {len(report.failures)} check(s) failed "
            f"(run `workbench validate` for the report)"
        )
    step("validate", "done", f"{report.rows:,} rows, {len(report.warnings)} warning(s)")
    return report, span


def _train_step(
    project: Project,
    runner: Runner,
    observer: JobObserver,
    run_name: str | None,
    params: dict[str, Any] | None,
    trigger: str | None = None,
) -> tuple[JobOutcome, TrainResult]:
    """The training job, and the result it reported (JobFailed when it did not succeed)."""
    step = observer.on_step
    step("train", "running", f"{project.config.trainer.plugin} on the {runner.name} runner")
    outcome = run_training(
        project, runner, observer, run_name, params, pipeline=True, trigger=trigger
    )
    result = outcome.train_result
    if not outcome.ok or result is None:
        step("train", "failed", outcome.reason or outcome.status)
        raise JobFailed(
            f"training job {outcome.job_id} {outcome.status}: {outcome.reason} "
            f"(log: {outcome.log_path})"
        )
    step("train", "done", f"run {result.run_id[:8]}")
    return outcome, result


def _held_back(project: Project, alias: str) -> str | None:
    """Why auto-promote must not move `alias` itself ([governance]): "request" when it needs
    approvals (the pipeline asks instead), a refusal's line, or None (it moves)."""
    from workbench.errors import RegistryError
    from workbench.registry import approvals_policy

    if approvals_policy.required(project, alias):
        return "request"
    try:
        approvals_policy.check_move(project, alias)
    except RegistryError as exc:
        return str(exc)
    return None


def _request_promotion(project: Project, version: int, reason: str) -> tuple[str | None, str]:
    """Ask for the production move the gate passed: (request id, a note for the step)."""
    from workbench.errors import WorkbenchError
    from workbench.registry import approvals

    alias = project.config.registry.production_alias
    try:
        req = approvals.request(project, alias, version, reason)
    except WorkbenchError as exc:
        return None, f"; {alias} not moved, not requested ({exc})"
    return req.id, f"; {alias} needs approval: request {req.id} ({req.needs()})"


def run(
    project: Project,
    runner: Runner,
    observer: JobObserver | None = None,
    auto_promote: bool | None = None,
    params: dict[str, Any] | None = None,
    run_name: str | None = None,
    trigger: str | None = None,
) -> PipelineResult:
    """Run every step, told to `observer`; `params` overrides trainer params for this run
    only; `trigger`: the drift check whose retraining this is (kept in the job's record)."""
    observer = observer or QUIET
    step = observer.on_step
    cfg = project.config
    registry.settle_versions(project)  # what an earlier, killed pipeline left

    report, span = _validate_step(project, step)
    outcome, result = _train_step(project, runner, observer, run_name, params, trigger)
    _record_validation(project, result.run_id, report, span)
    metrics = result.metrics

    metric = f"holdout_{cfg.metric}"
    champion_version = registry.aliases(project).get(cfg.registry.production_alias)
    step(
        "evaluate", "running", "scoring production on the same holdout" if champion_version else ""
    )
    champion = score_champion(project, champion_version) if champion_version else None
    if champion is not None and champion_version is not None:
        _record_champion(project, result.run_id, champion_version, champion)
    step("evaluate", "done", f"{metric} = {metrics.get(metric, float('nan')):.4f}")

    if cfg.gate.by_value:  # [monitoring.value] per 1,000 holdout predictions, both models
        gate = decide_value(cfg.monitoring.value, cfg.task.type, metrics, champion, cfg.gate)
    else:
        gate = decide(metric, metrics, champion, cfg.gate)
    step("gate", "done" if gate.passed else "failed", gate.reason)

    promote = cfg.gate.auto_promote if auto_promote is None else auto_promote
    moves = [
        (
            cfg.registry.candidate_alias,
            "set",
            f"pipeline candidate (gate {gate.decision}: {gate.reason})",
        )
    ]
    production = cfg.registry.production_alias
    held = _held_back(project, production) if gate.passed and promote else None
    if gate.passed and promote and held is None:
        moves.append((production, "auto-promote", f"auto-promoted: {gate.reason}"))
    # The version carries what is meant for it, so a kill before the aliases moved is settled
    # by whoever looks next (registry.settle_versions), never left silent.
    intent = registry.new_intent(project, moves, run_id=result.run_id, job_id=outcome.job_id)
    version = registry.register(
        project,
        result.run_id,
        result.model_uri,
        description=f"gate {gate.decision}: {gate.reason}",
        intent=intent,
    )
    step("register", "done", f"{cfg.model_name} v{version}")

    aliases_set = registry.apply_intent(project, version, intent)
    request_id, note = None, ""
    if held == "request":
        request_id, note = _request_promotion(project, version, f"auto-promote: {gate.reason}")
    elif held:
        note = f"; {production} not moved ({held})"
    step("alias", "done", ", ".join(aliases_set) + note)

    return PipelineResult(
        run_id=result.run_id,
        model=cfg.model_name,
        version=version,
        metrics=metrics,
        gate=gate.to_dict(),
        aliases_set=aliases_set,
        job_id=outcome.job_id,
        runner=outcome.runner,
        data_digest=result.data_digest,
        champion_version=champion_version,
        validation={"rows": report.rows, "warnings": len(report.warnings), "time_range": span},
        request_id=request_id,
    )
