"""Model cards on the real trained project (v1 production, v2 staging, through the pipeline):
the card's facts against the run's, the artifact kept with the version and rewritten after a
promotion, the formats, and the Models screen's `c`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import mlflow_client, run_cli
from workbench.project import Project
from workbench.registry import card, card_render, card_store
from workbench.registry import versions as registry

pytestmark = pytest.mark.integration

REASON = "ship it <script>alert('x')</script> | now"


def _artifact(project: Project, run_id: str, path: str) -> str | None:
    import tempfile

    try:
        with tempfile.TemporaryDirectory() as tmp:
            return Path(mlflow_client(project).download_artifacts(run_id, path, tmp)).read_text()
    except Exception:
        return None


@pytest.fixture(scope="module")
def carded(_trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A copy of the trained project; v2's stored card read before and after promoting v2."""
    root = tmp_path_factory.mktemp("card") / "proj"
    shutil.copytree(_trained_template, root)
    project = Project.load(root)
    v2 = next(v for v in registry.list_versions(project) if v.version == 2)
    assert v2.run_id
    # The copies of the session's template share its runs' artifact folders, so another
    # test's promotion may have rewritten v2's stored card: write it for this copy first.
    card_store.write(project, 2)
    before = _artifact(project, v2.run_id, card_store.JSON_PATH)
    registry.promote(project, 2, REASON)
    after = _artifact(project, v2.run_id, card_store.JSON_PATH)
    return {"project": project, "run_id": v2.run_id, "before": before, "after": after}


def _front_matter(text: str) -> dict[str, Any]:
    assert text.startswith("---\n")
    head, _, _ = text[4:].partition("\n---\n")
    loaded: dict[str, Any] = yaml.safe_load(head)
    return loaded


def test_card_facts_match_the_run(carded: dict[str, Any]) -> None:
    project: Project = carded["project"]
    run = mlflow_client(project).get_run(carded["run_id"])
    facts = card.gather(project, "production")
    assert facts["version"] == 2 and "production" in facts["aliases"]
    text = card_render.render_md(facts)

    header = _front_matter(text)
    (result,) = header["model-index"][0]["results"]
    got = {m["type"]: m["value"] for m in result["metrics"]}
    want = {k[8:]: v for k, v in run.data.metrics.items() if k.startswith("holdout_")}
    assert got == pytest.approx(want) and "auc" in got
    assert result["task"]["type"] == "tabular-classification"
    assert header["library_name"] == "lightgbm"

    (dataset,) = run.inputs.dataset_inputs
    data = facts["training_data"]
    assert data["digest"] == dataset.dataset.digest == result["dataset"]["revision"]
    params = run.data.params
    rows = sum(int(params[f"rows_{k}"]) for k in ("train", "valid", "holdout"))
    assert data["rows"]["total"] == rows and data["rows"]["train"] == int(params["rows_train"])
    assert data["time_range"]["column"] == "ts" and data["time_range"]["start"]
    assert data["validation"]["passed"] is True and data["validation"]["rows"] == rows
    # recorded by the pipeline on the run (tag + artifact), not checked again now
    summary = json.loads(run.data.tags["workbench.validation"])
    full = json.loads(_artifact(project, carded["run_id"], "validation/report.json") or "{}")
    assert summary["rows"] == full["rows"] == rows and summary["passed"] is True
    assert summary["warnings"] == full["warnings"] == data["validation"]["warnings"]
    assert len(full["checks"]) == summary["checks"] == data["validation"]["checks"]
    assert data["validation"]["note"].startswith("recorded by the pipeline")
    assert summary["time_range"] == full["time_range"]
    assert data["time_range"]["start"] == summary["time_range"]["start"]
    assert data["time_range"]["end"] == summary["time_range"]["end"]
    assert "Passed: " in text and "recorded by the pipeline" in text
    for section in (
        "## Intended use and limits",
        "## Training data",
        "## Training\n",
        "## Evaluation",
        "## Monitoring",
        "## History",
        "### Out of scope",
    ):
        assert section in text
    assert project.config.project.description in text
    assert f"`{dataset.dataset.digest}`" in text
    assert facts["training"]["trainer"] == "lightgbm"
    assert facts["training"]["params"]["learning_rate"] == params["learning_rate"]
    gate = facts["evaluation"]["gate"]
    description = mlflow_client(project).get_model_version(project.config.model_name, "2")
    assert description.description == f"gate {gate['decision']}: {gate['reason']}"
    assert gate["champion_version"] == 1 and gate["champion"]["holdout_auc"] == pytest.approx(
        run.data.metrics["champion_holdout_auc"]
    )
    assert any(
        "outside the ranges seen in training" in s for s in facts["intended_use"]["out_of_scope"]
    )


