"""What the ray runner submits (entrypoint, runtime env, resources), formed without a
cluster; and `--runner ray` without Ray installed."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
from workbench_plugins import ray_submit
from workbench_plugins.ray_runner import RayRunner

from tests.helpers import run_cli
from workbench.demo import samples
from workbench.errors import ConfigError
from workbench.plugins import JobSpec
from workbench.project import Project


def project(tmp_path: Path, extra: str = "") -> Project:
    root = samples.init(tmp_path / "proj", "fraud_detection", rows=500)
    toml = root / "workbench.toml"
    toml.write_text(toml.read_text() + '\n[ray]\naddress = "http://head:8265"\n' + extra)
    return Project.load(root)


def spec(p: Project) -> JobSpec:
    args = ["--project", str(p.root), "--job-id", "train-1"]
    return JobSpec("train-1", "train", "workbench.training", args, p.root, p.jobs_dir / "x.log")


def test_submission_uploads_the_project_and_ships_workbench(tmp_path: Path) -> None:
    p = project(
        tmp_path,
        'python = "/opt/py/bin/python"\n[resources]\ncpus = 2\nmemory = "512m"\ngpus = 1\n',
    )
    kwargs = ray_submit.submission(p, spec(p))
    argv = shlex.split(kwargs["entrypoint"])
    assert argv[:3] == ["/opt/py/bin/python", "-m", "workbench.training"]
    assert argv[argv.index("--project") + 1] == "."  # the uploaded working_dir
    env = kwargs["runtime_env"]
    assert env["working_dir"] == str(p.root) and ".workbench" in env["excludes"]
    assert [Path(d).name for d in env["py_modules"]] == ["workbench", "workbench_plugins"]
    assert env["env_vars"]["WORKBENCH_STORE"] == str(p.store.resolve())
    assert env["env_vars"]["WORKBENCH_RUNNER"] == "ray"
    assert kwargs["submission_id"] == "wb-train-1"
    assert kwargs["entrypoint_num_cpus"] == 2
    assert kwargs["entrypoint_memory"] == 512 * 2**20
    assert kwargs["entrypoint_num_gpus"] == 1


def test_a_shared_project_is_not_uploaded(tmp_path: Path) -> None:
    p = project(tmp_path, 'project = "shared"\n')
    kwargs = ray_submit.submission(p, spec(p))
    assert "working_dir" not in kwargs["runtime_env"]
    assert str(p.root) in shlex.split(kwargs["entrypoint"])


def test_an_upload_too_big_is_one_line(tmp_path: Path) -> None:
    p = project(tmp_path, "upload_max_mb = 0.001\n")
    with pytest.raises(ConfigError, match="over \\[ray\\] upload_max_mb"):
        ray_submit.submission(p, spec(p))


def test_handles_and_fits() -> None:
    handle = ray_submit.handle_of("wb-train-1", "http://h:8265")
    assert ray_submit.parse_handle(handle) == ("wb-train-1", "http://h:8265")
    nodes = {"a": {"CPU": [0.0, 2.0], "memory": [0.0, 1e9]}, "b": {"CPU": [0.0, 1.0]}}
    assert ray_submit.fits({"entrypoint_num_cpus": 2}, nodes)
    assert not ray_submit.fits({"entrypoint_num_gpus": 1}, nodes)
    assert not ray_submit.fits({"entrypoint_num_cpus": 3}, nodes)


def test_without_ray_the_runner_says_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    p = project(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.job_submission", None)
    assert not RayRunner().available()
    code, _, err = run_cli(capsys, "--project", str(p.root), "train", "--runner", "ray")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "pip install 'workbench-mlops[ray]'" in line
