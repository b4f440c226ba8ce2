"""workbench.toml parsing and validation, project loading, and how the CLI reports config errors."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from workbench.cli.main import main
from workbench.config import Config, load_config, parse_config
from workbench.errors import ConfigError, UsageError
from workbench.project import Project, find_project_root

SAMPLE = Path(__file__).resolve().parents[2] / "sample_projects" / "fraud_detection"
SAMPLE_TOML = (SAMPLE / "workbench.toml").read_text(encoding="utf-8")
SOURCE = "proj/workbench.toml"


def _edited(edit: Callable[[dict[str, Any]], None]) -> str:
    """The sample config as TOML text after `edit` changed its parsed form."""
    raw = tomllib.loads(SAMPLE_TOML)
    edit(raw)
    return tomli_w.dumps(raw)


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, SOURCE)
    return info.value


# ---------------------------------------------------------------- the valid sample


def test_sample_config_loads_with_its_values() -> None:
    cfg = load_config(SAMPLE / "workbench.toml")
    assert isinstance(cfg, Config)
    assert cfg.project.name == "fraud_detection"
    assert cfg.model_name == "fraud_detection"
    assert cfg.data.target == "is_fraud"
    assert cfg.data.split == "time" and cfg.data.timestamp == "ts"
    assert cfg.trainer.plugin == "lightgbm"
    assert cfg.trainer.params["num_iterations"] == 150
    assert cfg.schema_["hour"].min == 0 and cfg.schema_["hour"].max == 23
    assert cfg.schema_["merchant_category"].allowed is not None
    assert "grocery" in cfg.schema_["merchant_category"].allowed
    # Defaults fill the sections the file leaves out.
    assert cfg.registry.candidate_alias == "staging"
    assert cfg.registry.production_alias == "production"
    assert cfg.drift.psi_warn <= cfg.drift.psi_alert


def test_features_exclude_target_timestamp_and_id() -> None:
    cfg = parse_config(SAMPLE_TOML)
    assert "is_fraud" not in cfg.features
    assert "ts" not in cfg.features
    assert "transaction_id" not in cfg.features
    assert cfg.features[0] == "amount"
    assert "merchant_category" in cfg.features


def test_model_name_defaults_to_project_name() -> None:
    cfg = parse_config(_edited(lambda raw: raw.pop("registry")))
    assert cfg.registry.model_name is None
    assert cfg.model_name == "fraud_detection"


def test_minimal_config_is_enough() -> None:
    cfg = parse_config(
        '[project]\nname = "p"\n[data]\npath = "d.csv"\ntarget = "y"\nsplit = "random"\n'
    )
    assert cfg.data.split == "random"
    assert cfg.schema_ == {}
    assert cfg.features == []


def test_config_is_frozen() -> None:
    cfg = parse_config(SAMPLE_TOML)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError
        cfg.project.name = "other"  # type: ignore[misc]


# ---------------------------------------------------------------- one line per mistake


def _set(section: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(raw: dict[str, Any]) -> None:
        raw.setdefault(section, {})[key] = value

    return edit


def _misspell_plugin(raw: dict[str, Any]) -> None:
    raw["trainer"]["plugn"] = raw["trainer"].pop("plugin")


def _drop_timestamp(raw: dict[str, Any]) -> None:
    del raw["data"]["timestamp"]


def _min_above_max(raw: dict[str, Any]) -> None:
    raw["schema"]["hour"]["min"] = 30


def _psi_inverted(raw: dict[str, Any]) -> None:
    raw["drift"] = {"psi_warn": 0.5, "psi_alert": 0.2}


def _drop_data(raw: dict[str, Any]) -> None:
    del raw["data"]


ERRORS = [
    pytest.param(_misspell_plugin, ["[trainer].plugn", "unknown key"], id="trainer-plugn"),
    pytest.param(
        _set("data", "holdout_fraction", 1.5),
        ["[data].holdout_fraction", "1.5"],
        id="holdout-fraction",
    ),
    pytest.param(_drop_data, ["[data]", "missing"], id="missing-data"),
    pytest.param(_drop_timestamp, ["[data]", "timestamp"], id="time-split-no-timestamp"),
    pytest.param(
        _min_above_max, ["schema", "hour", "min (30.0) is greater than max"], id="min>max"
    ),
    pytest.param(_psi_inverted, ["[drift]", "psi_warn"], id="psi-warn>alert"),
    pytest.param(
        _set("evaluation", "metric", "rmse"), ["[evaluation].metric", "rmse"], id="bad-metric"
    ),
    pytest.param(_set("serving", "port", 70_000), ["[serving].port"], id="port-range"),
    # Issue 9: settings that used to fail only inside a job, or never.
    pytest.param(_set("docker", "gpus", -1), ["[docker].gpus", "-1"], id="gpus-negative"),
    pytest.param(_set("docker", "cpus", 0), ["[docker].cpus"], id="cpus-zero"),
    pytest.param(
        _set("data", "seed", 12345678901234567890),
        ["[data].seed", "4294967295"],
        id="seed-20-digits",
    ),
    pytest.param(_set("data", "seed", -1), ["[data].seed"], id="seed-negative"),
    pytest.param(
        _set("registry", "candidate_alias", "latest"),
        ["[registry].candidate_alias", "reserved by MLflow"],
        id="alias-latest",
    ),
    pytest.param(
        _set("registry", "production_alias", "v2"),
        ["[registry].production_alias", "version number"],
        id="alias-version-like",
    ),
    pytest.param(
        _set("registry", "candidate_alias", "a/b"), ["[registry].candidate_alias"], id="alias-slash"
    ),
    pytest.param(
        _set("serving", "alias", "my alias"),
        ["[serving].alias", "letters, digits"],
        id="alias-space",
    ),
    pytest.param(
        _set("registry", "candidate_alias", "production"),
        ["[registry]", "both 'production'"],
        id="candidate-is-production",
    ),
    pytest.param(
        _set("data", "drop", ["is_fraud"]),
        ["[data]", "target 'is_fraud' is in drop"],
        id="drop-target",
    ),
    pytest.param(
        _set("data", "id_column", "is_fraud"), ["[data]", "also the id_column"], id="id-is-target"
    ),
    pytest.param(
        _set("gate", "max_regression", {"holdout_loglos": 0.01}),
        ["[gate].max_regression", "holdout_loglos", "holdout_logloss"],
        id="gate-unknown-metric",
    ),
    pytest.param(
        _set("validation", "max_nonfinite", 2.0), ["[validation].max_nonfinite"], id="nonfinite>1"
    ),
]


@pytest.mark.parametrize(("edit", "expected"), ERRORS)
def test_each_mistake_is_one_line_naming_file_and_key(
    edit: Callable[[dict[str, Any]], None], expected: list[str]
) -> None:
    err = _error(_edited(edit))
    msg = str(err)
    assert "\n" not in msg
    assert msg.startswith(f"{SOURCE}: ")
    for part in expected:
        assert part in msg, msg
    assert err.exit_code == 2
    assert isinstance(err, UsageError)


def test_bad_toml_syntax_names_file_and_position() -> None:
    err = _error(SAMPLE_TOML.replace('metric = "auc"', "metric = "))
    msg = str(err)
    assert msg.startswith(f"{SOURCE}: not valid TOML")
    assert "line" in msg
    assert "\n" not in msg
    assert err.exit_code == 2


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("x = " + "[" * 5000 + "]" * 5000 + "\n", id="array"),
        pytest.param("x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n", id="inline-table"),
    ],
)
def test_deeply_nested_toml_is_one_line_not_a_recursion_error(text: str) -> None:
    msg = str(_error(text))
    assert msg.startswith(f"{SOURCE}: ")
    assert "nested too deeply" in msg
    assert "\n" not in msg


def test_nested_trainer_params_within_parser_limits_still_load() -> None:
    """A moderately nested value parses; the trainer's own check judges it at validate."""
    nested = "[" * 50 + "1" + "]" * 50
    cfg = parse_config(SAMPLE_TOML.replace("seed = 42\n", f"seed = 42\nodd = {nested}\n"))
    assert "odd" in cfg.trainer.params