def test_stored_card_written_at_registration_and_rewritten_after_promotion(
    carded: dict[str, Any],
) -> None:
    project: Project = carded["project"]
    v1 = next(v for v in registry.list_versions(project) if v.version == 1)
    stored_v1 = _artifact(project, v1.run_id or "", card_store.JSON_PATH)
    assert stored_v1 is not None and json.loads(stored_v1)["version"] == 1
    md = _artifact(project, v1.run_id or "", card_store.MD_PATH)
    assert md is not None and md.startswith("---\n")

    before, after = json.loads(carded["before"]), json.loads(carded["after"])
    assert before["version"] == after["version"] == 2
    assert "production" not in before["aliases"] and "production" in after["aliases"]
    moves = after["history"]["alias_moves"]
    promoted = [m for m in moves if m["action"] == "promote" and m["to_version"] == 2]
    assert [m["reason"] for m in promoted] == [REASON]
    assert not [m for m in before["history"]["alias_moves"] if m["reason"] == REASON]
    # v1 lost production in that move: its card says so too
    stored_v1_after = json.loads(_artifact(project, v1.run_id or "", card_store.JSON_PATH) or "{}")
    assert "production" not in stored_v1_after["aliases"]


def test_html_escapes_and_json_round_trips(
    carded: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    project: Project = carded["project"]
    page = tmp_path / "card.html"
    code, out, err = run_cli(
        capsys, "--project", str(project.root), "card", "2", "--format", "html", "--out", str(page)
    )
    assert code == 0, err
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html

    code, out, err = run_cli(
        capsys, "--project", str(project.root), "card", "v2", "--format", "json"
    )
    assert code == 0, err
    loaded = json.loads(out)
    facts = card.gather(project, 2)
    assert {**loaded, "generated_at": None} == {
        **json.loads(card_render.render_json(facts)),
        "generated_at": None,
    }
    assert loaded["history"]["alias_moves"][-1]["reason"] == REASON
    assert loaded["front_matter"]["model-index"][0]["name"] == f"{project.config.model_name} v2"

    code, out, err = run_cli(capsys, "--project", str(project.root), "card", "production")
    assert code == 0 and _front_matter(out)["model-index"]
    assert "\\<script\\>" in out  # escaped in the Markdown too


def test_unknown_version_or_alias_is_one_line(
    carded: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(carded["project"].root)
    for ref, words in (("99", "no version 99 (versions: 1, 2)"), ("nope", "no version or alias")):
        code, out, err = run_cli(capsys, "--project", root, "card", ref)
        assert code == 1 and not out
        assert len(err.strip().splitlines()) == 1 and words in err


@pytest.mark.tui
async def test_models_screen_c_opens_the_card(carded: dict[str, Any]) -> None:
    from workbench_tui.app import WorkbenchApp
    from workbench_tui.card_view import CardScreen
    from workbench_tui.models import ModelsScreen

    from tests.tui.helpers import settle, wait_until

    app = WorkbenchApp(carded["project"], sync_on_start=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        assert isinstance(app.screen, ModelsScreen)
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CardScreen), what="card screen")
        screen = app.screen
        assert isinstance(screen, CardScreen)
        await wait_until(pilot, lambda: bool(screen.markdown_text), what="card built")
        assert (
            f"v{screen.version}" in screen.markdown_text and "## Evaluation" in screen.markdown_text
        )
        await pilot.press("pagedown")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ModelsScreen)


