"""Business value on the real trained project (v1 production, v2 staging): the pipeline's gate
by value (`[gate] by_value`) and the canary rule's value watch reading the real logs."""

from __future__ import annotations

import pytest

from workbench.project import Project
from workbench.serving.canary_rule import WindowStats, judge
from workbench.serving.canary_value import ValueWatch
from workbench.serving.prediction_log import PredictionLogger
from workbench.store.parquet_log import ParquetLog, utcnow
from workbench.value import from_metrics, per_1k

pytestmark = pytest.mark.integration

MONEY = '[monitoring.value]\ntrue_positive = 100.0\nfalse_positive = -5.0\nunit = "EUR"\n'


def _priced(project: Project, gate: str = "", canary: str = "") -> Project:
    path = project.root / "workbench.toml"
    text = path.read_text().replace("num_iterations = 150", "num_iterations = 10")
    if gate:
        text = text.replace("[gate]\n", f"[gate]\n{gate}\n")
    if canary:
        text += f"\n[serving.canary]\n{canary}\n"
    path.write_text(text + "\n" + MONEY)
    return Project.load(project.root)


def test_the_gate_compares_value_on_the_same_holdout(trained_project: Project) -> None:
    from workbench.jobs.control import resolve_runner
    from workbench.pipeline import flow

    project = _priced(trained_project, gate="by_value = true")
    assert project.config.gate.by_value
    result = flow.run(project, resolve_runner(project))
    gate = result.gate
    value = project.config.monitoring.value
    assert gate["metric"] == "value_per_1k" and "per 1,000" in gate["reason"]
    assert gate["candidate"] == pytest.approx(per_1k(value, "binary", from_metrics(result.metrics)))
    champion = flow.score_champion(project, 1)  # production, on the same holdout
    assert gate["champion"] == pytest.approx(per_1k(value, "binary", from_metrics(champion)))
    assert gate["passed"] == (gate["delta"] > 0)


def test_the_value_watch_lets_the_rule_roll_back(trained_project: Project) -> None:
    project = _priced(trained_project, canary="min_requests = 5\nmin_value_drop_per_1k = 1000.0")
    rule = project.config.serving.canary
    watch = ValueWatch(project, every_s=0)
    name = project.config.model_name
    # production catches every fraud (tp), the canary raises false alarms (fp)
    with PredictionLogger(project.logs_root, interval_s=0.05) as logger:
        for i in range(10):
            logger.log(f"vp{i}", name, 1, "production", {}, 0.9, 1.0, 200, None)
            logger.log(f"vc{i}", name, 2, "canary", {}, 0.9, 1.0, 200, None)
    ParquetLog(project.logs_root, "labels").append(
        [{"ts": utcnow(), "request_id": f"vp{i}", "label": 1.0, "source": "t"} for i in range(10)]
        + [{"ts": utcnow(), "request_id": f"vc{i}", "label": 0.0, "source": "t"} for i in range(10)]
    )
    live = WindowStats(10, 0, 2.0)
    prod, canary = watch.apply(rule, live, live, version=1)
    assert (prod.value_per_1k, prod.labelled) == (pytest.approx(100_000), 10)
    assert (canary.value_per_1k, canary.labelled) == (pytest.approx(-5_000), 10)
    reason = judge(rule, prod, canary)
    assert reason is not None and reason.startswith("canary value -5,000.00 vs production")
    off = ValueWatch(Project(project.root, trained_project.config))  # no [monitoring.value]
    assert off.apply(rule, live, live, version=1) == (live, live)