def test_gpus_all_and_counts_are_fine() -> None:
    for value in ("all", 0, 2):
        assert parse_config(_edited(_set("docker", "gpus", value))).docker.gpus == value


def test_several_mistakes_report_the_first_and_count_the_rest() -> None:
    def edit(raw: dict[str, Any]) -> None:
        _misspell_plugin(raw)
        raw["data"]["holdout_fraction"] = 5
        raw["gate"]["bogus"] = 1

    msg = str(_error(_edited(edit)))
    assert "\n" not in msg
    assert "(and 2 more problems)" in msg


def test_unknown_section_is_rejected() -> None:
    msg = str(_error(SAMPLE_TOML + "\n[trainr]\nplugin = 'x'\n"))
    assert "[trainr]" in msg and "unknown key" in msg


def test_load_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "workbench.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert info.value.exit_code == 2


def test_load_config_names_the_real_path(tmp_path: Path) -> None:
    path = tmp_path / "workbench.toml"
    path.write_text(_edited(_misspell_plugin))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: [trainer].plugn")


# ---------------------------------------------------------------- through the CLI


def _broken_project(tmp_path: Path) -> Path:
    root = tmp_path / "broken"
    root.mkdir()
    (root / "workbench.toml").write_text(_edited(_set("data", "holdout_fraction", 1.5)))
    return root


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("workbench: error:")
    return lines[0]


