"""Training-serving skew: what the server received against what training saw.

- Distribution skew (`distribution`): the features logged in a window of the prediction log,
  binned on the served version's reference profile (`drift_profile.json`, the training rows),
  compared per feature as TFDV does: the L-infinity distance of the category frequencies for
  a categorical feature (the largest difference of one category's share), the Jensen-Shannon
  divergence (base 2, in [0, 1]) of the decile bins for a numeric one. It alerts past
  `[monitoring] skew_linf` (0.1) / `skew_js` (0.05). TFDV's examples use 0.01, which a window
  of a few hundred rows crosses on sampling noise alone (a category's share moves by ~0.03 at
  400 rows; JS of 10 bins averages ~0.004 at 400 rows, ~0.016 at `[drift] min_rows` 100);
  half the rows of a feature in another unit give ~0.18, all of them ~0.76.
- Feature skew (`feature_skew`): the features logged at serving joined, on an entity key the
  request carried (its `passthrough` JSON: `[data] id_column` or `[serving] passthrough`), with
  the offline features of the same entity (a data file, e.g. the next training's), and when
  both sides have `[data] timestamp`, with the newest offline row at or before the serving
  time (an ASOF join). Per feature: the share of joined rows whose values differ
  (numeric: relative difference over `tolerance`; otherwise: not equal; a null on one side
  only differs) and up to 3 examples. The sides are read by `skew_sources.py` and joined by
  `skew_join.py`, a partitioned hash join spilled to disk: memory stays the same whatever
  the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import DataError, UsageError
from workbench.project import Project
from workbench.store.parquet_log import utcnow

if TYPE_CHECKING:
    from workbench.drift.counter import Counter
    from workbench.drift.profile import ReferenceProfile
    from workbench.monitoring.skew_join import Progress
    from workbench.store.db import Db


@dataclass
class FeatureSkew:
    feature: str
    kind: str  # numeric | categorical
    joined: int
    mismatches: int
    share: float
    alert: bool
    examples: list[dict[str, Any]] = field(default_factory=list)


def _window(project: Project, window: str | None) -> tuple[str, Any]:
    from workbench.monitoring.checks import parse_window

    text = window or project.config.monitoring.window
    return text, utcnow() - parse_window(text)


def _version(project: Project, version: int | None) -> int:
    from workbench.serving import deployments

    if version is None:
        version = deployments.production_version(project)
        if version is None:
            name = project.config.model_name
            raise UsageError(f"model {name!r} has no production version to compare with")
    return version


# -- distribution skew -----------------------------------------------------------------------


def distribution(
    project: Project, version: int | None = None, window: str | None = None, db: Db | None = None
) -> dict[str, Any]:
    """The served features of `window` (default `[monitoring] window`) against the training
    profile of `version` (default: production's): per feature its measure, value, alert."""
    from workbench.drift.counter import Counter
    from workbench.monitoring.checks import load_profile, prediction_batches
    from workbench.store.db import Db as DbClass

    cfg = project.config
    version = _version(project, version)
    text, since = _window(project, window)
    profile = load_profile(project, version)
    counter = Counter(profile)
    with DbClass.borrow(db, project.logs_root) as use:  # streamed: memory is one batch
        for batch, _ in prediction_batches(use, cfg.model_name, version, profile, since, None):
            counter.update(batch)
    enough = counter.rows >= cfg.drift.min_rows
    rows = measures(profile, counter, enough, cfg.monitoring.skew_js, cfg.monitoring.skew_linf)
    return {"version": version, "window": text, "rows": counter.rows, "features": rows}


def measures(
    profile: ReferenceProfile, counter: Counter, enough: bool, skew_js: float, skew_linf: float
) -> list[dict[str, Any]]:
    """Per feature of `counter` (the served rows, counted on `profile`'s bins): its measure
    (js | linf), value (None without `enough` rows), threshold and alert."""
    import numpy as np

    from workbench.drift.counter import NumericCounts
    from workbench.drift.profile import OTHER
    from workbench.drift.stats import js_distance

    rows: list[dict[str, Any]] = []
    for name, state in counter.states.items():
        fp = profile.features[name]
        if isinstance(state, NumericCounts):
            measure, threshold = "js", skew_js
            value = js_distance(fp.decile_counts, state.decile_counts) ** 2 if enough else None
        else:
            measure, threshold = "linf", skew_linf
            ref_of = dict(zip(fp.categories, fp.category_counts, strict=False))
            ref = np.array([ref_of.get(c, 0) for c in state.listed] + [ref_of.get(OTHER, 0)])
            cur = state.counts
            value = None
            if enough and ref.sum() > 0 and cur.sum() > 0:
                value = float(np.abs(ref / ref.sum() - cur / cur.sum()).max())
        if value is not None and value != value:  # NaN: nothing valid on one side
            value = None
        rows.append(
            {
                "feature": name,
                "kind": fp.kind,
                "measure": measure,
                "value": value,
                "threshold": threshold,
                "alert": value is not None and value > threshold,
                "n_ref": fp.valid,
                "n_cur": state.valid,
            }
        )
    return rows


# -- feature skew ----------------------------------------------------------------------------


def feature_skew(
    project: Project,
    data: Path | str,
    key: str,
    window: str | None = None,
    tolerance: float = 1e-6,
    max_mismatch: float = 0.01,
    version: int | None = None,
    db: Db | None = None,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """The report of `workbench skew`: feature skew on `key` against the file `data`, and
    the distribution skew of the same window. Raises UsageError when `key` is not in the file
    or no served row carried it, DataError when no served row joined an offline row."""
    from workbench.errors import WorkbenchError
    from workbench.monitoring import skew_join, skew_sources
    from workbench.store.db import Db as DbClass

    cfg = project.config
    text, since = _window(project, window)
    with DbClass.borrow(db, project.logs_root) as use:
        off = skew_sources.offline(project, data, key, use)
        features = skew_sources.features(project, off, key)
        missing = [f for f in cfg.features if f not in off.types]
        if not features:
            raise UsageError(f"--data {data}: holds none of the model's features")
        src, asof = skew_sources.sources(project, off, key, features, since, version, use)
        tally = skew_join.run(use, src, features, asof, tolerance, on_progress)
        try:
            dist: dict[str, Any] | None = distribution(project, version, text, use)
        except WorkbenchError as exc:  # no production version, no profile: said, not fatal
            dist = {"error": str(exc), "features": []}
    served, joined = tally.served, tally.joined
    if not served:
        raise UsageError(
            f"--key {key}: no prediction of the last {text} carried it (send it with the "
            "request: [data] id_column or [serving] passthrough)"
        )
    if not joined:
        raise DataError(
            f"--key {key}: no served row joined an offline row ({served:,} served rows in the "
            f"last {text}, {off.rows:,} rows in {data})"
        )
    skews = []
    for f, n, examples in zip(features, tally.mismatches, tally.examples, strict=True):
        share = n / joined
        skews.append(FeatureSkew(f.name, f.kind, joined, n, share, share > max_mismatch, examples))
    alerts = [
        f"{f.feature}: {f.share:.1%} of {f.joined:,} joined rows differ (> {max_mismatch:.1%})"
        for f in skews
        if f.alert
    ]
    for d in dist["features"] if dist else []:
        if d["alert"]:
            alerts.append(
                f"{d['feature']}: distribution skew {d['measure']} {d['value']:.3f} "
                f"> {d['threshold']:g}"
            )
    return {
        "model": cfg.model_name,
        "data": str(data),
        "key": key,
        "window": text,
        "asof": cfg.data.timestamp if asof else None,
        "tolerance": tolerance,
        "max_mismatch": max_mismatch,
        "served": served,
        "offline": off.rows,
        "joined": joined,
        "features": [f.__dict__ for f in skews],
        "not_in_data": missing,
        "distribution": dist,
        "alerts": alerts,
    }
