"""The promotion gate: does the candidate beat the production model on the same holdout?"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from workbench.config import GateSection
from workbench.training.evaluation import higher_is_better


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
    for other, allowed in gate.max_regression.items():
        if other not in candidate and f"holdout_{other}" in candidate:
            other = f"holdout_{other}"  # a bare name means the holdout metric, as `metric` does
        c, p = candidate.get(other), champion.get(other)
        if c is None or p is None or math.isnan(c) or math.isnan(p):
            continue
        loss = (p - c) if higher_is_better(other) else (c - p)
        if loss > allowed:
            return GateDecision(
                False,
                f"{other} regressed by {loss:.4f} (allowed {allowed})",
                metric,
                cand,
                champ,
                delta,
            )
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
