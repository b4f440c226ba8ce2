"""The Docker runner against a real engine: a real image built from the project, real
training in a container, and each failure mode. Skipped only when no engine answers, unless
WORKBENCH_REQUIRE_DOCKER=1 (CI sets it): then a missing engine fails the run."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from workbench_plugins.docker_runner import NONROOT

from workbench import plugins
from workbench.cli.main import main
from workbench.jobs import control as jobs
from workbench.jobs import docker_engine, images
from workbench.jobs.observer import JobObserver
from workbench.project import Project

pytestmark = pytest.mark.integration

BASE = os.environ.get("WORKBENCH_TEST_BASE_IMAGE", "workbench-base:bookworm")


def _engine() -> object:
    try:
        return docker_engine.connect(timeout=10)
    except docker_engine.EngineUnavailable as exc:
        if os.environ.get("WORKBENCH_REQUIRE_DOCKER") == "1":
            pytest.fail(f"WORKBENCH_REQUIRE_DOCKER=1 but {exc}")
        pytest.skip(str(exc))


def engine_session(timeout: float) -> Iterator[Any]:
    """The engine connected with `timeout` (`_engine` skips first when none answers); after
    the session, the labelled containers and the labelled images it made removed."""
    import docker

    _engine()
    client = docker_engine.connect(timeout=timeout)
    before = {img.id for img in client.images.list()}
    yield client
    # Remove what the tests made: labelled containers, and labelled images made during the run.
    for c in client.containers.list(all=True, filters={"label": docker_engine.LABEL}):
        c.remove(force=True)
    made = [
        i for i in client.images.list(filters={"label": docker_engine.LABEL}) if i.id not in before
    ]
    for img in sorted(made, key=lambda i: i.attrs.get("Created", ""), reverse=True):
        with contextlib.suppress(docker.errors.APIError):  # children first; a shared layer may stay
            client.images.remove(img.id, force=True)


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    yield from engine_session(timeout=10)


@pytest.fixture(scope="session")
def base_image(engine: object) -> str:
    """A registry-free Python base image: bootstrapped once (debootstrap) when not there."""
    import docker

    try:
        engine.images.get(BASE)  # type: ignore[attr-defined]
    except docker.errors.ImageNotFound:
        if os.geteuid() != 0 or shutil.which("debootstrap") is None:
            pytest.skip("no base image, and cannot bootstrap one (needs root and debootstrap)")
        images.bootstrap_base(BASE, on_line=lambda _line: None, client=engine)
    return BASE


def _docker_config(base: str, **extra: str) -> str:
    ca = next(
        (
            os.environ[k]
            for k in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
            if os.environ.get(k) and Path(os.environ[k]).is_file()
        ),
        None,
    )
    lines = ["", "[docker]", f'base_image = "{base}"']
    if ca:
        lines.append(f'ca_bundle = "{ca}"')
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def _with_docker(project: Project, base: str, **extra: str) -> Project:
    with open(project.root / "workbench.toml", "a") as fh:
        fh.write(_docker_config(base, **extra))
    return Project.load(project.root)


@pytest.fixture
def docker_project(sample_project: Project, base_image: str) -> Project:
    return _with_docker(sample_project, base_image)


def _runner():
    return plugins.load("runner", "docker")


def test_training_in_a_container_lands_in_mlflow(docker_project: Project) -> None:
    lines: list[str] = []
    progress: list[tuple[int, int]] = []
    out = jobs.run_training(
        docker_project,
        _runner(),
        JobObserver(
            on_progress=lambda p: progress.append((p.iteration, p.total)), on_log=lines.append
        ),
        params={"num_iterations": 25},
    )
    assert out.ok and out.train_result is not None, out.reason
    assert out.runner == "docker"
    assert progress and progress[-1] == (25, 25)

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=docker_project.tracking_uri)
    run = client.get_run(out.train_result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["num_iterations"] == "25"
    assert run.data.metrics["holdout_auc"] > 0.7
    model = mlflow.pyfunc.load_model(out.train_result.model_uri)
    from workbench.data import snapshot as data_mod

    frame = data_mod.to_model_frame(
        data_mod.load_frame(docker_project.data_path).head(20), docker_project.config
    )
    proba = model.predict(frame)
    assert len(proba) == 20 and ((proba >= 0) & (proba <= 1)).all()
    # the container ran as a non-root user: the host user, or "nonroot" when that is root
    art = Path(out.train_result.model_uri.removeprefix("file://"))
    expected = os.getuid() or NONROOT[0]
    assert art.stat().st_uid == expected != 0
    # the container is gone, the job recorded
    (job,) = [j for j in jobs.list_jobs(docker_project) if j.job_id == out.job_id]
    assert job.status == "succeeded" and job.runner == "docker" and job.run_id == run.info.run_id


def test_unchanged_project_does_not_rebuild(docker_project: Project, engine: object) -> None:
    said: list[str] = []
    tag = images.ensure_job_image(docker_project, engine, said.append)
    again: list[str] = []
    assert images.ensure_job_image(docker_project, engine, again.append) == tag
    assert again == [f"image {tag} is up to date"]
    # a change to the project's code changes the tag
    (docker_project.root / "features.py").write_text("X = 1\n")
    files, _ = images._context(docker_project)
    assert images.image_tag(docker_project, files) != tag


def test_container_config_is_formed_as_configured(sample_project: Project) -> None:
    project = _with_docker(sample_project, "base:x", cpus="1.5", memory='"512m"', gpus="2")
    spec = plugins.JobSpec(
        "train-x",
        "train",
        "workbench.training",
        ["--project", str(project.root), "--job-id", "train-x"],
        project.root,
        project.jobs_dir / "x.log",
    )
    from workbench_plugins.docker_runner import container_config

    kw = container_config(project, spec, "img:1")
    assert kw["command"][:3] == ["python", "-m", "workbench.training"]
    assert kw["command"][kw["command"].index("--project") + 1] == images.PROJECT_DIR
    assert kw["nano_cpus"] == 1_500_000_000 and kw["mem_limit"] == "512m"
    # GPUs cannot run here: we check the device request is formed (a GPU machine runs it)
    (req,) = kw["device_requests"]
    assert req["Count"] == 2 and req["Capabilities"] == [["gpu"]]
    uid = os.getuid()
    assert kw["user"] == (f"{uid}:{os.getgid()}" if uid else f"{NONROOT[0]}:{NONROOT[1]}")
    assert not kw["user"].startswith("0:")
    assert kw["labels"]["workbench.job"] == "train-x"
    assert kw["labels"]["workbench.role"] == "train"
    store = str(project.store.resolve())
    by_target = {m["Target"]: m for m in kw["mounts"]}
    assert by_target[store]["ReadOnly"] is False
    data_mount = by_target[f"{images.PROJECT_DIR}/data"]
    assert data_mount["ReadOnly"] is True and data_mount["Source"] == str(project.data_path.parent)
    assert kw["environment"]["WORKBENCH_STORE"] == store

    # [resources] gpus wins over [docker] gpus ("all" asks for every device)
    text = (project.root / "workbench.toml").read_text() + '\n[resources]\ngpus = "all"\n'
    (project.root / "workbench.toml").write_text(text)
    (req,) = container_config(Project.load(project.root), spec, "img:1")["device_requests"]
    assert req["Count"] == -1


def test_a_failing_container_ends_with_its_reason(docker_project: Project) -> None:
    # a value only LightGBM itself judges, inside the container (the objective is checked
    # against the task before any work, so it would exit 2 with a usage line)
    out = jobs.run_training(docker_project, _runner(), params={"boosting": "nonsense"})
    assert out.status == "failed" and out.exit_code == 1
    assert "nonsense" in (out.reason or "").lower() or "boosting" in (out.reason or "").lower()


def test_a_container_killed_from_outside_fails_with_the_reason(
    docker_project: Project, engine: object
) -> None:
    import threading

    result: list[jobs.JobOutcome] = []
    t = threading.Thread(
        target=lambda: result.append(
            jobs.run_training(docker_project, _runner(), params={"num_iterations": 100000})
        )
    )
    t.start()
    deadline = time.time() + 120
    container = None
    while time.time() < deadline and container is None:
        found = engine.containers.list(  # type: ignore[attr-defined]
            filters={"label": f"workbench.project_root={docker_project.root}"}
        )
        container = found[0] if found else None
        time.sleep(0.3)
    assert container is not None, "the job's container never started"
    time.sleep(3)
    container.kill()
    t.join(60)
    assert not t.is_alive(), "the runner hung after the container was killed"
    (out,) = result
    assert out.status == "failed"
    assert out.reason == "killed from outside (SIGKILL)"


def test_out_of_memory_is_reported(sample_project: Project, base_image: str) -> None:
    project = _with_docker(sample_project, base_image, memory='"48m"')
    out = jobs.run_training(project, _runner(), params={"num_iterations": 10})
    assert out.status == "failed"
    assert "out of memory" in (out.reason or "")


def test_missing_image_is_a_clear_failure(sample_project: Project, engine: object) -> None:
    project = _with_docker(sample_project, "python:3.11-slim", image='"workbench-test/none:0"')
    out = jobs.run_training(project, _runner())
    assert out.status == "failed"
    assert "workbench-test/none:0" in (out.reason or "") and "not in the local engine" in out.reason


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:1", "ssh://nobody@127.0.0.1:1"])
def test_unreachable_engine_is_one_line_and_auto_falls_back(
    sample_project: Project,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    host: str,
) -> None:
    """DOCKER_HOST is honoured, ssh:// included (through the ssh binary; no remote host
    exists here, so only the refusal is checked)."""
    monkeypatch.setenv("DOCKER_HOST", host)
    rc = main(["--project", str(sample_project.root), "train", "--runner", "docker"])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("workbench:")]
    assert rc == 2
    assert err == [err[0]] and err[0].startswith("workbench: error: runner 'docker' is not")
    assert host in err[0]
    assert jobs.resolve_runner(sample_project).name == "local"


def test_a_job_outlives_the_process_that_started_it(docker_project: Project) -> None:
    """The CLI that started a container job is killed; the container goes on, and
    `workbench jobs` finds it by its handle, then settles it from the container's log."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench",
            "--project",
            str(docker_project.root),
            "train",
            "--runner",
            "docker",
            "--param",
            "num_iterations=400",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 180
    running = []
    while time.time() < deadline and not running:
        running = [j for j in jobs.list_jobs(docker_project) if j.status == "running" and j.handle]
        time.sleep(0.5)
    assert running, "the job never started"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (job,) = running
    while time.time() < deadline:
        (job,) = [j for j in jobs.list_jobs(docker_project) if j.job_id == job.job_id]
        if not job.active:
            break
        time.sleep(1)
    assert job.status == "succeeded", job.reason
    assert job.run_id
    lines, _ = jobs.read_log(job, 0, events_too=True)
    assert any(ln.startswith("@wb ") and '"result"' in ln for ln in lines)


