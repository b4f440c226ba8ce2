"""The promotion gate: does the candidate beat the production model on the same holdout?"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from workbench.config import GateSection
from workbench.config_monitoring import ValueSection
from workbench.training.evaluation import higher_is_better
from workbench.value import fmt, from_metrics, per_1k, why_not

#: The GateDecision's metric when `[gate] by_value` compares the business value.
VALUE_METRIC = "value_per_1k"


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reason: str
    metric: str
    candidate: float
    champion: float | None
    delta: float | None

    @property
    def decision(self) -> str:
        return "pass" if self.passed else "fail"

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, **asdict(self)}


def decide(
    metric: str,
    candidate: dict[str, float],
    champion: dict[str, float] | None,
    gate: GateSection,
) -> GateDecision:
    cand = candidate.get(metric, math.nan)
    if math.isnan(cand):
        return GateDecision(
            False, f"candidate has no {metric} on the holdout", metric, cand, None, None
        )
    if champion is None:
        return GateDecision(True, "no production model yet", metric, cand, None, None)
    champ = champion.get(metric, math.nan)
    if math.isnan(champ):
        return GateDecision(
            True, f"production model has no {metric}; candidate wins", metric, cand, None, None
        )
    sign = 1.0 if higher_is_better(metric) else -1.0
    delta = cand - champ
    gain = sign * delta
    regressed = _regressed(candidate, champion, gate)
    if regressed:
        return GateDecision(False, regressed, metric, cand, champ, delta)
    # A tie is not a win unless the gate explicitly tolerates a loss (negative min_improvement).
    passed = gain >= gate.min_improvement and (gain > 0 or gate.min_improvement < 0)
    verdict = "beats" if passed else "does not beat"
    return GateDecision(
        passed,
        f"candidate {metric} {cand:.4f} {verdict} production {champ:.4f} "
        f"(delta {delta:+.4f}, needs {sign * gate.min_improvement:+.4f})",
        metric,
        cand,
        champ,
        delta,
    )


def _regressed(
    candidate: dict[str, float], champion: dict[str, float], gate: GateSection
) -> str | None:
    """Which `[gate.max_regression]` metric the candidate lost too much on, as a reason."""
    for other, allowed in gate.max_regression.items():
        if other not in candidate and f"holdout_{other}" in candidate:
            other = f"holdout_{other}"  # a bare name means the holdout metric, as `metric` does
        c, p = candidate.get(other), champion.get(other)
        if c is None or p is None or math.isnan(c) or math.isnan(p):
            continue
        loss = (p - c) if higher_is_better(other) else (c - p)
        if loss > allowed:
            return f"{other} regressed by {loss:.4f} (allowed {allowed})"
    return None


def decide_value(
    value: ValueSection,
    task: str,
    candidate: dict[str, float],
    champion: dict[str, float] | None,
    gate: GateSection,
) -> GateDecision:
    """`[gate] by_value`: the candidate must beat production's `[monitoring.value]` per 1,000
    holdout predictions by `min_improvement` (in that unit), both priced from their outcomes on
    the same holdout (`outcome_tp`, ... in each metrics dict); `max_regression` still guards
    the metrics."""
    name = VALUE_METRIC
    cand = per_1k(value, task, from_metrics(candidate))
    if cand is None:
        found = from_metrics(candidate)
        why = why_not(value, task, found) if found else "its run logged no holdout outcomes"
        why = f"candidate has no value on the holdout ({why})"
        return GateDecision(False, why, name, math.nan, None, None)
    if champion is None:
        return GateDecision(True, "no production model yet", name, cand, None, None)
    champ = per_1k(value, task, from_metrics(champion))
    if champ is None:
        why = "production model has no value on the holdout; candidate wins"
        return GateDecision(True, why, name, cand, None, None)
    delta = cand - champ
    regressed = _regressed(candidate, champion, gate)
    if regressed:
        return GateDecision(False, regressed, name, cand, champ, delta)
    passed = delta >= gate.min_improvement and (delta > 0 or gate.min_improvement < 0)
    verdict = "beats" if passed else "does not beat"
    unit = value.unit
    return GateDecision(
        passed,
        f"candidate value {fmt(cand, unit)} per 1,000 {verdict} production {fmt(champ, unit)} "
        f"(delta {fmt(delta)}, needs {fmt(gate.min_improvement)})",
        name,
        cand,
        champ,
        delta,
    )
