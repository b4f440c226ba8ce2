"""A trainer from a third-party package trains in a container: the package that provides the
project's trainer goes into the job image as the host has it (see workbench.jobs.plugin_dists).

The package is written here, packed as a wheel by hand (no build backend, no index) and
installed with `pip --target` into a folder of its own that this test puts on the path: the
shared virtual environment is never touched. Skipped when no Docker engine answers (unless
WORKBENCH_REQUIRE_DOCKER=1), like tests/integration/test_docker.py, whose fixtures it uses."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import plugins_forgotten
from workbench import plugins
from workbench.jobs import control as jobs
from workbench.jobs import images
from workbench.jobs.observer import JobObserver
from workbench.project import Project

from .test_docker import _with_docker, base_image, engine_session  # noqa: F401  (a fixture)

pytestmark = pytest.mark.integration

NAME, VERSION, PLUGIN = "wb_tiny_trainer", "0.3.1", "tiny_lgb"
CODE = '''"""A third-party trainer: LightGBM with a fixed, small budget."""
from workbench_plugins.lightgbm_trainer import LightGBMTrainer


class TinyTrainer:
    kind = "trainer"
    name = "tiny_lgb"

    def train(self, ctx):
        ctx.on_line("tiny trainer running from " + __file__)
        ctx.params = {**ctx.params, "num_iterations": 12}
        return LightGBMTrainer().train(ctx)
'''


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    """test_docker's engine with a longer timeout: a build loads a small machine."""
    yield from engine_session(timeout=120)


def build_wheel(out: Path) -> Path:
    """A pure-Python wheel of the tiny plugin (a zip with its .dist-info), as a build would."""
    info = f"{NAME}-{VERSION}.dist-info"
    members = {
        f"{NAME}/__init__.py": CODE,
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\nRequires-Dist: lightgbm\n"
            'Requires-Dist: pytest ; extra == "test"\n'
        ),
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{info}/entry_points.txt": (f"[workbench.plugins]\n{PLUGIN} = {NAME}:TinyTrainer\n"),
    }
    record = []
    for name, text in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    members[f"{info}/RECORD"] = "\n".join(record) + "\n"
    wheel = out / f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return wheel


@pytest.fixture
def tiny_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The plugin installed into tmp_path/site (its own folder), on this process's path and
    on the path of the processes it starts; the plugin caches forget it afterwards."""
    site = tmp_path / "site"
    wheel = build_wheel(tmp_path)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", str(site), str(wheel)],
        check=True,
    )  # fmt: skip
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    with plugins_forgotten():
        yield site


def _tiny_project(sample_project: Project, base: str) -> Project:
    toml = sample_project.root / "workbench.toml"
    toml.write_text(toml.read_text().replace('plugin = "lightgbm"', f'plugin = "{PLUGIN}"', 1))
    return _with_docker(sample_project, base)


def test_the_trainers_distribution_goes_into_the_image(
    tiny_plugin: Path, sample_project: Project
) -> None:
    project = _tiny_project(sample_project, "base:x")
    assert plugins.load("trainer", PLUGIN).name == PLUGIN
    files, _ = images._context(project)
    folder = f"wbplugins/{NAME.replace('_', '-')}"
    assert files[f"{folder}/site/{NAME}/__init__.py"].decode() == CODE
    assert f"{folder}/site/{NAME}-{VERSION}.dist-info/entry_points.txt" in files
    text = files["Dockerfile"].decode()
    assert "COPY wbplugins /opt/wbplugins" in text
    import lightgbm

    # its requirement pinned to the host's version; the test extra left out
    assert f"pip install 'lightgbm=={lightgbm.__version__}'" in text
    assert "pytest" not in text
    # a change to the plugin is a new image
    tag = images.image_tag(project, files)
    (tiny_plugin / NAME / "__init__.py").write_text(CODE + "\n# changed\n")
    assert images.image_tag(project, images._context(project)[0]) != tag


def test_a_third_party_trainer_trains_in_a_container(
    tiny_plugin: Path,
    sample_project: Project,
    base_image: str,  # noqa: F811
) -> None:
    project = _tiny_project(sample_project, base_image)
    lines: list[str] = []
    out = jobs.run_training(
        project, plugins.load("runner", "docker"), JobObserver(on_log=lines.append)
    )
    assert out.ok and out.train_result is not None, out.reason
    where = next(line for line in lines if line.startswith("tiny trainer running from "))
    assert where.startswith("tiny trainer running from /opt/workbench/lib/")  # the image's copy
    import mlflow

    run = mlflow.MlflowClient(tracking_uri=project.tracking_uri).get_run(out.train_result.run_id)
    assert run.data.tags["workbench.trainer"] == PLUGIN
    assert run.data.metrics["holdout_auc"] > 0.7