def test_generated_dockerfile_carries_index_ca_and_requirements(sample_project: Project) -> None:
    project = _with_docker(
        sample_project,
        "base:x",
        index_url='"https://pypi.example/simple"',
        extra_index_urls='["https://extra.example/simple"]',
    )
    (project.root / "requirements.txt").write_text("six==1.16.0\n")
    files, own = images._context(project)
    text = files["Dockerfile"].decode()
    assert not own and text.splitlines()[1] == "FROM base:x"
    assert "PIP_INDEX_URL=https://pypi.example/simple" in text
    assert 'PIP_EXTRA_INDEX_URL="https://extra.example/simple"' in text
    assert "COPY requirements.txt" in text and files["requirements.txt"] == b"six==1.16.0\n"
    assert ("COPY ca.pem" in text) == ("ca.pem" in files)
    # the project's code goes in; its data and store do not
    assert "project/workbench.toml" in files
    assert not any(n.startswith("project/data/") or "/.workbench/" in n for n in files)


def test_the_projects_own_dockerfile_is_used(docker_project: Project, engine: object) -> None:
    generated = images.ensure_job_image(docker_project, engine, lambda _l: None)
    (docker_project.root / "Dockerfile").write_text(f"FROM {generated}\nLABEL custom=yes\n")
    said: list[str] = []
    tag = images.ensure_job_image(docker_project, engine, said.append, force=True)
    assert tag != generated
    assert any("from the project Dockerfile" in line for line in said)
    labels = engine.images.get(tag).labels  # type: ignore[attr-defined]
    assert labels["custom"] == "yes" and labels[docker_engine.LABEL] == "1"


