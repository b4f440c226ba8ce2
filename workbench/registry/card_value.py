"""The model card's business value (`[monitoring.value]` per 1,000 predictions): live, from
the version's predictions joined with their labels (at the evaluation threshold), and on the
holdout at training. The card has no per-row holdout predictions, so the holdout value comes
from the outcome counts the training job logged on the run (`outcome_tp`, ...), or, for a run
logged before them, is derived from its holdout accuracy, precision and recall (binary) or
MAE (regression) and holdout row count; `source` says which. The champion's value at the gate
comes from the `champion_outcome_*` metrics the pipeline logged, when it did."""

from __future__ import annotations

from typing import Any

from workbench.project import Project
from workbench.store.db import Db
from workbench.value import Outcomes, from_metrics, from_rates, per_1k, why_not

_LIVE_SQL = """
SELECT count(*) FILTER (WHERE l.label = 1 AND p.output >= $3) AS tp,
       count(*) FILTER (WHERE l.label = 0 AND p.output >= $3) AS fp,
       count(*) FILTER (WHERE l.label = 1 AND p.output < $3) AS fn,
       count(*) FILTER (WHERE l.label = 0 AND p.output < $3) AS tn,
       sum(abs(p.output - l.label)) AS abs_error, count(*) AS n
FROM predictions p JOIN labels l USING (request_id)
WHERE p.model = $1 AND p.version = $2 AND p.status < 400
  AND p.output IS NOT NULL AND isfinite(p.output) AND isfinite(l.label)
"""


def value(project: Project, version: int, run: dict[str, Any], db: Db) -> dict[str, Any] | None:
    """{unit, threshold, live, holdout, champion} (each {value_per_1k, n, source} or None with
    `why`), or None when `[monitoring.value]` is not set."""
    cfg = project.config
    priced = cfg.monitoring.value
    if not priced.configured:
        return None
    task = cfg.task.type
    metrics = run.get("metrics") or {}
    rows = (run.get("params") or {}).get("rows_holdout")
    holdout, source = from_metrics(metrics), "the holdout's outcome counts logged at training"
    if holdout is None:
        holdout = from_rates(task, metrics, float(rows) if rows else None)
        source = "derived from the holdout's " + (
            "MAE" if task == "regression" else "accuracy, precision and recall"
        )
    champion = from_metrics(metrics, "champion_outcome_")
    return {
        "unit": priced.unit,
        "threshold": cfg.evaluation.threshold if task == "binary" else None,
        "live": _priced(project, task, _live(project, version, db), "labelled predictions"),
        "holdout": _priced(project, task, holdout, source),
        "champion": _priced(project, task, champion, "production's outcomes at the gate")
        if champion
        else None,
    }


def _live(project: Project, version: int, db: Db) -> Outcomes | None:
    cfg = project.config
    (row,) = db.rows(_LIVE_SQL, [cfg.model_name, version, cfg.evaluation.threshold])
    if not row["n"]:
        return None
    if cfg.task.type == "regression":
        return Outcomes(abs_error=float(row["abs_error"]), n=float(row["n"]))
    return Outcomes(*(float(row[k]) for k in ("tp", "fp", "fn", "tn")))


def _priced(project: Project, task: str, outcomes: Outcomes | None, source: str) -> dict[str, Any]:
    cfg = project.config.monitoring.value
    found = per_1k(cfg, task, outcomes)
    return {
        "value_per_1k": found,
        "n": int(outcomes.n) if outcomes else 0,
        "source": source if found is not None else None,
        "why": why_not(cfg, task, outcomes) if found is None else None,
    }