def test_cli_broken_config_after_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _broken_project(tmp_path)
    monkeypatch.chdir(tmp_path)  # not inside any project
    assert main(["models", "--project", str(root)]) == 2
    line = _one_error_line(capsys)
    assert str(root / "workbench.toml") in line
    assert "[data].holdout_fraction" in line


def test_cli_broken_config_project_before_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _broken_project(tmp_path)
    monkeypatch.chdir(tmp_path)  # not inside any project
    assert main(["--project", str(root), "models"]) == 2
    line = _one_error_line(capsys)
    assert str(root / "workbench.toml") in line
    assert "[data].holdout_fraction" in line


def test_cli_bad_toml_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "p"
    root.mkdir()
    (root / "workbench.toml").write_text("[project\nname = 1\n")
    monkeypatch.chdir(tmp_path)
    assert main(["models", "--project", str(root), "--json"]) == 2
    assert "not valid TOML" in _one_error_line(capsys)


def test_cli_finds_broken_config_from_cwd(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _broken_project(tmp_path)
    sub = root / "data" / "deeper"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert main(["models"]) == 2
    assert "[data].holdout_fraction" in _one_error_line(capsys)


# ---------------------------------------------------------------- Project.load / root finding


def test_project_load_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Project.load(tmp_path / "nope")
    assert "no such folder" in str(info.value)
    assert info.value.exit_code == 2


def test_project_load_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Project.load(tmp_path)
    assert "no workbench.toml" in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_project_load_accepts_folder_or_file(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text(SAMPLE_TOML)
    by_dir = Project.load(tmp_path)
    by_file = Project.load(tmp_path / "workbench.toml")
    assert by_dir.root == by_file.root == tmp_path.resolve()
    assert by_dir.name == "fraud_detection"
    assert by_dir.data_path == (tmp_path / "data" / "transactions.parquet").resolve()
    assert by_dir.tracking_uri == f"sqlite:///{tmp_path.resolve() / '.workbench' / 'mlflow.db'}"


def test_find_project_root_walks_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "workbench.toml").write_text(SAMPLE_TOML)
    sub = tmp_path / "a" / "b" / "c"
    sub.mkdir(parents=True)
    assert find_project_root(sub) == tmp_path.resolve()
    monkeypatch.chdir(sub)
    assert find_project_root() == tmp_path.resolve()
    assert Project.load().root == tmp_path.resolve()


def test_find_project_root_nearest_wins(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text(SAMPLE_TOML)
    inner = tmp_path / "inner"
    (inner / "x").mkdir(parents=True)
    (inner / "workbench.toml").write_text(SAMPLE_TOML)
    assert find_project_root(inner / "x") == inner.resolve()


def test_find_project_root_none_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        find_project_root(tmp_path)
    assert "no workbench.toml found" in str(info.value)
    assert "\n" not in str(info.value)


def test_ensure_store_creates_folders_and_gitignore(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text(SAMPLE_TOML)
    project = Project.load(tmp_path)
    project.ensure_store()
    for folder in (project.store, project.artifacts, project.logs, project.jobs_dir):
        assert folder.is_dir()
    assert (project.store / ".gitignore").read_text() == "*\n"
