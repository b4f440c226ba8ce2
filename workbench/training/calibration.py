"""The calibration map of a binary model's probabilities, fitted on the holdout at training and
stored beside the model as `calibration.json` (next to `drift_profile.json`).

Performance estimation before labels arrive (CBPE, `workbench.monitoring.estimate`) needs
probabilities that mean what they say: of the rows scored 0.2, a fifth are positive. A model's
raw scores rarely are; the holdout's labels say how to map them. The map is stored as plain
numbers so the reader needs no scikit-learn:

- `isotonic` (scikit-learn's IsotonicRegression, as NannyML does): the fitted thresholds
  `x` (raw probability) and `y` (calibrated), applied by linear interpolation, clipped at the
  ends: exactly what `IsotonicRegression(out_of_bounds="clip").predict` does;
- `platt` when the holdout has fewer than MIN_ISOTONIC rows of its rarer class (isotonic steps
  over a few dozen positives are noise): a logistic map of the raw log-odds,
  `sigmoid(a * logit(p) + b)`, two numbers fitted by maximum likelihood.

A version registered before this file existed (or by plain MLflow) gets it on first use,
fitted on the holdout of the project's data as it is now (`load`); when that cannot be done
(not binary, one class in the holdout, the model fails on the rows) `load` says why.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.project import Project
from workbench.tasks import ModelTask

CALIBRATION_FILE = "calibration.json"
#: The rarer class's holdout rows isotonic regression needs; fewer: Platt scaling.
MIN_ISOTONIC = 200
_EPS = 1e-6


class NotCalibrated(Exception):
    """No calibration map can be had for a version (the message says why, in one line)."""


@dataclass
class Calibration:
    kind: str  # "isotonic" | "platt"
    x: list[float] = field(default_factory=list)  # isotonic: raw probability thresholds
    y: list[float] = field(default_factory=list)  # isotonic: calibrated values at x
    a: float = 1.0  # platt: slope on the raw log-odds
    b: float = 0.0  # platt: intercept
    n: int = 0  # holdout rows it was fitted on
    positives: int = 0
    source: str = ""

    def apply(self, proba: Any) -> np.ndarray:
        """The calibrated probabilities of raw probabilities `proba` (vectorised)."""
        p = np.asarray(proba, dtype=np.float64)
        if self.kind == "isotonic":
            mapped: np.ndarray = np.interp(p, np.asarray(self.x), np.asarray(self.y))
            return mapped
        clipped = np.clip(p, _EPS, 1 - _EPS)
        return _sigmoid(self.a * np.log(clipped / (1 - clipped)) + self.b)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def save(self, path: Path) -> None:
        """Atomically: a reader never sees half a file."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as fh:
            json.dump(self.to_dict(), fh, indent=1)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Calibration:
        return cls.from_dict(json.loads(Path(path).read_text()))


def fit(labels: Any, proba: Any, source: str = "") -> Calibration:
    """The calibration map of raw probabilities `proba` against 0/1 `labels`. Raises
    NotCalibrated when the rows hold one class only."""
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    p = np.asarray(proba, dtype=np.float64).reshape(-1)
    keep = np.isfinite(y) & np.isfinite(p)
    y, p = y[keep], np.clip(p[keep], 0.0, 1.0)
    positives = int((y == 1).sum())
    rarer = min(positives, int(y.size) - positives)
    if rarer == 0:
        raise NotCalibrated("the holdout holds one class only: no calibration can be fitted")
    if rarer >= MIN_ISOTONIC:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        xs, ys = _strictly_increasing(iso.X_thresholds_, iso.y_thresholds_)
        return Calibration("isotonic", xs, ys, n=int(y.size), positives=positives, source=source)
    a, b = _platt(y, p)
    return Calibration("platt", a=a, b=b, n=int(y.size), positives=positives, source=source)


