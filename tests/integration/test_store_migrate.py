"""`workbench store migrate`: a project trained by the real pipeline (v1 production, v2
staging, audit rows) plus a version a plain MLflow 3 script logged (a `models:/m-...` source),
copied to (a) a fresh PostgreSQL database with artifacts on S3 and (b) the authenticated
tracking server; counts, histories, aliases and the served model compared on both sides."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.helpers import cli_json, free_port, run_cli
from tests.services import unique
from tests.sklearn_projects import holdout
from workbench.project import Project
from workbench.registry import migrate, migrate_registry, migrate_target
from workbench.registry.migrate_runs import INCOMPLETE_TAG, MIGRATED_TAG

pytestmark = pytest.mark.integration

PLAIN_MLFLOW = """
import sys, mlflow, polars as pl
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression
uri, experiment, name, data = sys.argv[1:5]
mlflow.set_tracking_uri(uri)
mlflow.set_experiment(experiment)
df = pl.read_parquet(data).select(["amount", "hour", "is_fraud"]).to_pandas()
X, y = df[["amount", "hour"]], df["is_fraud"]
model = LogisticRegression(max_iter=200).fit(X, y)
with mlflow.start_run(run_name="plain"):
    mlflow.log_input(mlflow.data.from_pandas(df, name="small"), context="eval", tags={"k": "v"})
    info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name,
                                    signature=infer_signature(X, model.predict(X)))
    mlflow.log_metric("acc", 0.5, step=1, model_id=info.model_id)