def test_a_run_outside_the_pipeline_says_not_validated(carded: dict[str, Any]) -> None:
    """A plain `workbench train` run: its job's record says `pipeline: false`, and the card
    says so instead of validating the data again."""
    from workbench.data.snapshot import digest
    from workbench.store.db import Db
    from workbench.store.parquet_log import ParquetLog, utcnow

    project: Project = carded["project"]
    run = {"run_id": "r0", "tags": {"workbench.job_id": "train-20260101-000000-aaaa"}}
    ParquetLog(project.logs_root, "jobs").append(
        [{"ts": utcnow(), "job_id": "train-20260101-000000-aaaa", "kind": "train",
          "runner": "local", "status": "succeeded", "started_at": utcnow(),
          "args": json.dumps({"pipeline": False})}]
    )  # fmt: skip
    with Db(project.logs_root) as db:
        data = card._training_data(project, run, db)
        snap = {"workbench.data_digest": digest(project.data_path)}
        older = card._training_data(project, {"run_id": "r1", "tags": snap}, db)
    assert data["validation"] == {"status": card.NOT_VALIDATED} and data["time_range"] is None
    facts = card.gather(project, 2)
    facts["training_data"] = data
    assert "Not validated (trained outside the pipeline)." in card_render.render_md(facts)
    assert older["validation"]["note"].startswith("checked again")  # a run from before


def test_the_card_prices_live_and_holdout_outcomes(carded: dict[str, Any]) -> None:
    """With `[monitoring.value]`: the live value of the version's labelled predictions and the
    holdout value from the outcome counts its run logged (production's at the gate too)."""
    from workbench.config_monitoring import ValueSection
    from workbench.serving.prediction_log import PredictionLogger
    from workbench.store.parquet_log import ParquetLog, utcnow
    from workbench.value import from_metrics, per_1k

    project: Project = carded["project"]
    cfg = project.config
    money = ValueSection(true_positive=100, false_positive=-5, false_negative=-50, unit="EUR")
    monitoring = cfg.monitoring.model_copy(update={"value": money})
    priced = Project(project.root, cfg.model_copy(update={"monitoring": monitoring}))
    planted = [(0.9, 1.0), (0.8, 0.0), (0.1, 1.0), (0.2, 0.0), (0.7, 1.0)]  # tp 2 fp 1 fn 1 tn 1
    with PredictionLogger(project.logs_root, interval_s=0.05) as logger:
        for i, (output, _) in enumerate(planted):
            logger.log(f"val-{i}", cfg.model_name, 2, "production", {}, output, 1.0, 200, None)
    ParquetLog(project.logs_root, "labels").append(
        {"ts": utcnow(), "request_id": f"val-{i}", "label": y, "source": "t"}
        for i, (_, y) in enumerate(planted)
    )
    facts = card.gather(priced, 2)
    value = facts["value"]
    assert value["live"]["n"] == 5
    assert value["live"]["value_per_1k"] == pytest.approx(1000 * (200 - 5 - 50) / 5)
    run = mlflow_client(project).get_run(carded["run_id"]).data
    holdout = from_metrics(run.metrics)
    assert holdout is not None and holdout.n == int(run.params["rows_holdout"])
    assert value["holdout"]["value_per_1k"] == pytest.approx(per_1k(money, "binary", holdout))
    assert value["holdout"]["source"].startswith("the holdout's outcome counts")
    assert value["champion"]["value_per_1k"] is not None  # v1 scored at v2's gate
    text = card_render.render_md(facts)
    assert "## Business value" in text and "+29,000.00 EUR over 5 rows" in text
    assert card.gather(project, 2)["value"] is None  # not configured: no section
