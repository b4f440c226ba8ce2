"""`workbench demo`'s second act for real: a served model, clean then drifted traffic with
labels, the monitor firing, a retrained candidate started as a canary."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from workbench.demo import acts as demo
from workbench.jobs import control as jobs
from workbench.project import Project
from workbench.serving import deployments

pytestmark = pytest.mark.integration


def test_second_act_retrains_and_starts_a_canary(_trained_template: Path, tmp_path: Path) -> None:
    root = tmp_path / "demo"
    shutil.copytree(_trained_template, root)
    said: list[str] = []
    try:
        out = demo.second_act(root, echo=said.append)
        project = Project.load(root)
        outcome = out["monitor"]
        assert outcome["fired"] and outcome["acted"] and outcome["error"] is None, said
        assert outcome["canary"] is True
        state = deployments.read_state(project)
        assert state.canary is not None and state.canary.version == outcome["candidate"]
        # the running server picked the canary up
        assert deployments.wait_applied(project, state.generation, 30)
        assert any("started it as a canary" in line for line in said)
        allowed = project.config.schema_["merchant_category"].allowed or []
        assert "crypto_exchange" in allowed and "*" in project.config.data.path
    finally:
        project = Project.load(root)
        report = deployments.read_server(project)
        if report:
            jobs.stop_job(project, str(report["job_id"]))
            deadline = time.time() + 30
            while time.time() < deadline and deployments.read_server(project):
                time.sleep(0.2)
