"""System metrics of training runs, end to end: a real training job through the local runner
logs MLflow's `system/...` samples (every second) and its `gpu_seconds`; the Jobs screen's
detail and the Experiments screen's run detail show them (Pilot).

There is no GPU on the machines these tests were written on. Only the GPU needs a stand-in:
the job runs with a fake `pynvml` (nvidia-ml-py's module, which MLflow's GPU monitor reads)
first on its PYTHONPATH, a device at 50% utilisation with 2,000 of 8,000 MB used. CPU and
memory are really sampled."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from workbench_tui.app import WorkbenchApp
from workbench_tui.experiments import ExperimentsScreen
from workbench_tui.jobs import JobsScreen

from tests.helpers import mlflow_client
from workbench import plugins
from workbench.demo import samples
from workbench.jobs import control
from workbench.project import Project

pytestmark = pytest.mark.tui

FAKE_NVML = '''
"""A stand-in for nvidia-ml-py: one GPU at 50% with 2,000 of 8,000 MB used."""
class NVMLError(Exception):
    pass
class _Memory:
    used, total = 2_000_000_000, 8_000_000_000
class _Rates:
    gpu, memory = 50, 10
def nvmlInit(): pass
def nvmlShutdown(): pass
def nvmlDeviceGetCount(): return 1
def nvmlDeviceGetHandleByIndex(i): return i
def nvmlDeviceGetMemoryInfo(handle): return _Memory()
def nvmlDeviceGetUtilizationRates(handle): return _Rates()
def nvmlDeviceGetPowerUsage(handle): return 100_000
def nvmlDeviceGetEnforcedPowerLimit(handle): return 300_000
'''


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, control.JobOutcome]:
    """One finished training job on a tiny project, run with the fake NVML."""
    base = tmp_path_factory.mktemp("sysmetrics")
    fake = base / "fake_nvml"
    fake.mkdir()
    (fake / "pynvml.py").write_text(FAKE_NVML)
    project = Project.load(samples.init(base / "proj", "fraud_detection", rows=2_000))
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "CUDA_VISIBLE_DEVICES")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(fake), saved["PYTHONPATH"]]))
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    try:
        runner = plugins.load("runner", "local")
        outcome = control.run_training(project, runner, params={"num_iterations": 200})
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert outcome.ok, outcome.reason
    return project, outcome


def test_a_training_run_logs_system_metrics_and_gpu_seconds(
    trained: tuple[Project, control.JobOutcome],
) -> None:
    project, outcome = trained
    client = mlflow_client(project)
    assert outcome.run_id is not None
    run = client.get_run(outcome.run_id)
    assert "system/cpu_utilization_percentage" in run.data.metrics
    assert "system/system_memory_usage_megabytes" in run.data.metrics
    samples_ = client.get_metric_history(outcome.run_id, "system/gpu_0_utilization_percentage")
    assert samples_ and {m.value for m in samples_} == {50.0}
    # 50% of one GPU for each one-second sample
    assert run.data.metrics["gpu_seconds"] == pytest.approx(0.5 * len(samples_))
    assert outcome.train_result is not None
    assert outcome.train_result.metrics["gpu_seconds"] == run.data.metrics["gpu_seconds"]


async def _poll(pilot: Pilot[Any], condition: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.2)


async def test_the_details_show_the_runs_system_metrics(
    trained: tuple[Project, control.JobOutcome],
) -> None:
    project, outcome = trained
    app = WorkbenchApp(project)
    async with app.run_test(size=(120, 32)) as pilot:
        await pilot.press("4")
        jobs = app.screen
        assert isinstance(jobs, JobsScreen)
        await _poll(pilot, lambda: jobs.selected_id == outcome.job_id, 30, "the job selected")
        usage = jobs.detail.usage
        await _poll(pilot, lambda: usage.display, 30, "the job's system metrics")
        shown = str(usage.content)
        assert shown.startswith("system: cpu ") and "mem " in shown, shown
        assert "gpu0 50% 2.0 GB" in shown and "GPU-s" in shown, shown

        await pilot.press("2")
        experiments = app.screen
        assert isinstance(experiments, ExperimentsScreen)
        await _poll(
            pilot,
            lambda: "system" in str(experiments.params.content),
            30,
            "the run detail's system metrics",
        )
        detail = str(experiments.params.content)
        assert "cpu " in detail and "gpu0 50%" in detail, detail
