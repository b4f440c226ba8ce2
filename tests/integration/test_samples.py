"""The regression and multiclass samples end to end: `workbench init --sample`, validate,
the pipeline registering v1 with the task's metric, the demo's first act, and its second act
where serving and monitoring in this tree support the task."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from tests.helpers import run_cli
from workbench.data.validation import validate_frame
from workbench.demo import acts as demo
from workbench.demo import samples
from workbench.errors import UsageError
from workbench.jobs import control as jobs
from workbench.project import Project
from workbench.registry import versions as registry
from workbench.serving import deployments
from workbench.tasks import ModelTask

pytestmark = pytest.mark.integration

ROWS = 3_000
#: sample -> (task, the metric its runs log on the holdout, the data file)
SAMPLES = {
    "delivery_time": ("regression", "holdout_rmse", "data/deliveries.parquet"),
    "ticket_routing": ("multiclass", "holdout_macro_f1", "data/tickets.parquet"),
}


@pytest.fixture(autouse=True)
def _outside_any_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_init_validate_and_pipeline_register_v1(
    sample: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task, metric, data = SAMPLES[sample]
    root = tmp_path / sample
    code, out, err = run_cli(capsys, "init", str(root), "--sample", sample, "--rows", str(ROWS))
    assert code == 0, err
    assert f"created project {sample!r}" in out
    for name in ("workbench.toml", "generate.py", "README.md", data):
        assert (root / name).is_file(), name
    assert pl.read_parquet(root / data).height == ROWS

    code, out, err = run_cli(capsys, "validate", "--project", str(root), "--json")
    assert code == 0, err
    assert json.loads(out)["passed"] is True

    code, out, err = run_cli(
        capsys, "pipeline", "run", "--project", str(root), "--runner", "local", "-q", "--json"
    )
    assert code == 0, err
    project = Project.load(root)
    (v1,) = registry.list_versions(project)
    assert v1.version == 1 and metric in v1.metrics
    value = v1.metrics[metric]
    if task == "regression":
        spread = float(pl.read_parquet(root / data)["delivery_minutes"].std() or 0.0)
        assert 0 < value < 0.8 * spread  # minutes, better than predicting the mean
    else:
        assert 0.3 < value < 0.95  # five queues: far better than chance (0.2), not perfect
    # the model knows its task: serving and the labels join read this
    model_task = _model_task(project, v1.run_id or "")
    assert model_task.type == task
    if task == "multiclass":
        assert model_task.classes == ["billing", "technical", "account", "shipping", "other"]


def _model_task(project: Project, run_id: str) -> ModelTask:
    (found,) = list(project.artifacts.glob(f"{run_id}/**/workbench_task.json"))
    return ModelTask.load(found.parent)


# --- the demo -------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=sorted(SAMPLES))
def demo_template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's first act per sample, once per module: v1 in production, v2 in staging."""
    root = tmp_path_factory.mktemp(f"demo-{request.param}") / "proj"
    said: list[str] = []
    assert demo.prepare(root, echo=said.append, rows=ROWS, sample=request.param) == root
    assert said[0] == f"creating the {request.param} sample in {root}"
    assert any("challenger" in line for line in said)
    return root


def test_demo_first_act(demo_template: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = Project.load(demo_template)
    sample = project.config.project.name
    metric = SAMPLES[sample][1]
    assert registry.aliases(project) == {"production": 1, "staging": 2}
    versions = registry.list_versions(project)
    assert all(metric in v.metrics for v in versions)

    # the headless demo on the prepared folder trains nothing and prints the summary
    code, out, err = run_cli(
        capsys, "demo", str(demo_template), "--sample", sample, "--headless", "--json",
        "--first-act-only",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert summary["model"] == sample
    assert summary["aliases"] == {"production": 1, "staging": 2}
    assert len(registry.list_versions(project)) == 2
    code, out, err = run_cli(capsys, "demo", str(demo_template), "--headless", "--first-act-only")
    assert code == 0, err
    assert f"{metric}=" in out


@pytest.fixture
def demo_copy(demo_template: Path, tmp_path: Path) -> Iterator[Path]:
    """A private copy of the demo project; a server left by the test is stopped."""
    root = tmp_path / "demo"
    shutil.copytree(demo_template, root)
    try:
        yield root
    finally:
        project = Project.load(root)
        report = deployments.read_server(project)
        if report:
            jobs.stop_job(project, str(report["job_id"]))
            deadline = time.time() + 30
            while time.time() < deadline and deployments.read_server(project):
                time.sleep(0.2)


def test_demo_second_act(demo_copy: Path) -> None:
    project = Project.load(demo_copy)
    said: list[str] = []
    out = demo.second_act(demo_copy, echo=said.append)
    project = Project.load(demo_copy)
    outcome = out["monitor"]
    assert outcome["fired"] and outcome["acted"] and outcome["error"] is None, said
    assert outcome["canary"] is True and outcome["candidate"] == 3
    state = deployments.read_state(project)
    assert state.canary is not None and state.canary.version == 3
    assert "*" in project.config.data.path  # the newest data joined the snapshot
    assert len(list((demo_copy / "data").glob("*-later.parquet"))) == 1
    assert any("world that moved on" in line for line in said)
    if project.config.project.name == "ticket_routing":
        assert "smart_lock" in (project.config.schema_["product"].allowed or [])


def test_the_new_values_of_a_drift_batch_become_allowed(tmp_path: Path) -> None:
    """What act 2 does to the project before retraining, without a server: the launch's new
    product joins the schema and the data path covers the newest file, so validation passes."""
    root = samples.init(tmp_path / "tickets", "ticket_routing", rows=1_000)
    project = Project.load(root)
    generator = samples.load_generator("ticket_routing")
    later = generator.generate(2_000, seed=12, drift=True)
    newest = demo._newest_path(project)
    assert newest == root / "data" / "tickets-later.parquet"
    later.write_parquet(newest)
    before = validate_frame(later, project.config)
    assert [c.column for c in before.failures] == ["product"]

    demo._allow_values(project, samples.new_values(project.config, later))
    project = Project.load(root)
    assert project.config.data.path == "data/*.parquet"
    allowed = project.config.schema_["product"].allowed or []
    assert allowed[0] == "smart_lock" and len(allowed) == 6
    frame = pl.read_parquet(root / "data" / "*.parquet")
    assert frame.height == 3_000
    assert validate_frame(frame, project.config).passed
    # a second act again reuses the same newest file instead of adding another
    assert demo._newest_path(project) == newest


def test_an_unknown_sample_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "nope"
    with pytest.raises(UsageError, match="no such sample"):
        demo.prepare(target, echo=lambda _m: None, sample="not_a_sample")
    code, _, err = run_cli(capsys, "demo", str(target), "--sample", "not_a_sample", "--headless")
    assert code == 2 and "no such sample" in err
    assert not target.exists()
    assert {"delivery_time", "fraud_detection", "ticket_routing"} <= set(samples.available())
