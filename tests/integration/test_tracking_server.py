"""A project on a team's store: `[store] tracking_uri` on real PostgreSQL and on the real
basic-auth MLflow tracking server (PostgreSQL behind it, artifacts proxied to S3). Pipelines,
runs and models read through the store's reader, a served model downloaded from S3 once,
promote as a user who may (alice) and one who may not (bob), `whoami`, and the one-line
refusals: a password in the URI, a store that does not answer, bad credentials."""

from __future__ import annotations

import importlib.util
import re
import socket
from pathlib import Path

import pytest

from tests.helpers import audit_rows, cli_json, run_cli
from tests.services import ALICE, BOB, unique
from workbench.config import parse_config
from workbench.demo import samples
from workbench.errors import ConfigError, WorkbenchError
from workbench.project import Project
from workbench.store import backends, tracking

pytestmark = pytest.mark.integration

ROWS = 1_500


def _needs(module: str) -> None:
    if importlib.util.find_spec(f"workbench.store.{module}") is None:
        pytest.skip(f"workbench.store.{module} (the store readers) is not in this tree")


def _project(tmp_path: Path, store: str, **extra: str) -> Project:
    """A small fraud project (unique names: the servers are shared) on store `store`."""
    root = samples.init(tmp_path / "proj", "fraud_detection", rows=ROWS)
    name = unique("wbstore_")
    toml = root / "workbench.toml"
    text = toml.read_text(encoding="utf-8")
    text = text.replace('name = "fraud_detection"', f'name = "{name}"', 1)
    text = text.replace('model_name = "fraud_detection"', f'model_name = "{name}"')
    text = re.sub(r"num_iterations = \d+", "num_iterations = 15", text)
    lines = [f'tracking_uri = "{store}"', *(f'{k} = "{v}"' for k, v in extra.items())]
    toml.write_text(text + "\n[store]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return Project.load(root)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as(monkeypatch: pytest.MonkeyPatch, who: tuple[str, str]) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", who[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", who[1])


# -- refusals that need no server --------------------------------------------------------------


def test_a_password_in_the_uri_is_refused_without_echoing_it() -> None:
    base = '[project]\nname = "x"\n[data]\npath = "d.csv"\ntarget = "y"\nsplit = "random"\n'
    for uri, hint in (
        ("postgresql+psycopg2://wb:s3cret-pw@db.example/mlflow", "password_env"),
        ("https://alice:s3cret-pw@mlflow.example", "MLFLOW_TRACKING_PASSWORD"),
    ):
        with pytest.raises(ConfigError) as err:
            parse_config(base + f'[store]\ntracking_uri = "{uri}"\n')
        line = str(err.value)
        assert "\n" not in line and "tracking_uri" in line and hint in line
        assert "s3cret-pw" not in line
    with pytest.raises(ConfigError, match=r"registry_uri must start with"):
        parse_config(base + '[store]\nregistry_uri = "ftp://x"\n')
    cfg = parse_config(base + '[store]\ntracking_uri = "http://127.0.0.1:5000"\n')
    assert cfg.store.tracking_uri == "http://127.0.0.1:5000" and cfg.store.registry_uri is None


def test_the_default_store_is_the_embedded_sqlite(sample_project: Project) -> None:
    assert sample_project.is_embedded_store
    assert sample_project.tracking_uri == f"sqlite:///{sample_project.mlflow_db}"
    assert sample_project.registry_uri == sample_project.tracking_uri
    assert isinstance(backends.reader_for(sample_project), backends.SqliteReader)
    assert backends.job_env(sample_project) == {}


def test_workbench_tracking_uri_overrides_the_config(
    sample_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_TRACKING_URI", "http://127.0.0.1:1")
    assert sample_project.tracking_uri == "http://127.0.0.1:1"
    assert sample_project.registry_uri == "http://127.0.0.1:1"
    assert not sample_project.is_embedded_store


def test_a_store_that_does_not_answer_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _closed_port()
    project = _project(tmp_path, f"http://127.0.0.1:{port}")
    with pytest.raises(WorkbenchError) as err:
        tracking.setup(project)
    assert str(err.value).startswith(f"cannot reach the MLflow store http://127.0.0.1:{port}")
    assert "\n" not in str(err.value)
    code, _, errout = run_cli(capsys, "--project", str(project.root), "whoami")
    assert code == 1 and errout.count("\n") == 1 and f"127.0.0.1:{port}" in errout


def test_a_postgres_that_does_not_answer_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _closed_port()
    monkeypatch.setenv("WB_TEST_PG_PW", "not-shown-pw")
    project = _project(
        tmp_path, f"postgresql+psycopg2://wb@127.0.0.1:{port}/x", password_env="WB_TEST_PG_PW"
    )
    with pytest.raises(WorkbenchError) as err:
        tracking.setup(project)
    line = str(err.value)
    assert line.startswith(f"cannot reach the MLflow store postgresql+psycopg2://127.0.0.1:{port}")
    assert "\n" not in line and "not-shown-pw" not in line
    # The password joins the URI only to connect, and never reaches a job's environment.
    assert "not-shown-pw" in backends.connect_uri(project, project.tracking_uri)
    env = backends.job_env(project)
    assert env["WORKBENCH_TRACKING_URI"] == project.tracking_uri
    assert all("not-shown-pw" not in v for k, v in env.items() if k != "WB_TEST_PG_PW")


# -- PostgreSQL --------------------------------------------------------------------------------


def test_pipeline_runs_and_models_on_postgres(
    tmp_path: Path, postgres_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _needs("sql_reader")
    project = _project(tmp_path, postgres_uri)
    where = ["--project", str(project.root)]
    code, _, err = run_cli(capsys, *where, "pipeline", "run", "--runner", "local")
    assert code == 0, err
    assert not project.mlflow_db.exists()  # nothing went to the embedded store
    runs = cli_json(capsys, *where, "runs")
    rows = runs["runs"] if isinstance(runs, dict) else runs
    assert len(rows) == 1 and rows[0]["status"] == "FINISHED"
    models = cli_json(capsys, *where, "models")
    assert [v["version"] for v in models["versions"]] == [1]
    assert 0.0 <= models["versions"][0]["metrics"]["holdout_auc"] <= 1.0
    me = cli_json(capsys, *where, "whoami")
    assert me["user"] == "postgres" and me["store_location"].startswith("postgresql+psycopg2://")
    # Incremental sync: a second pipeline's run is found after the first full read.
    assert (project.store / "runs.sync.json").is_file()
    code, _, err = run_cli(capsys, *where, "pipeline", "run", "--runner", "local")
    assert code == 0, err
    again = cli_json(capsys, *where, "runs")
    assert len(again["runs"] if isinstance(again, dict) else again) == 2


# -- the tracking server with basic auth and S3 artifacts --------------------------------------


def test_tracking_server_pipeline_serve_and_permissions(
    tmp_path: Path,
    mlflow_server: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _needs("rest_reader")
    project = _project(tmp_path, mlflow_server)
    model = project.config.model_name
    where = ["--project", str(project.root)]
    code, _, err = run_cli(capsys, *where, "pipeline", "run", "--runner", "local")
    assert code == 0, err
    assert not project.mlflow_db.exists()
    models = cli_json(capsys, *where, "models")
    (v1,) = models["versions"]
    assert v1["version"] == 1
    run_uri = backends.reader_for(project).run_artifact_uri(v1["run_id"])
    assert run_uri is not None and run_uri.startswith("mlflow-artifacts:")  # proxied to S3
    # The model's artifacts live on the server (proxied to S3): served from a local copy.
    from workbench.serving.predictors import load_predictor, model_dir_for

    folder = model_dir_for(project, 1)
    assert folder == project.store / "cache" / "models" / model / "1"
    assert (folder / "MLmodel").is_file()
    predictor = load_predictor(folder, 1)
    record = {"amount": 12.5, "merchant_category": "fuel", "card_age_days": 300, "hour": 10}
    (score,) = predictor.predict([record])
    assert 0.0 <= score <= 1.0
    assert model_dir_for(project, 1) == folder  # from the cache now
    # alice registered it: she may promote.
    me = cli_json(capsys, *where, "whoami")
    assert me["user"] == ALICE[0] and me["store_location"] == mlflow_server
    assert me["can_edit_model"] is True and me["may"] == "may promote"
    code, _, err = run_cli(capsys, *where, "promote", "1", "--reason", "alice ships it")
    assert code == 0, err
    moves = [r for r in audit_rows(project) if r["action"] == "promote"]
    assert len(moves) == 1
    # bob reads only: whoami says so, and a promote is refused in one line, nothing audited.
    _as(monkeypatch, BOB)
    me = cli_json(capsys, *where, "whoami")
    assert me["user"] == BOB[0] and me["can_edit_model"] is False and me["permission"] == "READ"
    code, _, err = run_cli(capsys, *where, "promote", "1", "--alias", "staging", "--reason", "b")
    assert code != 0
    assert err.strip() == (
        f"workbench: error: permission denied: user bob may not change aliases of model {model} "
        f"on {mlflow_server} (ask an admin for EDIT)"
    )
    code, _, err = run_cli(capsys, *where, "rollback", "--reason", "bob tries")
    assert code != 0 and "\n" not in err.strip()
    assert [r for r in audit_rows(project) if r["action"] in ("promote", "rollback")] == moves
    # A wrong password: one line naming the server, no credentials in it.
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password-x")
    code, _, err = run_cli(capsys, *where, "whoami")
    assert code == 1 and "401" in err and mlflow_server in err and "wrong-password-x" not in err


def test_jobs_get_the_store_and_its_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("docker")
    from workbench_plugins.docker_runner import container_config
    from workbench_plugins.local_runner import _store_env

    from workbench.plugins import JobSpec

    _as(monkeypatch, ALICE)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", "http://127.0.0.1:18333")
    project = _project(tmp_path, "http://127.0.0.1:15000")
    spec = JobSpec("j1", "serve", "workbench.serving", [], project.root, tmp_path / "j1.log")
    spec.ports[8080] = ("127.0.0.1", 18080)
    for env in (_store_env(spec), container_config(project, spec, "img")["environment"]):
        assert env["WORKBENCH_TRACKING_URI"] == "http://127.0.0.1:15000"
        assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:15000"
        assert env["MLFLOW_TRACKING_USERNAME"] == ALICE[0]
        assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://127.0.0.1:18333"
    config = container_config(project, spec, "img")
    assert config["network_mode"] == "host" and "ports" not in config  # the store is on loopback
