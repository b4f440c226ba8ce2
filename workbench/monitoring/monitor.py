"""Continuous training: check drift and performance on a schedule; when the policy in
`[monitor]` fires, retrain on the newest data (the pipeline), register the candidate and,
when a server runs and `canary_traffic` > 0, start it as a canary. Each trigger is audited
with its reason, and a cooldown keeps a drifting stream from retraining in a loop.

`workbench monitor` runs it in the foreground; the TUI runs the same `check_once` in a
worker when `[monitor] enabled = true`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from workbench.project import Project
from workbench.registry import audit
from workbench.store.parquet_log import utcnow

TRIGGER = "monitor.retrain"


@dataclass
class MonitorOutcome:
    at: str
    fired: bool  # the policy asked for a retraining
    acted: bool  # ... and it ran (not in cooldown, not a dry run)
    reason: str  # why it fired, or why nothing happened
    check: dict[str, Any] = field(default_factory=dict)
    candidate: int | None = None  # the version the retraining registered
    canary: bool = False  # started as a canary
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def last_trigger(project: Project) -> datetime | None:
    from workbench.store.db import Db

    with Db(project.logs_root) as db:
        rows = db.rows(
            "SELECT max(ts) AS ts FROM audit WHERE action = ? AND model = ?",
            [TRIGGER, project.config.model_name],
        )
    return rows[0]["ts"] if rows and rows[0]["ts"] is not None else None


def policy(project: Project, result: Any) -> str | None:
    """The reason to retrain now, or None (result: a drift_checks.CheckResult): enough
    features alert, or the task's metric got worse than the holdout's by more than the
    allowed worsening (`[monitor] metric_drop` in the metric's units, or
    `metric_drop_relative` of the holdout value; a rise for rmse, a fall for auc), or the
    metric's CBPE estimate fell by `estimated_metric_drop` (binary; off by default)."""
    cfg = project.config.monitor
    reasons = []
    alerts = result.alerts
    if len(alerts) >= cfg.alert_features:
        reasons.append(f"drift alert on {len(alerts)} feature(s): {', '.join(alerts[:5])}")
    from workbench.monitoring.performance import decay_reason

    decayed = decay_reason(result.metric)
    if decayed:
        reasons.append(decayed)
    from workbench.monitoring.estimate import estimated_decay

    estimated = estimated_decay(project, result)  # [monitor] estimated_metric_drop (CBPE)
    if estimated:
        reasons.append(estimated)
    return "; ".join(reasons) or None


def check_once(
    project: Project,
    runner: Any = None,
    dry_run: bool = False,
    on_step: Callable[[str, str, str], None] | None = None,
    on_log: Callable[[str], object] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> MonitorOutcome:
    """One round: check, judge, and retrain (plus canary) when the policy fires.
    `should_stop` reaches the retraining job (a TUI that quits stops it)."""
    from workbench.errors import WorkbenchError
    from workbench.jobs.control import resolve_runner
    from workbench.jobs.observer import JobObserver
    from workbench.monitoring import checks as drift_checks
    from workbench.pipeline import flow as pipeline
    from workbench.serving import deployments

    cfg = project.config.monitor
    now = utcnow()
    stamp = now.isoformat(timespec="seconds")
    result = drift_checks.check(project)
    summary = {
        "version": result.version,
        "rows": result.report.n_rows,
        "alerts": result.alerts,
        "warnings": result.report.warnings,
        "metric": result.metric,
        "check_id": result.check_id,
    }
    if result.report.n_rows < cfg.min_rows:
        why = f"only {result.report.n_rows} predictions in the window (min_rows {cfg.min_rows})"
        return MonitorOutcome(stamp, False, False, why, summary)
    reason = policy(project, result)
    if reason is None:
        return MonitorOutcome(stamp, False, False, "no drift over the policy's limits", summary)
    last = last_trigger(project)
    if last is not None:
        last = last if last.tzinfo else last.replace(tzinfo=now.tzinfo)
        until = last + timedelta(seconds=cfg.cooldown_s)
        if now < until:
            why = f"{reason} (in cooldown until {until.isoformat(timespec='seconds')})"
            return MonitorOutcome(stamp, True, False, why, summary)
    if dry_run:
        return MonitorOutcome(stamp, True, False, f"{reason} (dry run)", summary)
    audit.record(
        project, TRIGGER, project.config.model_name, None, result.version, None, reason,
        by="monitor", check_id=result.check_id, alerts=result.alerts, metric=result.metric,
    )  # fmt: skip
    outcome = MonitorOutcome(stamp, True, True, reason, summary)
    try:
        runner = runner or resolve_runner(project)
        observer = JobObserver(
            on_step=on_step or JobObserver.on_step,
            on_log=on_log or JobObserver.on_log,
            should_stop=should_stop or JobObserver.should_stop,
        )
        done = pipeline.run(
            project, runner, observer, auto_promote=False, run_name=f"retrain-on-drift-{stamp}",
            trigger=result.check_id,  # the job's record names the check: lineage's link
        )  # fmt: skip
        outcome.candidate = done.version
        if cfg.canary_traffic > 0 and deployments.read_server(project) is not None:
            deployments.start_canary(
                project, done.version, cfg.canary_traffic,
                reason=f"monitor: retrained on drift ({reason})",
            )  # fmt: skip
            outcome.canary = True
    except WorkbenchError as exc:
        outcome.error = str(exc)
    return outcome


def run_forever(
    project: Project,
    interval_s: float | None = None,
    on_outcome: Callable[[MonitorOutcome], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    runner: Any = None,
) -> None:
    """`check_once` every interval until `should_stop` says so; errors are reported, not
    raised, so one bad round does not end the monitor."""
    from workbench.errors import WorkbenchError

    interval = interval_s or project.config.monitor.interval_s
    while not (should_stop and should_stop()):
        try:
            outcome = check_once(project, runner, should_stop=should_stop)
        except WorkbenchError as exc:
            outcome = MonitorOutcome(
                utcnow().isoformat(timespec="seconds"), False, False, "check failed", error=str(exc)
            )
        if on_outcome:
            on_outcome(outcome)
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline and not (should_stop and should_stop()):
            time.sleep(min(0.5, interval))
