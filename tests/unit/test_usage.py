"""What a run used (workbench.training.usage), how the screens read it (loaders.system_usage),
and a sweep's search space (workbench.training.search_space): pure functions, real values."""

from __future__ import annotations

import pytest
from workbench_tui.loaders import key_metrics, system_usage

from workbench.errors import UsageError
from workbench.training import usage
from workbench.training.search_space import (
    Dim,
    SweepSpec,
    command_line,
    corner_params,
    parse_params,
)


def test_gpu_seconds_sums_utilisation_over_samples() -> None:
    history = {
        "system/gpu_0_utilization_percentage": [50.0, 100.0, 0.0],
        "system/gpu_1_utilization_percentage": [25.0],
        "system/gpu_0_memory_usage_megabytes": [9000.0],  # not utilisation: ignored
    }
    # (0.5 + 1 + 0 + 0.25) GPU x 2 s per sample
    assert usage.gpu_seconds(history, wall_s=99, step_s=2.0, gpus=2) == pytest.approx(3.5)
    # with a node id in the key (MLflow's MLFLOW_SYSTEM_METRICS_NODE_ID)
    assert usage.gpu_seconds(
        {"system/node_0/gpu_0_utilization_percentage": [100.0]}, 0, 1.0, 0
    ) == pytest.approx(1.0)


def test_gpu_seconds_without_samples_counts_the_gpus_given() -> None:
    assert usage.gpu_seconds({}, wall_s=10.0, step_s=1.0, gpus=2) == 20.0
    assert usage.gpu_seconds({"system/cpu_utilization_percentage": [90.0]}, 10.0, 1.0, 0) == 0.0


@pytest.mark.parametrize(
    ("env", "gpus"),
    [
        ({}, 0),
        ({"CUDA_VISIBLE_DEVICES": ""}, 0),
        ({"CUDA_VISIBLE_DEVICES": "0,1"}, 2),
        ({"NVIDIA_VISIBLE_DEVICES": "GPU-3f2a"}, 1),
        ({"NVIDIA_VISIBLE_DEVICES": "all"}, 1),
        ({"NVIDIA_VISIBLE_DEVICES": "void"}, 0),
    ],
)
def test_allocated_gpus(env: dict[str, str], gpus: int) -> None:
    assert usage.allocated_gpus(env) == gpus


def test_sampling_is_every_second_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(usage.SAMPLING_ENV, raising=False)
    monkeypatch.delenv(usage.SAMPLES_ENV, raising=False)
    usage.configure_sampling()
    assert usage.sample_seconds() == usage.SAMPLING_INTERVAL_S == 1.0
    monkeypatch.setenv(usage.SAMPLING_ENV, "5")
    monkeypatch.setenv(usage.SAMPLES_ENV, "2")
    usage.configure_sampling()
    assert usage.sample_seconds() == 10.0


def test_the_screens_read_system_metrics() -> None:
    metrics = {
        "valid_auc": 0.9,
        "system/cpu_utilization_percentage": 45.2,
        "system/system_memory_usage_megabytes": 1630.0,
        "system/system_memory_usage_percentage": 6.4,
        "system/gpu_0_utilization_percentage": 80.0,
        "system/gpu_0_memory_usage_megabytes": 12300.0,
        "gpu_seconds": 12.46,
    }
    found = system_usage("r1", metrics)
    assert found is not None
    assert found.describe() == "cpu 45% · mem 1.6 GB (6%) · gpu0 80% 12.3 GB · 12.5 GPU-s"
    assert system_usage("r2", {"valid_auc": 0.9}) is None
    # system metrics are the detail's, not runs-table columns
    cols = ["m.valid_auc", "m.system/cpu_utilization_percentage", "m.gpu_seconds"]
    assert key_metrics(cols, "auc") == ["m.valid_auc", "m.gpu_seconds"]


def test_search_space_kinds() -> None:
    space, fixed = parse_params(
        [
            "num_leaves=16..128",
            "learning_rate=0.01..0.3",
            "lr2=1e-3..1e-1..log",
            "boosting=gbdt,dart",
            "min_data_in_leaf=5,20",
            "num_iterations=50",
        ]
    )
    assert space["num_leaves"] == Dim("int", 16, 128)
    assert space["learning_rate"] == Dim("float", 0.01, 0.3)
    assert space["lr2"] == Dim("float", 0.001, 0.1, log=True)
    assert space["boosting"].choices == ("gbdt", "dart")
    assert space["min_data_in_leaf"].choices == (5, 20)
    assert fixed == {"num_iterations": 50}
    spec = SweepSpec(4, space, fixed, "sweep x", 3)
    assert SweepSpec.from_json(spec.to_json()) == spec
    corners = corner_params({"a": Dim("int", 1, 9), "b": Dim("choice", choices=(1, 2, 3))}, {})
    assert corners == [{"a": 1, "b": 1}, {"a": 9, "b": 2}, {"a": 9, "b": 3}]
    assert command_line({"boosting": "dart", "n": 3}) == "--param boosting=dart --param n=3"


@pytest.mark.parametrize(
    "pair", ["x=3..1", "x=1..2..3", "x=a..2", "x=0..1..log", "x=a,,b", "x=a,a", "=1", "x=", "1x=2"]
)
def test_a_bad_search_param_is_one_usage_error(pair: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_params([pair])
    assert "\n" not in str(info.value) and str(info.value).startswith("--param ")
