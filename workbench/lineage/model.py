"""The lineage graph as plain data: nodes (one per thing), edges (from upstream to downstream).

Shared by the builder (`workbench.lineage.graph`), the CLI (`workbench lineage`, its JSON and
OpenLineage output) and the TUI's Lineage screen; no imports beyond the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

#: The kinds of node, upstream first.
Kind = Literal[
    "dataset",  # a data snapshot: path, digest, rows, schema, validation report
    "job",  # a training (or serving) job: runner, image tag and digest, host, resources
    "run",  # an MLflow run: params, metrics, git commit
    "version",  # a registered model version
    "alias",  # one alias move: who, when, why, from, to, approvals
    "approval",  # an approval request and its decisions
    "deployment",  # a deployment or canary: when each variant served, its traffic share
    "serving",  # a serving job (process or container)
    "drift",  # a drift or monitor check
    "retrain",  # the retraining a check triggered
    "request",  # one prediction, by request id
]

KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Node:
    key: str  # unique in a graph, "<kind>:<id>", e.g. "version:fraud_detection/3"
    kind: str  # one of KINDS
    title: str  # one line for a tree row, at most ~60 characters
    ts: datetime | None = None  # when it happened (created, moved, started)
    details: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "title": self.title,
            "ts": self.ts.isoformat() if self.ts else None,
            "details": self.details,
        }


@dataclass(frozen=True)
class Edge:
    src: str  # upstream node key
    dst: str  # downstream node key
    label: str = ""  # "trained", "registered", "moved", "served", "checked", "triggered", ...


@dataclass
class Lineage:
    root: str  # the key of the node asked about
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    #: node key -> how many of its neighbours the fan-out cap left out of the graph
    left_out: dict[str, int] = field(default_factory=dict)

    def add(self, node: Node) -> Node:
        return self.nodes.setdefault(node.key, node)

    def link(self, src: str, dst: str, label: str = "") -> None:
        edge = Edge(src, dst, label)
        if edge not in self.edges:
            self.edges.append(edge)

    def upstream(self, key: str) -> list[Node]:
        return [self.nodes[e.src] for e in self.edges if e.dst == key and e.src in self.nodes]

    def downstream(self, key: str) -> list[Node]:
        return [self.nodes[e.dst] for e in self.edges if e.src == key and e.dst in self.nodes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "nodes": [n.to_dict() for n in self.nodes.values()],
            "edges": [{"from": e.src, "to": e.dst, "label": e.label} for e in self.edges],
            "left_out": dict(self.left_out),
        }
