"""Segments of the traffic and the holdout's fairness, stored with the version.

A *segment feature* (`[monitoring] segments`) splits rows into groups: a categorical, string
or boolean value is its own group; a numeric one falls in one of `[monitoring] buckets`
quantile buckets of the training rows ("< 10", "[10, 25)", ">= 40"); an integer feature of
few values (a 0/1 flag) is *discrete*: each value its own group ("0", "1"). A missing value is
the group "(missing)". The training job works the bucket edges out once and stores them in
`fairness.json` beside the model (with `drift_profile.json`), with the holdout's per-group
metrics and fairness measures (training.fairness_stats); the server labels every logged
prediction with the same edges (`Segmenter`: a dict lookup or a bisect per feature). A version
trained before fairness.json existed gets its edges from its drift profile's percentiles.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.tasks import ModelTask

FAIRNESS_FILE = "fairness.json"
FORMAT = "workbench-fairness"
MISSING = "(missing)"
#: An integer feature with at most this many values is discrete (a group per value).
DISCRETE_MAX = 10


def _fmt(x: float) -> str:
    return f"{x:.4g}"


@dataclass(frozen=True)
class SegmentSpec:
    kind: str  # "categorical" | "discrete" | "numeric"
    edges: tuple[float, ...] = ()

    def names(self) -> list[str]:
        """The labels of a numeric feature's buckets, in order."""
        e = self.edges
        if not e:
            return ["all"]
        inner = [f"[{_fmt(a)}, {_fmt(b)})" for a, b in itertools.pairwise(e)]
        return [f"< {_fmt(e[0])}", *inner, f">= {_fmt(e[-1])}"]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "edges": list(self.edges)}


def spec_of_values(values: np.ndarray, buckets: int) -> SegmentSpec:
    """A numeric column's spec: discrete (few integer values) or quantile edges."""
    x = values[np.isfinite(values)]
    if x.size == 0:
        return SegmentSpec("numeric")
    distinct = np.unique(x)
    if distinct.size <= DISCRETE_MAX and bool(np.all(distinct == np.round(distinct))):
        return SegmentSpec("discrete")
    edges = np.unique(np.quantile(x, np.arange(1, buckets) / buckets))
    return SegmentSpec("numeric", tuple(float(e) for e in edges))


def spec_of_profile(fp: Any, buckets: int) -> SegmentSpec:
    """The spec from a drift profile's feature (its percentiles), for versions without
    fairness.json."""
    if fp.kind != "numeric":
        return SegmentSpec("categorical")
    fine = np.asarray(fp.fine_edges, dtype=float)
    counts = np.asarray(fp.fine_counts, dtype=float)
    if fine.size == 0 or counts.sum() == 0:
        return SegmentSpec("numeric")
    if fine.size <= DISCRETE_MAX and bool(np.all(fine == np.round(fine))):
        lo, hi = fp.min, fp.max
        if lo is not None and hi is not None and float(lo).is_integer() and hi - lo <= 10:
            return SegmentSpec("discrete")
    share = np.cumsum(counts)[:-1] / counts.sum()  # the share below each fine edge
    want = np.arange(1, buckets) / buckets
    picked = fine[np.clip(np.searchsorted(share, want - 1e-9), 0, fine.size - 1)]
    return SegmentSpec("numeric", tuple(float(e) for e in np.unique(picked)))


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Segmenter:
    """Labels records with their groups; built once per served version."""

    def __init__(self, specs: dict[str, SegmentSpec]) -> None:
        self.specs = specs
        self._plan = [
            (name, spec.kind, list(spec.edges), spec.names()) for name, spec in specs.items()
        ]

    def label(self, record: Any) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, kind, edges, names in self._plan:
            value = record.get(name)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                out[name] = MISSING
            elif kind == "categorical" or isinstance(value, str | bool):
                out[name] = _plain(value)
            elif kind == "discrete":
                out[name] = str(int(value)) if float(value).is_integer() else _plain(value)
            else:
                out[name] = names[bisect_right(edges, value)]
        return out

    def labels(self, records: Any) -> list[dict[str, str] | None]:
        """Each record's groups; None for a record that is not a mapping (a failed request's
        raw body)."""
        label = self.label
        return [label(r) if isinstance(r, dict) else None for r in records]

    def column(self, name: str, values: Any) -> np.ndarray:
        """The groups of a whole column (a polars Series), vectorised: the holdout's."""
        spec = self.specs[name]
        nulls = values.is_null().to_numpy()
        if spec.kind == "numeric" and values.dtype.is_numeric():
            x = values.cast(float).fill_null(float("nan")).to_numpy()
            names = np.array(spec.names(), dtype=object)
            out = names[np.searchsorted(np.asarray(spec.edges), x, side="right")]
            return np.where(nulls | np.isnan(x), MISSING, out)
        if spec.kind == "discrete" and values.dtype.is_numeric():
            x = values.cast(float).fill_null(0).to_numpy()
            text = np.array([str(int(v)) if v.is_integer() else str(v) for v in x], dtype=object)
            return np.where(nulls, MISSING, text)
        plain = np.array([_plain(v) for v in values.to_list()], dtype=object)
        return np.where(nulls, MISSING, plain)