def _strictly_increasing(x: Any, y: Any) -> tuple[list[float], list[float]]:
    """Thresholds np.interp can use: equal x values merged (their mean y)."""
    xs, inverse = np.unique(np.asarray(x, dtype=np.float64), return_inverse=True)
    ys = np.bincount(inverse, weights=np.asarray(y, dtype=np.float64)) / np.bincount(inverse)
    return [float(v) for v in xs], [float(v) for v in ys]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow."""
    out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * z))
    return out


def _platt(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(a, b) of sigmoid(a * logit(p) + b), by damped Newton steps on the log-likelihood
    (each step halved until the loss falls), with Platt's smoothed targets (no infinite
    weights on a separable holdout)."""
    clipped = np.clip(p, _EPS, 1 - _EPS)
    z = np.log(clipped / (1 - clipped))
    n_pos, n_neg = float((y == 1).sum()), float((y == 0).sum())
    t = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    design = np.column_stack((z, np.ones_like(z)))

    def loss(w: np.ndarray) -> float:
        margin = design @ w  # -log-likelihood, stable: log(1 + e^m) - t * m
        return float((np.logaddexp(0.0, margin) - t * margin).sum())

    w = np.array([1.0, 0.0])  # the identity: a calibrated model stays as it is
    current = loss(w)
    for _ in range(100):
        q = _sigmoid(design @ w)
        grad = design.T @ (q - t)
        hess = design.T @ (design * (q * (1 - q))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6 and loss(w - scale * step) > current:
            scale /= 2
        w = w - scale * step
        previous, current = current, loss(w)
        if previous - current < 1e-10 * max(1.0, abs(current)):
            break
    return float(w[0]), float(w[1])


def write(model_dir: Path, task: ModelTask, labels: Any, output: Any, snapshot: str) -> None:
    """At training: fit the map of a binary model's holdout probabilities (`output`, against
    the holdout's class indices `labels`) and store it in the model folder. Other tasks (and
    a holdout of one class) store nothing: CBPE is binary."""
    if task.type != "binary":
        return
    try:
        calibration = fit(labels, output, f"holdout of snapshot {snapshot}")
    except NotCalibrated:
        return
    calibration.save(Path(model_dir) / CALIBRATION_FILE)


def load(project: Project, model_dir: Path, version: int) -> Calibration:
    """The calibration of the binary model in `model_dir`: its `calibration.json`, or, for a
    version registered without one, fitted now on the project's holdout and written beside
    the model (kept in memory when the folder is read-only). Raises NotCalibrated."""
    path = Path(model_dir) / CALIBRATION_FILE
    if path.is_file():
        try:
            return Calibration.load(path)
        except (OSError, ValueError, TypeError) as exc:
            raise NotCalibrated(f"{path} cannot be read: {exc}".splitlines()[0]) from None
    calibration = _from_holdout(project, Path(model_dir), version)
    with contextlib.suppress(OSError):  # a read-only model folder: fitted again next time
        calibration.save(path)
    return calibration


def _from_holdout(project: Project, model_dir: Path, version: int) -> Calibration:
    from workbench.data import snapshot as data_mod
    from workbench.data import target as target_mod
    from workbench.errors import WorkbenchError
    from workbench.training.reference import complete
    from workbench.training.scoring import load_scorer

    cfg = project.config
    what = f"version {version} has no {CALIBRATION_FILE} and fitting one on the holdout failed"
    try:
        task = complete(project, model_dir, version, profile=False)
        if task.type != "binary":
            raise NotCalibrated(f"version {version} is a {task.type} model: CBPE is binary")
        frame = data_mod.load_frame(project.data_path, cfg.schema_)
        parts = data_mod.split(target_mod.encode(frame, cfg, task.classes), cfg)
        output = load_scorer(model_dir, task)(data_mod.to_model_frame(parts.holdout, cfg))
    except NotCalibrated:
        raise
    except (WorkbenchError, ValueError) as exc:
        raise NotCalibrated(f"{what}: {exc}".splitlines()[0]) from None
    except Exception as exc:  # the model itself failed on the project's rows
        raise NotCalibrated(f"{what} ({type(exc).__name__})") from None
    digest = data_mod.digest(project.data_path)
    labels = parts.holdout[cfg.data.target].to_numpy()
    return fit(labels, output, f"holdout of snapshot {digest} (fitted on first use)")
