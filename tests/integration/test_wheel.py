"""A plain install (a wheel, not the editable install the tests run on) holds the packages
under their own names, with the stylesheets and the sample's files, and nothing top-level
named `screens`, `plugins` or `sample_projects` (issue 10)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_installs_the_packages_under_their_own_names(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("workbench_mlops-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"workbench", "workbench_tui", "workbench_plugins", "workbench_samples"}
    for needed in (
        "workbench/serving/__main__.py",
        "workbench/training/__main__.py",
        "workbench_tui/app.py",
        "workbench_tui/app.tcss",
        "workbench_tui/widgets/__init__.py",
        "workbench_plugins/lightgbm_trainer.py",
        "workbench_plugins/workbench_lightgbm_pyfunc.py",
        "workbench_samples/fraud_detection/workbench.toml",
        "workbench_samples/fraud_detection/generate.py",
    ):
        assert needed in names, needed
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "workbench_plugins.docker_runner:DockerRunner" in text
    assert "workbench_tui.app:run_tui" in text
    assert "workbench = workbench.cli.main:main" in text