def specs_for(project: Project, train: Any) -> dict[str, SegmentSpec]:
    """The spec of each `[monitoring] segments` feature from the training rows (polars)."""
    from workbench.data.snapshot import categorical_features

    mon = project.config.monitoring
    cats = set(categorical_features(project.config))
    out: dict[str, SegmentSpec] = {}
    for name in mon.segments:
        if name not in train.columns:
            continue
        col = train[name]
        if name in cats or not col.dtype.is_numeric():
            out[name] = SegmentSpec("categorical")
        else:
            values = col.cast(float).fill_null(float("nan")).to_numpy()
            out[name] = spec_of_values(values, mon.buckets)
    return out


def write(
    project: Project, parts: Any, task: ModelTask, output: Any, model_dir: Path, scored: Any
) -> None:
    """The training job's one call: `fairness.json` in `model_dir` (nothing without
    `[monitoring] segments`): the segment specs, and on the scored rows (the holdout; a sweep
    trial's validation split), whose predictions are `output`, the per-group metrics and the
    fairness measures of the sensitive features."""
    mon = project.config.monitoring
    if not mon.segments:
        return
    try:
        specs = specs_for(project, parts.train)
        payload = holdout(project, scored, task, output, specs)
    except Exception as exc:  # monitoring's extra must not fail the training
        import sys

        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        print(f"warning: no {FAIRNESS_FILE} ({type(exc).__name__}: {line})", file=sys.stderr)
        return
    path = Path(model_dir) / FAIRNESS_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def holdout(
    project: Project, frame: Any, task: ModelTask, output: Any, specs: dict[str, SegmentSpec]
) -> dict[str, Any]:
    """fairness.json's content: specs, the holdout's groups and fairness measures."""
    from workbench.training import fairness_stats as fs
    from workbench.training.scoring import scalar_output

    cfg = project.config
    segmenter = Segmenter(specs)
    metric, note = fs.cell_metric(task.type, cfg.metric)
    out = np.asarray(scalar_output(task, output), dtype=float)
    label = frame[cfg.data.target].cast(float).fill_null(float("nan")).to_numpy()
    names: list[tuple[str, str]] = []
    group_parts, out_parts, label_parts = [], [], []
    for name in specs:
        col = segmenter.column(name, frame[name])
        values, inverse = np.unique(col.astype(str), return_inverse=True)
        group_parts.append(inverse + len(names))
        names += [(name, str(v)) for v in values]
        out_parts.append(out)
        label_parts.append(label)
    summary: dict[str, Any] = {"groups": [], "suppressed": 0, "fairness": [], "alerts": []}
    if names:
        cells = fs.cells_from_arrays(
            task.type,
            task.threshold,
            max(len(task.classes), 2),
            np.concatenate(group_parts),
            len(names),
            np.concatenate(out_parts),
            np.concatenate(label_parts),
        )
        summary = fs.summarize(cells, names, metric, cfg.monitoring, "holdout")
    return {
        "format": FORMAT,
        "version": 1,
        "segments": {name: spec.to_dict() for name, spec in specs.items()},
        "task": task.type,
        "metric": metric,
        **({"note": note} if note else {}),
        "rows": int(frame.height),
        **summary,
    }


def load(model_dir: Path) -> dict[str, Any] | None:
    """The version's fairness.json, or None (trained before it, or without segments)."""
    try:
        data = json.loads((Path(model_dir) / FAIRNESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def segmenter_for(project: Project, model_dir: Path) -> Segmenter | None:
    """The server's segmenter for the version in `model_dir`: the specs of fairness.json,
    else worked out from the drift profile; None without `[monitoring] segments` (or when
    neither file helps: segments are then logged as null)."""
    mon = project.config.monitoring
    if not mon.segments:
        return None
    stored = (load(model_dir) or {}).get("segments", {})
    specs: dict[str, SegmentSpec] = {}
    profile: Any = None
    for name in mon.segments:
        entry = stored.get(name)
        if isinstance(entry, dict) and entry.get("kind"):
            specs[name] = SegmentSpec(str(entry["kind"]), tuple(entry.get("edges") or ()))
            continue
        if profile is None:
            from workbench.drift import PROFILE_FILE
            from workbench.drift.profile import ReferenceProfile

            try:
                profile = ReferenceProfile.load(Path(model_dir) / PROFILE_FILE)
            except Exception:  # no profile: categorical labels only
                profile = False
        fp = profile.features.get(name) if profile else None
        specs[name] = spec_of_profile(fp, mon.buckets) if fp else SegmentSpec("categorical")
    return Segmenter(specs)
