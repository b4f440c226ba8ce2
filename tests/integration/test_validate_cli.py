"""`workbench validate` (and the pipeline's first step) on settings that used to fail only
inside a job (issue 9): a config problem exits 2 with one line naming the key, a data problem
exits 1 with the failing check in the report, and neither prints a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import tomli_w

from tests.helpers import run_cli
from workbench.demo import samples

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return samples.init(tmp_path_factory.mktemp("tpl") / "proj", "fraud_detection", rows=2_000)


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    import shutil

    root = tmp_path / "proj"
    shutil.copytree(template, root)
    return root


def _edit(root: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = root / "workbench.toml"
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    edit(raw)
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")


def _set(section: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(raw: dict[str, Any]) -> None:
        table = raw
        for part in section.split("."):
            table = table.setdefault(part, {})
        table[key] = value

    return edit


CONFIG_ERRORS = [
    pytest.param(_set("trainer.params", "num_iterations", -5), "[trainer.params].num_iterations"),
    pytest.param(_set("trainer.params", "n_estimators", 0), "[trainer.params].n_estimators"),
    pytest.param(_set("trainer", "plugin", "catboost_rf"), "[trainer].plugin"),
    pytest.param(_set("trainer.params", "seed", 12345678901234567890), "[trainer.params].seed"),
    pytest.param(_set("data", "seed", 12345678901234567890), "[data].seed"),
    pytest.param(_set("docker", "gpus", -1), "[docker].gpus"),
    pytest.param(_set("registry", "candidate_alias", "latest"), "[registry].candidate_alias"),
    pytest.param(_set("serving", "alias", "v3"), "[serving].alias"),
]


@pytest.mark.parametrize(("edit", "key"), CONFIG_ERRORS)
def test_config_problem_exits_2_with_one_line_naming_the_key(
    project: Path, capsys: pytest.CaptureFixture[str], edit: Callable[..., None], key: str
) -> None:
    _edit(project, edit)
    code, out, err = run_cli(capsys, "validate", "--project", str(project))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"workbench: error: {project / 'workbench.toml'}: {key}")
    assert out == ""


def test_deeply_nested_toml_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "workbench.toml"
    path.write_text(path.read_text() + "\n[tui]\ntheme = " + "[" * 3000 + "]" * 3000 + "\n")
    code, _, err = run_cli(capsys, "validate", "--project", str(project))
    assert code == 2
    assert "nested too deeply" in err and len(err.strip().splitlines()) == 1


def _rewrite_data(project: Path, change: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    path = project / "data" / "transactions.parquet"
    change(pl.read_parquet(path)).write_parquet(path)


DATA_FAILURES = [
    pytest.param(
        _set("data", "timestamp", "event_time"),
        None,
        "[data].timestamp: 'event_time' is not a column of the data",
        id="timestamp",
    ),
    pytest.param(
        _set("data", "drop", ["nope"]),
        None,
        "[data].drop[0]: 'nope' is not a column",
        id="drop",
    ),
    pytest.param(
        lambda raw: raw.pop("schema"),
        None,
        "no features",
        id="no-schema",
    ),
    pytest.param(
        None,
        lambda df: df.with_columns(
            pl.when(pl.int_range(pl.len()) % 50 == 0)
            .then(float("inf"))
            .otherwise(pl.col("amount"))
            .alias("amount")
        ),
        "are infinite",
        id="inf-2-percent",
    ),
    pytest.param(
        None,
        lambda df: df.with_columns(pl.lit(float("inf")).alias("device_score")),
        "are infinite",
        id="inf-every-row",
    ),
]


@pytest.mark.parametrize(("edit", "change", "expected"), DATA_FAILURES)
def test_data_problem_exits_1_and_the_report_names_it(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    edit: Callable[..., None] | None,
    change: Callable[[pl.DataFrame], pl.DataFrame] | None,
    expected: str,
) -> None:
    if edit:
        _edit(project, edit)
    if change:
        _rewrite_data(project, change)
    code, out, _ = run_cli(capsys, "validate", "--project", str(project), "--json")
    assert code == 1
    import json

    report = json.loads(out)
    assert report["passed"] is False
    assert any(expected in c["detail"] for c in report["checks"] if c["status"] == "fail"), out


def test_pipeline_start_refuses_a_bad_param_before_any_job(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(project, _set("trainer.params", "learning_rate", 0))
    code, _, err = run_cli(capsys, "pipeline", "run", "--project", str(project))
    assert code == 2
    assert "[trainer.params].learning_rate: must be > 0" in err
    assert not list((project / ".workbench" / "jobs").glob("*.log"))


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        pytest.param(_set("trainer", "plugin", "nope"), 2, id="config"),
        pytest.param(_set("data", "id_column", "missing_id"), 1, id="data"),
    ],
)
def test_a_real_process_prints_no_traceback(
    project: Path, edit: Callable[..., None], code: int
) -> None:
    _edit(project, edit)
    proc = subprocess.run(
        [sys.executable, "-m", "workbench", "validate", "--project", str(project)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "300"},  # the report's detail on one table line
    )
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    if code == 2:
        assert len(proc.stderr.strip().splitlines()) == 1
        installed = "(installed: lightgbm, script, sklearn, xgboost)"
        assert f"[trainer].plugin: no trainer plugin named 'nope' {installed}" in proc.stderr
    else:
        assert "[data].id_column" in proc.stdout
