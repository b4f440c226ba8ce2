"""Lineage end to end on one real trained project: v1 (production), v2 (staging), a
promotion, a canary through the core, predictions through the real prediction log writer, a
serving job in the jobs log, a real drift check and a retrain trigger."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.helpers import cli_json, run_cli
from workbench.data.snapshot import digest
from workbench.errors import UsageError
from workbench.jobs import control
from workbench.lineage import expand, graph, openlineage
from workbench.lineage.model import Lineage
from workbench.monitoring import checks
from workbench.monitoring.monitor import TRIGGER
from workbench.plugins import JobSpec, Runner, RunObserver
from workbench.project import Project
from workbench.registry import audit
from workbench.registry import versions as registry
from workbench.serving import deployments
from workbench.serving.prediction_log import PredictionLogger
from workbench.store.db import Db
from workbench.store.parquet_log import ParquetLog, utcnow

SERVE_JOB = "serve-20260101-000000-beef"
TRAIN_AFTER = "train-20260101-000100-cafe"  # the retraining: its record names the check
DECOY = "train-20260101-000050-dec0"  # started first after the trigger, names no trigger
OLD_TRIGGERED = "train-20260101-000300-01d0"  # after a trigger from before links were kept
#: What the fixture made: request ids, the drift check id.
IDS: dict[str, Any] = {}


@pytest.fixture(scope="module")
def lineage_project(
    _trained_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    root = tmp_path_factory.mktemp("lineage") / "proj"
    shutil.copytree(_trained_template, root)
    project = Project.load(root)
    registry.promote(project, 2, "v2 is better")
    deployments.start_canary(project, 1, 10.0, reason="canary v1 back at 10%")
    started = utcnow() - timedelta(minutes=5)
    jobs = ParquetLog(project.logs_root, "jobs")
    jobs.append([{"ts": started, "job_id": SERVE_JOB, "kind": "serve", "runner": "local",
                  "status": "running", "started_at": started, "args": "{}"}])  # fmt: skip
    frame = pl.read_parquet(project.data_path).head(300)
    features = [
        json.dumps(r, default=str) for r in frame.drop(project.config.data.target).to_dicts()
    ]
    log = PredictionLogger(project.logs_root, interval_s=0.05)
    ids = log.new_ids(len(features))
    for i, (rid, feat) in enumerate(zip(ids, features, strict=True)):
        variant, version = ("canary", 1) if i % 10 == 0 else ("production", 2)
        log.log(rid, project.config.model_name, version, variant, feat, 0.1, 1.0)
    log.close()
    result = checks.check(project, version=2, last_n=1000)
    audit.record(project, TRIGGER, project.config.model_name, None, 2, None, "drift",
                 by="monitor", check_id=result.check_id)  # fmt: skip
    named = json.dumps({"pipeline": True, "trigger": result.check_id})
    for job_id, args in ((DECOY, "{}"), (TRAIN_AFTER, named)):
        later = utcnow()
        jobs.append([{"ts": later, "job_id": job_id, "kind": "train", "runner": "local",
                      "status": "succeeded", "started_at": later, "ended_at": later,
                      "args": args}])  # fmt: skip
    # an older trigger row (a check id no job names): linked by the time guess
    audit.record(project, TRIGGER, project.config.model_name, None, 2, None, "old drift",
                 by="monitor", check_id="drift-old-0000")  # fmt: skip
    later = utcnow()
    jobs.append([{"ts": later, "job_id": OLD_TRIGGERED, "kind": "train", "runner": "local",
                  "status": "failed", "started_at": later, "ended_at": later,
                  "args": "{}"}])  # fmt: skip
    IDS.update(requests=ids, check=result.check_id)
    yield project


def _kinds(lin: Lineage) -> set[str]:
    return {n.kind for n in lin.nodes.values()}


def test_every_kind_of_thing_resolves(lineage_project: Project) -> None:
    p = lineage_project
    with Db(p.logs_root) as db:
        run_id = db.rows("SELECT run_id FROM jobs WHERE kind = 'train' AND run_id IS NOT NULL")[0][
            "run_id"
        ]
        train_job = db.rows("SELECT job_id FROM jobs WHERE run_id = ?", [run_id])[0]["job_id"]
    snap = digest(p.data_path)
    model = p.config.model_name
    cases = {
        "2": "version:", "v1": "version:", f"{model}/2": "version:",
        f"models:/{model}/1": "version:", "production": "alias:", "@staging": "alias:",
        run_id: "run:", run_id[:10]: "run:", snap: "dataset:", snap[:8]: "dataset:",
        str(p.data_path): "dataset:", train_job: "job:", SERVE_JOB: "serving:",
        IDS["requests"][3]: "request:", IDS["check"]: "drift:",
    }  # fmt: skip
    for thing, kind in cases.items():
        assert graph.resolve(p, thing).startswith(kind), thing
    assert graph.resolve(p, "production").startswith(f"alias:{model}/production@")
    assert graph.resolve(p, snap) == f"dataset:{snap}"


def test_request_reaches_the_dataset(lineage_project: Project) -> None:
    p = lineage_project
    rid = IDS["requests"][0]  # a canary request, v1
    lin = graph.build(p, rid, depth=5)
    root = lin.nodes[lin.root]
    assert root.details["variant"] == "canary" and root.details["version"] == 1
    assert {n.key for n in lin.upstream(lin.root)} >= {f"version:{p.config.model_name}/1"}
    assert f"serving:{SERVE_JOB}" in lin.nodes
    assert f"dataset:{digest(p.data_path)}" in lin.nodes


def test_dataset_reaches_the_deployment_and_the_retraining(lineage_project: Project) -> None:
    p = lineage_project
    lin = graph.build(p, digest(p.data_path), depth=8)
    kinds = _kinds(lin)
    assert {"dataset", "job", "run", "version", "alias", "deployment", "serving"} <= kinds
    assert f"drift:{IDS['check']}" in lin.nodes
    assert f"retrain:{TRAIN_AFTER}" in lin.nodes and f"job:{TRAIN_AFTER}" in lin.nodes
    dep = next(n for n in lin.nodes.values() if n.kind == "deployment")
    assert dep.details["canary_version"] == 1 and dep.details["traffic"] == pytest.approx(0.1)
    assert lin.upstream(lin.root) == []


def test_depth_limits_the_hops(lineage_project: Project) -> None:
    p = lineage_project
    assert list(graph.build(p, "v1", depth=0).nodes) == [f"version:{p.config.model_name}/1"]
    one = graph.build(p, "v1", depth=1)
    assert {n.kind for n in one.upstream(one.root)} == {"run"}
    assert "job" not in _kinds(one) and "dataset" not in _kinds(one)
    assert "dataset" in _kinds(graph.build(p, "v1", depth=3))


def test_unknown_thing_is_one_line_exit_2(
    lineage_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError, match="no-such-thing: no lineage found"):
        graph.resolve(lineage_project, "no-such-thing")
    code, out, err = run_cli(capsys, "--project", str(lineage_project.root), "lineage", "zzz9")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "zzz9" in err and "request id" in err


def test_cli_tree_and_json(lineage_project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(lineage_project.root)
    code, out, _ = run_cli(capsys, "--project", root, "lineage", "v2")
    assert code == 0 and "<- this" in out
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    here = next(i for i, line in enumerate(lines) if "<- this" in line)
    assert any(line.lstrip("└─├│ ").startswith("run") for line in lines[:here])
    assert any(line.lstrip("└─├│ ").startswith("alias") for line in lines[here:])
    data = cli_json(capsys, "--project", root, "lineage", "v2", "--depth", "1")
    assert data["root"] == f"version:{lineage_project.config.model_name}/2"
    assert {e["to"] for e in data["edges"]} >= {data["root"]}


def test_openlineage_events(
    lineage_project: Project, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "events.jsonl"
    root = str(lineage_project.root)
    code, _, _ = run_cli(
        capsys, "--project", root, "lineage", "v2", "--openlineage", "--out", str(out)
    )
    assert code == 0
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert events
    for ev in events:
        assert all(k in ev for k in openlineage.REQUIRED)
        assert ev["schemaURL"].endswith("#/$defs/RunEvent")
        assert ev["eventType"] in ("START", "COMPLETE", "FAIL")
        assert len(ev["run"]["runId"]) == 36 and ev["job"]["namespace"] and ev["job"]["name"]
        for ds in ev["inputs"] + ev["outputs"]:
            assert ds["namespace"] and ds["name"]
    train = [e for e in events if e["job"]["name"].endswith(".train")]
    by_run: dict[str, list[str]] = {}
    for e in train:
        by_run.setdefault(e["run"]["runId"], []).append(e["eventType"])
    assert by_run and all(
        types[0] == "START" and types[-1] == "COMPLETE" for types in by_run.values()
    )
    done = next(e for e in train if e["eventType"] == "COMPLETE")
    assert done["inputs"][0]["facets"]["schema"]["fields"]
    assert done["outputs"][0]["name"].startswith("models:/")
    serve = [e for e in events if e["job"]["name"].endswith((".serve", ".deploy"))]
    assert serve and all(e["inputs"] for e in serve)


def test_the_fanout_cap_says_what_it_left_out(
    lineage_project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    p = lineage_project
    key = f"version:{p.config.model_name}/2"
    full = graph.build(p, "v2", depth=1)
    assert full.left_out == {}
    many = len(full.downstream(key))  # alias moves, the serving job, the drift check
    assert many >= 3
    monkeypatch.setattr(expand, "FANOUT", 1)
    capped = graph.build(p, "v2", depth=1)
    assert len(capped.downstream(key)) == 1
    assert capped.left_out == {key: many - 1}
    code, out, _ = run_cli(capsys, "--project", str(p.root), "lineage", "v2", "--depth", "1")
    assert code == 0
    below = out.split("<- this", 1)[1]
    assert f"… {many - 1} more, left out" in below
    data = cli_json(capsys, "--project", str(p.root), "lineage", "v2", "--depth", "1")
    assert data["left_out"] == {key: many - 1}


class _DockerLike(Runner):
    """A runner that reports how it ran the job as the Docker runner does (`job_record`)."""

    name = "docker-like"

    def job_record(self, job_id: str) -> dict[str, Any]:
        return {
            "image": "wb-job-proj:3f2a",
            "image_id": "sha256:" + "ab" * 32,
            "resources": {"cpus": 2.0, "memory": "4g", "gpus": 0},
        }

    def run(self, spec: JobSpec, observer: RunObserver) -> tuple[int, str | None]:
        observer.on_start("c0ffee000000")
        return 0, None


def test_a_job_node_shows_image_host_and_resources(lineage_project: Project) -> None:
    p = lineage_project
    job_id = "batch-20260101-000200-d0c4"
    outcome = control.run_job(
        p, "batch", "workbench.nothing", [], _DockerLike(), job_id=job_id, ends_well="stopped"
    )
    assert outcome.status == "stopped"
    lin = graph.build(p, job_id, depth=0)
    node = lin.nodes[lin.root]
    assert node.key == f"job:{job_id}" and node.details["runner"] == "docker-like"
    assert node.details["image"] == "wb-job-proj:3f2a"
    assert node.details["image_id"] == "sha256:" + "ab" * 32
    assert node.details["resources"] == {"cpus": 2.0, "memory": "4g", "gpus": 0}
    assert node.details["host"]  # socket.gethostname(), recorded by every job
    local = next(
        n for n in graph.build(p, digest(p.data_path), depth=1).nodes.values() if n.kind == "job"
    )
    assert local.details["image"] is None and local.details["host"]
    # every runner's job records the config's resources; the Docker runner's own win
    resources = control.configured_resources(p)
    assert set(resources) == {"cpus", "memory", "gpus"} and resources["gpus"] == p.config.gpus
    plain = control.run_job(
        p, "batch", "workbench.nothing", [], _Plain(), job_id="batch-20260101-000201-0001",
        ends_well="stopped",
    )  # fmt: skip
    node = graph.build(p, plain.job_id, depth=0).nodes[f"job:{plain.job_id}"]
    assert node.details["resources"] == resources and node.details["image"] is None


class _Plain(Runner):
    """A runner that reports nothing of its own (the base's `job_record`)."""

    name = "plain"

    def run(self, spec: JobSpec, observer: RunObserver) -> tuple[int, str | None]:
        observer.on_start("1234")
        return 0, None


def test_the_retraining_link_is_the_recorded_one(lineage_project: Project) -> None:
    p = lineage_project
    lin = graph.build(p, IDS["check"], depth=2)
    retrains = [n for n in lin.downstream(lin.root) if n.kind == "retrain"]
    assert [n.details["job_id"] for n in retrains] == [TRAIN_AFTER]  # not the DECOY before it
    assert f"job:{DECOY}" not in lin.nodes
    old = graph.build(p, OLD_TRIGGERED, depth=1)
    (up,) = [n for n in old.upstream(old.root) if n.kind == "retrain"]
    assert up.details["check_id"] == "drift-old-0000"  # the older row: the time guess


def test_the_dataset_node_shows_the_recorded_validation(lineage_project: Project) -> None:
    from workbench.pipeline import flow

    p = lineage_project
    assert expand.VALIDATION_TAG == flow.VALIDATION_TAG
    node = graph.build(p, digest(p.data_path), depth=0).nodes[f"dataset:{digest(p.data_path)}"]
    frame = pl.read_parquet(p.data_path)
    report = node.details["validation"]
    assert isinstance(report, dict) and report["passed"] is True
    assert report["rows"] == frame.height and report["columns"] == frame.width
    assert report["report"] == "validation/report.json" and report["run_id"]
    span = node.details["time_range"]
    ts = p.config.data.timestamp
    assert span["column"] == ts
    assert span["start"] == frame[ts].min().isoformat()  # type: ignore[union-attr]
    assert span["end"] == frame[ts].max().isoformat()  # type: ignore[union-attr]


def test_a_db_with_some_views_makes_the_others_when_asked(lineage_project: Project) -> None:
    import duckdb

    with Db(lineage_project.logs_root, views=("audit",)) as db:
        assert db.rows("SELECT count(*) AS n FROM audit")[0]["n"] > 0
        with pytest.raises(duckdb.CatalogException):
            db.rows("SELECT count(*) FROM predictions")
        db.add_views("predictions", "jobs")
        assert db.rows("SELECT count(*) AS n FROM predictions")[0]["n"] == 300
        assert db.rows("SELECT count(*) AS n FROM jobs")[0]["n"] > 0
