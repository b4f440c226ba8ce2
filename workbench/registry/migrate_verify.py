"""The check after `workbench store migrate`: what the source holds, counted and compared
with what the target holds for it, read back through MLflow's client.

Counts: runs, metric points, params, run tags, inputs (datasets and logged models), logged
models, registered models, versions, version tags, aliases, audit rows. Beyond the counts, each
run's metric history (every key, step, timestamp and value), the version numbers and the
alias assignments must be equal; a difference makes the row's `ok` false. The tags the
migration itself adds (`workbench.migrated_from`, the audit tags) are not counted.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from workbench.registry import migrate_source as src
from workbench.registry.migrate_registry import read_audit, target_versions
from workbench.registry.migrate_runs import MIGRATED_TAG, OWN_TAGS, Mapping

ROWS = (
    "runs",
    "metric points",
    "params",
    "run tags",
    "inputs",
    "logged models",
    "registered models",
    "versions",
    "version tags",
    "aliases",
    "audit rows",
)


@dataclass
class Side:
    counts: dict[str, int]
    histories: dict[str, list[tuple[str, int, int, str]]]  # source run id -> sorted points
    versions: dict[str, list[int]]  # source model name -> numbers
    aliases: dict[str, dict[str, int]]


def _points(points: list[tuple[str, float, int, int]]) -> list[tuple[str, int, int, str]]:
    return sorted(
        (k, step, ts, "nan" if math.isnan(v) else repr(float(v))) for k, v, ts, step in points
    )


def source_side(source: src.Source) -> Side:
    runs = source.runs
    counts = {
        "runs": len(runs),
        "metric points": sum(len(r.metrics) for r in runs),
        "params": sum(len(r.params) for r in runs),
        "run tags": sum(len(r.tags) for r in runs),
        "inputs": sum(len(r.datasets) + len(r.model_inputs) + len(r.model_outputs) for r in runs),
        "logged models": len(source.logged_models),
        "registered models": len(source.models),
        "versions": sum(len(m.versions) for m in source.models),
        "version tags": sum(len(v.tags) for m in source.models for v in m.versions),
        "aliases": sum(len(m.aliases) for m in source.models),
        "audit rows": sum(len(m.audit) for m in source.models),
    }
    return Side(
        counts=counts,
        histories={r.run_id: _points(r.metrics) for r in runs},
        versions={m.name: [v.version for v in m.versions] for m in source.models},
        aliases={m.name: dict(m.aliases) for m in source.models},
    )


def _run_side(client: Any, old: str, new: str) -> tuple[str, dict[str, int], list[Any]]:
    run = client.get_run(new)
    points: list[tuple[str, float, int, int]] = []
    for key in run.data.metrics:
        points += [(key, m.value, m.timestamp, m.step) for m in client.get_metric_history(new, key)]
    inputs = run.inputs
    n_inputs = len(inputs.dataset_inputs or []) + len(getattr(inputs, "model_inputs", None) or [])
    outputs = getattr(run, "outputs", None)
    n_inputs += len(getattr(outputs, "model_outputs", None) or [])
    counts = {
        "runs": 1 if run.data.tags.get(MIGRATED_TAG) == old else 0,
        "metric points": len(points),
        "params": len(run.data.params),
        "run tags": sum(1 for k in run.data.tags if k not in OWN_TAGS),
        "inputs": n_inputs,
    }
    return old, counts, _points(points)


def target_side(client: Any, source: src.Source, maps: Mapping) -> Side:
    counts = dict.fromkeys(ROWS, 0)
    histories: dict[str, list[tuple[str, int, int, str]]] = {}
    pairs = [(r.run_id, maps.runs[r.run_id]) for r in source.runs if r.run_id in maps.runs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for old, got, points in pool.map(lambda p: _run_side(client, *p), pairs):
            for key, n in got.items():
                counts[key] += n
            histories[old] = points
    for logged in source.logged_models:
        new = maps.logged_models.get(logged.model_id)
        if new and client.get_logged_model(new).tags.get(MIGRATED_TAG) == logged.model_id:
            counts["logged models"] += 1
    versions: dict[str, list[int]] = {}
    aliases: dict[str, dict[str, int]] = {}
    for model in source.models:
        name = maps.models.get(model.name)
        if name is None:
            continue
        found = client.get_registered_model(name)
        counts["registered models"] += 1
        have = target_versions(client, name)
        versions[model.name] = sorted(have)
        counts["versions"] += len(have)
        counts["version tags"] += sum(
            1 for mv in have.values() for k in mv.tags if k not in OWN_TAGS
        )
        aliases[model.name] = {a: int(v) for a, v in (found.aliases or {}).items()}
        counts["aliases"] += len(aliases[model.name])
        counts["audit rows"] += len(read_audit(client, name))
    return Side(counts, histories, versions, aliases)


def compare(source: Side, target: Side) -> list[dict[str, Any]]:
    """One row per count: source, target, ok (equal counts and, where it applies, equal
    histories, version numbers and alias assignments)."""
    histories_ok = all(target.histories.get(k) == v for k, v in source.histories.items())
    extra = {
        "metric points": histories_ok,
        "versions": source.versions == target.versions,
        "aliases": source.aliases == target.aliases,
    }
    return [
        {
            "what": what,
            "source": source.counts[what],
            "target": target.counts[what],
            "ok": source.counts[what] == target.counts[what] and extra.get(what, True),
        }
        for what in ROWS
    ]


def differences(rows: list[dict[str, Any]]) -> list[str]:
    return [r["what"] for r in rows if not r["ok"]]
