"""What of a trainer plugin's distribution goes into the job image (workbench.jobs.plugin_dists),
for installs made by hand in tmp folders put on the path (the shared venv is never touched);
the real build and a container run are in tests/integration/test_docker_plugins.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import plugins_forgotten
from workbench.jobs import images, plugin_dists
from workbench.project import Project

NAME = "acme_trainer"


def _dist_info(site: Path, files: dict[str, str]) -> None:
    info = site / f"{NAME}-2.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {NAME}\nVersion: 2.0\n"
        "Requires-Dist: workbench-mlops>=0.1\nRequires-Dist: numpy>=1\n"
        'Requires-Dist: definitely-not-installed-xyz>=3 ; python_version >= "3"\n'
        'Requires-Dist: windows-only-thing ; sys_platform == "win32"\n'
    )
    (info / "entry_points.txt").write_text(f"[workbench.plugins]\nacme = {NAME}:Acme\n")
    for name, text in files.items():
        (info / name).write_text(text)


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    with plugins_forgotten():
        yield site


def _using(project: Project, plugin: str) -> Project:
    toml = project.root / "workbench.toml"
    toml.write_text(toml.read_text().replace('plugin = "lightgbm"', f'plugin = "{plugin}"', 1))
    return Project.load(project.root)


def test_an_editable_plugin_goes_in_as_its_source_folder(
    on_path: Path, tmp_path: Path, sample_project: Project
) -> None:
    src = tmp_path / "acme-src"
    (src / NAME).mkdir(parents=True)
    (src / "pyproject.toml").write_text(f'[project]\nname = "{NAME}"\nversion = "2.0"\n')
    (src / NAME / "__init__.py").write_text("class Acme: ...\n")
    for junk in (".git", "build", f"{NAME}.egg-info", f"{NAME}/__pycache__"):
        (src / junk).mkdir()
        (src / junk / "x").write_text("junk")
    url = {"url": src.as_uri(), "dir_info": {"editable": True}}
    _dist_info(on_path, {"direct_url.json": json.dumps(url)})
    project = _using(sample_project, "acme")
    (dist,) = plugin_dists.trainer_dists(project)
    assert dist.editable and dist.name == "acme-trainer" and dist.version == "2.0"
    assert sorted(dist.files) == [
        "wbplugins/acme-trainer/src/acme_trainer/__init__.py",
        "wbplugins/acme-trainer/src/pyproject.toml",
    ]
    # its requirements for this platform, pinned to the host's versions; Workbench left out
    import numpy

    assert dist.requirements == [f"numpy=={numpy.__version__}", "definitely-not-installed-xyz>=3"]
    files, _ = images._context(project)
    text = files["Dockerfile"].decode()
    assert "pip install --no-deps --no-build-isolation /opt/wbplugins/acme-trainer/src" in text
    assert text.index("COPY wbsrc") < text.index("COPY wbplugins") < text.index("COPY project")


def test_a_plugin_without_its_installed_files_is_a_build_failure(
    on_path: Path, sample_project: Project
) -> None:
    _dist_info(on_path, {})  # no RECORD: nothing says which files are its own
    project = _using(sample_project, "acme")
    with pytest.raises(images.BuildFailed) as info:
        images._context(project)
    assert str(info.value).startswith("plugin distribution acme-trainer 2.0 lists no installed")


@pytest.mark.parametrize(("plugin", "pinned"), [("lightgbm", False), ("xgboost", True)])
def test_workbench_trainers_need_no_plugin_distribution(
    sample_project: Project, plugin: str, pinned: bool
) -> None:
    import xgboost

    project = _using(sample_project, plugin)
    assert plugin_dists.trainer_dists(project) == []
    files, _ = images._context(project)
    assert not any(name.startswith("wbplugins/") for name in files)
    text = files["Dockerfile"].decode()
    assert "COPY wbplugins" not in text
    assert (f"xgboost=={xgboost.__version__}" in text) == pinned
    assert (
        'xgboost = "workbench_plugins.xgboost_trainer:XGBoostTrainer"'
        in files["wbsrc/pyproject.toml"].decode()
    )
