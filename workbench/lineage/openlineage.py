"""A lineage as OpenLineage RunEvents (spec 2-0-2), one JSON object a line.

For each training job: a START and a COMPLETE (FAIL when it failed) with the data snapshot as
input dataset (its schema facet) and the model version(s) its run registered as outputs. For
each serving job and deployment: a START (and COMPLETE when ended) with the model version as
input. Run ids are UUIDs derived with uuid5 from the job id (or MLflow run id), so the same
thing always gets the same id. Built as plain dicts: `openlineage-python` is not a dependency.

Marquez takes the file one event at a time:
    while read -r ev; do curl -sf -H 'Content-Type: application/json' \\
        -d "$ev" http://localhost:5000/api/v1/lineage; done < lineage.jsonl
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from workbench import __version__
from workbench.lineage.model import Lineage, Node

SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
PRODUCER = f"https://github.com/workbench-mlops/workbench/tree/{__version__}"
_FACET = (
    "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
)
_NS = uuid.uuid5(uuid.NAMESPACE_URL, "workbench:lineage")
REQUIRED = ("eventTime", "producer", "schemaURL", "run", "job")


def run_uuid(ident: str) -> str:
    """A stable UUID for a job id or MLflow run id."""
    return str(uuid.uuid5(_NS, ident))


def _time(ts: datetime | str | None) -> str:
    if isinstance(ts, str):
        return ts
    return (ts or datetime.now(UTC)).isoformat()


def _dataset_ref(node: Node, namespace: str) -> dict[str, Any]:
    d = node.details
    if node.kind == "dataset":
        fields = [{"name": c["name"], "type": c["type"]} for c in d.get("schema") or []]
        facets: dict[str, Any] = {}
        if fields:
            facets["schema"] = {"_producer": PRODUCER, "_schemaURL": _FACET, "fields": fields}
        name = d.get("path") or d.get("name") or d["digest"]
        return {
            "namespace": f"file://{namespace}",
            "name": f"{name}@{d['digest']}",
            "facets": facets,
        }
    return {"namespace": f"mlflow://{namespace}", "name": f"models:/{d['model']}/{d['version']}",
            "facets": {}}  # fmt: skip


def _event(
    kind: str, ts: Any, ident: str, job: str, ns: str, inputs: list[Any], outputs: list[Any]
) -> dict[str, Any]:
    return {
        "eventType": kind,
        "eventTime": _time(ts),
        "run": {"runId": run_uuid(ident), "facets": {}},
        "job": {"namespace": ns, "name": job, "facets": {}},
        "inputs": inputs,
        "outputs": outputs,
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }


def _near(lin: Lineage, key: str, kind: str, upstream: bool, hops: int = 2) -> list[Node]:
    """Nodes of `kind` within `hops` of `key` in one direction."""
    found, frontier = [], [key]
    for _ in range(hops):
        nxt = []
        for k in frontier:
            for n in lin.upstream(k) if upstream else lin.downstream(k):
                nxt.append(n.key)
                if n.kind == kind and n not in found:
                    found.append(n)
        frontier = nxt
    return found


def events(lin: Lineage, namespace: str) -> Iterator[dict[str, Any]]:
    """The RunEvents of `lin`, each START before its COMPLETE."""
    for node in lin.nodes.values():
        d = node.details
        if node.kind == "job":
            inputs = [_dataset_ref(n, namespace) for n in _near(lin, node.key, "dataset", True, 1)]
            outputs = [_dataset_ref(n, namespace) for n in _near(lin, node.key, "version", False)]
            ident, name = d["job_id"], f"{namespace}.train"
            yield _event(
                "START", d.get("started_at") or node.ts, ident, name, namespace, inputs, []
            )
            if d.get("ended_at"):
                end = "COMPLETE" if d.get("status") == "succeeded" else "FAIL"
                yield _event(end, d["ended_at"], ident, name, namespace, inputs, outputs)
        elif node.kind in ("serving", "deployment"):
            versions = [n for n in lin.upstream(node.key) if n.kind == "version"]
            inputs = [_dataset_ref(n, namespace) for n in versions]
            ident = d.get("job_id") or f"deployment-{d.get('generation')}"
            name = f"{namespace}.{'serve' if node.kind == 'serving' else 'deploy'}"
            yield _event(
                "START", d.get("started_at") or node.ts, ident, name, namespace, inputs, []
            )
            if node.kind == "deployment" or d.get("ended_at"):
                at = d.get("ended_at") or node.ts
                yield _event("COMPLETE", at, ident, name, namespace, inputs, [])


def write_lines(lin: Lineage, namespace: str) -> str:
    return "".join(json.dumps(e, default=str) + "\n" for e in events(lin, namespace))