def test_serving_in_a_container(docker_project: Project, engine: object) -> None:
    """`workbench serve --runner docker --detach`: the server runs in a container published on
    127.0.0.1 only, answers predictions, logs them into the mounted store, and stops by
    `workbench stop` with its log flushed."""
    import http.client
    import json
    import socket

    from workbench.serving import deployments
    from workbench.store.db import Db

    root = str(docker_project.root)
    assert main(["pipeline", "run", "--runner", "local", "--auto-promote", "--project", root]) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["serve", "--runner", "docker", "--detach", "--port", str(port), "--project", root]
    assert main(args) == 0
    report = deployments.read_server(docker_project)
    assert report is not None and report["url"] == f"http://127.0.0.1:{port}"
    (container,) = engine.containers.list(  # type: ignore[attr-defined]
        filters={"label": f"{docker_engine.LABEL}.job={report['job_id']}"}
    )
    published = container.attrs["HostConfig"]["PortBindings"][f"{port}/tcp"]
    assert published == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
    assert container.attrs["Config"]["User"] != "0"

    record = {
        "amount": 120.5,
        "merchant_category": "electronics",
        "card_age_days": 30,
        "hour": 3,
        "distance_from_home_km": 250.0,
        "num_tx_last_24h": 6,
        "avg_amount_30d": 40.0,
        "is_foreign": 1,
        "device_score": 0.2,
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for i in range(20):
        conn.request("POST", "/predict", json.dumps({**record, "request_id": f"ctr-{i}"}))
        resp = conn.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 200, body
        assert 0.0 <= body["prediction"] <= 1.0 and body["version"] == 1
    conn.request("POST", "/predict", json.dumps({**record, "hour": "three"}))
    resp = conn.getresponse()
    assert resp.status == 422 and json.loads(resp.read())["error"].startswith("hour:")
    conn.close()

    assert main(["stop", report["job_id"], "--project", root]) == 0
    deadline = time.time() + 60
    while time.time() < deadline and deployments.read_server(docker_project) is not None:
        time.sleep(0.5)
    assert deployments.read_server(docker_project) is None
    db = Db(docker_project.logs)
    rows = db.rows("SELECT request_id FROM predictions WHERE request_id LIKE 'ctr-%'")
    db.close()
    assert len(rows) == 20  # flushed on the graceful stop


def test_an_unpullable_default_base_falls_back_to_the_bootstrapped_one(
    sample_project: Project, base_image: str, engine: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no registry the default base cannot be pulled: the image `workbench image
    bootstrap` made is built from instead, and that is said. The default is pointed at a name
    no registry has, so the test does not depend on whether Docker Hub answers here."""
    missing = "workbench-test/no-such-base:0"
    monkeypatch.setattr(images, "DEFAULT_BASE", missing)
    monkeypatch.setattr(images, "BOOTSTRAPPED", base_image)
    said: list[str] = []
    assert images._pull_base(engine, missing, said.append) == base_image  # type: ignore[arg-type]
    assert said[0] == f"base image {missing} is not here; trying to pull it"
    assert (
        said[1].startswith(f"cannot pull {missing} (") and f"building from {base_image}" in said[1]
    )
    project = _with_docker(sample_project, missing)
    files, own = images._context(project, base_image)
    assert not own and f"FROM {base_image}\n".encode() in files["Dockerfile"]
    # No bootstrapped image either: one line that says what to do.
    monkeypatch.setattr(images, "BOOTSTRAPPED", "workbench-test/no-bootstrap:0")
    with pytest.raises(images.BuildFailed) as exc:
        images._pull_base(engine, missing, said.append)  # type: ignore[arg-type]
    assert "run `workbench image bootstrap` (as root): its image" in str(exc.value)
    with pytest.raises(images.BuildFailed) as exc:  # a base of one's own is never swapped
        images._pull_base(engine, "workbench-test/mine:0", said.append)  # type: ignore[arg-type]
    assert 'then set [docker].base_image = "workbench-test/no-bootstrap:0"' in str(exc.value)