"""


def _own_store_env() -> dict[str, str]:
    """This process's environment without the tracking and registry URIs mlflow.set_*_uri
    exported for an earlier project (the script names its store itself)."""
    drop = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    return {k: v for k, v in os.environ.items() if k not in drop}


def _client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _sqlite_counts(project: Project) -> dict[str, int]:
    con = sqlite3.connect(project.mlflow_db)
    try:
        one = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "runs": one("SELECT count(*) FROM runs WHERE lifecycle_stage = 'active'"),
            "metric points": one("SELECT count(*) FROM metrics"),
            "params": one("SELECT count(*) FROM params"),
            "run tags": one("SELECT count(*) FROM tags"),
            "inputs": one("SELECT count(*) FROM inputs"),
            "logged models": one("SELECT count(*) FROM logged_models"),
            "versions": one("SELECT count(*) FROM model_versions"),
            "aliases": one("SELECT count(*) FROM registered_model_aliases"),
        }
    finally:
        con.close()


def _history(client: Any, run_id: str, key: str) -> list[tuple[int, int, float]]:
    return sorted((m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key))


def _scores(uri: str, ref: str, frame: Any) -> np.ndarray:
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    out = mlflow.pyfunc.load_model(ref).predict(frame)
    return np.asarray(out, dtype=float).reshape(len(frame), -1)


def _assert_same(project: Project, target: str, result: dict[str, Any], prefix: str = "") -> None:
    """Counts equal (against the SQLite tables counted here), every metric history equal,
    aliases equal, the production model scores the same from the target."""
    counts = {r["what"]: (r["source"], r["target"], r["ok"]) for r in result["counts"]}
    assert all(ok for _, _, ok in counts.values()), counts
    for what, n in _sqlite_counts(project).items():
        assert counts[what][:2] == (n, n), what
    mapping = json.loads(Path(result["mapping_file"]).read_text())
    runs: dict[str, str] = mapping["runs"]
    source, dest = _client(project.tracking_uri), _client(target)
    assert len(runs) == counts["runs"][0] and len(set(runs.values())) == len(runs)
    for old, new in runs.items():
        before, after = source.get_run(old), dest.get_run(new)
        assert after.data.tags[MIGRATED_TAG] == old and INCOMPLETE_TAG not in after.data.tags
        assert (after.info.status, after.info.start_time, after.info.end_time) == (
            before.info.status,
            before.info.start_time,
            before.info.end_time,
        )
        assert (after.info.run_name, after.info.user_id) == (
            before.info.run_name,
            before.info.user_id,
        )
        assert after.data.params == before.data.params
        for key in before.data.metrics:
            assert _history(dest, new, key) == _history(source, old, key), key
    name = project.config.model_name
    aliases = lambda c, n: {a: int(v) for a, v in c.get_registered_model(n).aliases.items()}  # noqa: E731
    assert aliases(dest, prefix + name) == aliases(source, name)
    for v in source.search_model_versions(f"name = '{name}'"):
        mv = dest.get_model_version(prefix + name, v.version)
        assert mv.run_id == runs[v.run_id] and mv.description == v.description
        assert not mv.source.startswith("file:"), mv.source  # the copy, not the project's files
    features, _ = holdout(project)
    rows = features.head(64)
    expected = _scores(project.tracking_uri, f"models:/{name}@production", rows)
    got = _scores(target, f"models:/{prefix}{name}@production", rows)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def _migrate(capsys: Any, project: Project, *args: str, code: int = 0) -> dict[str, Any]:
    result: dict[str, Any] = cli_json(
        capsys, "--project", str(project.root), "store", "migrate", *args, code=code
    )
    return result


def test_migrate_to_postgres_with_s3_artifacts(
    trained_project: Project, postgres_uri: str, s3_bucket: str, capsys: Any
) -> None:
    project = trained_project
    subprocess.run(
        [sys.executable, "-c", PLAIN_MLFLOW, project.tracking_uri, project.experiment_name,
         project.config.model_name, str(project.data_path)],
        capture_output=True, text=True, check=True, env=_own_store_env(),
    )  # fmt: skip
    code, history_before, _ = run_cli(capsys, "--project", str(project.root), "history", "--json")
    assert code == 0
    args = ("--to", postgres_uri, "--artifacts-destination", f"{s3_bucket}/mlflow")

    plan = _migrate(capsys, project, *args, "--dry-run")
    assert plan["dry_run"] and plan["copy"]["runs"] == 3 and plan["copy"]["versions"] == 3
    assert plan["copy"]["logged models"] == 1 and plan["copy"]["audit rows"] >= 3
    assert not migrate_target.has_mlflow_tables(postgres_uri)  # not even the schema
    assert not (project.store / "migrations").exists()

    result = _migrate(capsys, project, *args, "--progress-every", "1")
    assert result["copy"]["runs"] == 3 and result["copy"]["logged models"] == 1
    _assert_same(project, postgres_uri, result)
    dest = _client(postgres_uri)
    name = project.config.model_name
    v3 = dest.get_model_version(name, "3")
    mapping = json.loads(Path(result["mapping_file"]).read_text())
    (old_model, new_model), = mapping["logged_models"].items()  # fmt: skip
    assert v3.source == f"models:/{new_model}" and new_model != old_model
    run = dest.get_run(v3.run_id)
    assert run.info.artifact_uri.startswith(f"{s3_bucket}/mlflow/")
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["small"]

    # The alias history: `workbench history` reads the same as before; the target's copy
    # names the target's run ids and the same versions.
    code, history_after, _ = run_cli(capsys, "--project", str(project.root), "history", "--json")
    assert code == 0 and json.loads(history_after) == json.loads(history_before)
    copied = migrate_registry.read_audit(dest, name)
    local = json.loads(history_before)
    assert [(r["alias"], r["from_version"], r["to_version"]) for r in copied if r["alias"]] == [
        (r["alias"], r["from_version"], r["to_version"]) for r in local
    ]
    targets = set(mapping["runs"].values())
    named = [r["details"]["run_id"] for r in copied if "run_id" in r.get("details", {})]
    assert named and set(named) <= targets

    # A rerun copies nothing new; a run whose copy was cut short is copied again, once.
    again = _migrate(capsys, project, *args)
    assert "runs" not in again["copy"] and "versions" not in again["copy"]
    some = next(iter(mapping["runs"].values()))
    dest.set_tag(some, INCOMPLETE_TAG, "1")
    resumed = _migrate(capsys, project, *args)
    assert resumed["copy"]["runs"] == 1
    assert all(r["ok"] for r in resumed["counts"])
    assert dest.get_run(some).info.lifecycle_stage == "deleted"

    # --switch: the project now reads its runs and models from the target.
    code, before, _ = run_cli(capsys, "--project", str(project.root), "models", "--json")
    assert code == 0
    switched = _migrate(capsys, project, *args, "--switch")
    assert switched["switched"] is True
    text = (project.root / "workbench.toml").read_text(encoding="utf-8")
    assert f'tracking_uri = "{postgres_uri}"' in text
    code, after, err = run_cli(capsys, "--project", str(project.root), "models", "--json")
    assert code == 0, err
    old, new = json.loads(before)["versions"], json.loads(after)["versions"]
    shape = [(v["version"], v["aliases"]) for v in old]
    assert [(v["version"], v["aliases"]) for v in new] == shape
    assert {v["run_id"] for v in new} == {mapping["runs"][v["run_id"]] for v in old}


def test_migrate_to_the_authenticated_server(
    trained_project: Project, mlflow_server: str, capsys: Any
) -> None:
    prefix = unique("wbmig-")
    result = _migrate(capsys, trained_project, "--to", mlflow_server, "--name-prefix", prefix)
    assert result["copy"]["runs"] == 2 and result["copy"]["versions"] == 2
    _assert_same(trained_project, mlflow_server, result, prefix)
    assert result["toml"] == f'[store]\ntracking_uri = "{mlflow_server}"\n'


def test_bad_targets_are_one_line(sample_project: Project, capsys: Any) -> None:
    root = str(sample_project.root)
    port = free_port()
    cases = [
        (["--to", "ftp://example.org/x"], 2, "not a tracking URI"),
        (["--to", "postgresql+psycopg2://u@127.0.0.1/db"], 2, "--artifacts-destination"),
        (["--to", f"http://127.0.0.1:{port}"], 1, "cannot reach the MLflow server"),
        (
            ["--to", f"postgresql+psycopg2://u:secret@127.0.0.1:{port}/db",
             "--artifacts-destination", "/tmp/x"],
            1,
            "cannot reach the database",
        ),
    ]  # fmt: skip
    for args, want, text in cases:
        code, out, err = run_cli(capsys, "--project", root, "store", "migrate", *args)
        assert (code, out) == (want, ""), err
        assert len(err.strip().splitlines()) == 1 and text in err, err
        assert "secret" not in err


def test_switch_rewrites_only_the_key() -> None:
    text = (
        '# my project\n[project]\nname = "p"  # kept\n\n'
        '[store]\n# the team store\ntracking_uri = "sqlite:///x"  # old\n'
    )
    new = migrate.switch_text(text, "postgresql+psycopg2://bob:pw@db/mlflow")
    assert new == text.replace(
        '"sqlite:///x"  # old', '"postgresql+psycopg2://bob@db/mlflow"  # old'
    )
    added = migrate.switch_text('[project]\nname = "p"\n', "http://mlflow:5000")
    assert added == '[project]\nname = "p"\n\n[store]\ntracking_uri = "http://mlflow:5000"\n'
    under = migrate.switch_text("[store]\n# c\n[x]\n", "http://h")
    assert under == '[store]\ntracking_uri = "http://h"\n# c\n[x]\n'
