"""What a training run used: MLflow's system metrics, sampled often enough for short jobs, and
the run's GPU-seconds.

MLflow samples CPU, memory, disk, network and (through nvidia-ml-py, where a GPU answers)
each GPU's utilisation and memory as `system/...` metrics while a run started with
`log_system_metrics=True` is active. Its default interval is 10 s, so a 5 s job would log
nothing: training jobs sample every `SAMPLING_INTERVAL_S` unless the user set
`MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL` themselves.

`gpu_seconds` (a metric on every training run and sweep trial) is

- with GPU utilisation samples: the sum over samples and GPUs of utilisation / 100 x the
  time a sample covers (the interval x MLflow's samples per logged step). NVML's utilisation
  is the device's, so on a GPU shared with other work it counts their use too;
- without them, but with GPUs given to the job (`CUDA_VISIBLE_DEVICES` or
  `NVIDIA_VISIBLE_DEVICES`, as Docker's GPU requests set it): those GPUs x wall seconds;
- else 0.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

#: Seconds between system-metric samples in training jobs.
SAMPLING_INTERVAL_S = 1.0
SAMPLING_ENV = "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"
SAMPLES_ENV = "MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING"
GPU_UTILISATION = re.compile(r"^system/(?:.+/)?gpu_\d+_utilization_percentage$")


def configure_sampling() -> None:
    """Sample system metrics every SAMPLING_INTERVAL_S (unless the user chose an interval)."""
    if not os.environ.get(SAMPLING_ENV):
        os.environ[SAMPLING_ENV] = str(SAMPLING_INTERVAL_S)


def sample_seconds() -> float:
    """The time one logged system-metric step covers: the interval x samples per step."""

    def number(name: str, default: float) -> float:
        try:
            value = float(os.environ.get(name) or default)
        except ValueError:
            return default
        return value if value > 0 else default

    return number(SAMPLING_ENV, 10.0) * number(SAMPLES_ENV, 1.0)


def allocated_gpus(env: dict[str, str] | None = None) -> int:
    """GPUs the job was given, from CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES (0 when
    neither names any; "all" counts as one, the least it means)."""
    env = dict(os.environ) if env is None else env
    for name in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"):
        value = env.get(name)
        if value is None:
            continue
        value = value.strip()
        if value in ("", "none", "void", "-1", "NoDevFiles"):
            return 0
        if value == "all":
            return 1
        return len([v for v in value.split(",") if v.strip()])
    return 0


def gpu_seconds(history: dict[str, list[float]], wall_s: float, step_s: float, gpus: int) -> float:
    """GPU-seconds from the utilisation samples of each GPU (`history`: metric key -> values
    in percent), else `gpus` x `wall_s` (see the module docstring)."""
    samples = [v for key, values in history.items() if GPU_UTILISATION.match(key) for v in values]
    if samples:
        return sum(max(0.0, v) / 100.0 * step_s for v in samples)
    return float(gpus) * max(0.0, wall_s)


def log_gpu_seconds(client: Any, run_id: str, wall_s: float) -> float | None:
    """Compute the run's `gpu_seconds` from the system metrics MLflow logged (call it after
    the run ended: its monitor flushes then) and log it; returns it. A store that refuses
    costs the metric, never the run (None, and a line on stderr)."""
    try:
        run = client.get_run(run_id)
        keys = [k for k in run.data.metrics if GPU_UTILISATION.match(k)]
        history = {k: [m.value for m in client.get_metric_history(run_id, k)] for k in keys}
        value = gpu_seconds(history, wall_s, sample_seconds(), allocated_gpus())
        client.log_metric(run_id, "gpu_seconds", value)
    except Exception as exc:  # the store (MlflowException, sqlite3, OSError): say it, go on
        print(f"warning: gpu_seconds not logged: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    return value
