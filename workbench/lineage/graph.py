"""Build a thing's lineage: `resolve(project, thing)` finds the node THING names, `build`
walks `depth` hops upstream and `depth` hops downstream of it (see expand.py for the rules).

THING is tried as, in order: a model version (`3`, `v3`, `fraud_detection/3`,
`models:/fraud_detection/3`), an alias (`production`, `@production`,
`models:/fraud_detection@production`), a job id (training or serving, or a prefix), a run id
(or a prefix of 4+ characters), a dataset digest (or a prefix) or a data file (hashed like a
snapshot), a drift check id, a request id from the prediction log. Everything is read through
the fast paths (MLflow's tables, the DuckDB views); mlflow is never imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from workbench.errors import UsageError
from workbench.lineage.expand import Expander
from workbench.lineage.log_reads import LogReads
from workbench.lineage.mlflow_reads import MlflowReads
from workbench.lineage.model import Lineage, Node
from workbench.project import Project

TRIED = "model version, alias, job id, run id, dataset digest or data file, drift check, request id"
_VERSION = re.compile(r"^(?:models:/)?(?:(?P<model>[^/@]+)/)?v?(?P<n>\d+)$")
_ALIAS = re.compile(r"^(?:models:/(?P<model>[^/@]+))?@?(?P<alias>[A-Za-z0-9_-]+)$")
_HEX = re.compile(r"^[0-9a-f]{4,64}$")


class _Resolver:
    def __init__(self, project: Project, mlflow: MlflowReads, logs: LogReads) -> None:
        self.project = project
        self.model = project.config.model_name
        self.mlflow = mlflow
        self.logs = logs
        self.ex = Expander(project, mlflow, logs)

    def version(self, thing: str) -> str | None:
        m = _VERSION.match(thing)
        if not m:
            return None
        model = m["model"] or self.model
        if self.mlflow.version(model, int(m["n"])) is None:
            if thing.isdigit():
                return None  # may still be a digest or id made of digits
            raise UsageError(f"{thing}: model {model!r} has no version {m['n']}")
        return f"version:{model}/{int(m['n'])}"

    def alias(self, thing: str) -> str | None:
        m = _ALIAS.match(thing)
        if not m or (not thing.startswith(("@", "models:/")) and _HEX.match(thing)):
            return None
        model, name = m["model"] or self.model, m["alias"]
        moves = [r for r in self.ex.alias_moves() if r["model"] == model and r["alias"] == name]
        if moves:
            return f"alias:{model}/{name}@{moves[-1]['ts'].isoformat()}"
        number = self.mlflow.registry.read_aliases(model).get(name)
        if number is not None:  # set without an audit row (before Workbench audited it)
            return f"version:{model}/{number}"
        if thing.startswith(("@", "models:/")):
            raise UsageError(f"{thing}: model {model!r} has no alias {name!r}")
        return None

    def job(self, thing: str) -> str | None:
        jobs = self.logs.jobs()
        found = [thing] if thing in jobs else [j for j in jobs if j.startswith(thing)]
        if len(found) > 1:
            raise UsageError(f"{thing}: matches {len(found)} jobs ({', '.join(found[:3])}, ...)")
        if not found:
            return None
        kind = "serving" if jobs[found[0]].get("kind") == "serve" else "job"
        return f"{kind}:{found[0]}"

    def run(self, thing: str) -> str | None:
        if len(thing) < 4 or not _HEX.match(thing):
            return None
        found = self.mlflow.runs_like(thing)
        if len(found) > 1:
            raise UsageError(f"{thing}: matches more than one run (give more of the run id)")
        return f"run:{found[0]}" if found else None

    def dataset(self, thing: str) -> str | None:
        path = Path(thing).expanduser()
        if not path.is_absolute() and not path.exists():
            path = self.project.root / path
        if not _HEX.match(thing) and (path.is_file() or any(ch in thing for ch in "*?[")):
            from workbench.data.snapshot import digest

            return f"dataset:{digest(path)}"
        if not _HEX.match(thing):
            return None
        found = self.mlflow.digests_like(thing)
        if len(found) > 1:
            raise UsageError(f"{thing}: matches more than one dataset digest")
        return f"dataset:{found[0]}" if found else None

    def drift(self, thing: str) -> str | None:
        return f"drift:{thing}" if thing in self.logs.drift_checks() else None

    def request(self, thing: str) -> str | None:
        return f"request:{thing}" if self.logs.request(thing) is not None else None

    def resolve(self, thing: str) -> str:
        tries: tuple[Callable[[str], str | None], ...] = (
            self.version,
            self.alias,
            self.job,
            self.run,
            self.dataset,
            self.drift,
            self.request,
        )
        for attempt in tries:
            key = attempt(thing)
            if key is not None:
                return key
        raise UsageError(f"{thing}: no lineage found (tried: {TRIED})")


def _check(thing: str) -> str:
    thing = thing.strip()
    if not thing or len(thing) > 512 or not thing.isprintable():
        raise UsageError(f"{thing[:40]!r}: not a thing lineage can look up ({TRIED})")
    return thing


def resolve(project: Project, thing: str) -> str:
    """The key of the node THING names (`version:fraud_detection/3`, ...); UsageError naming
    THING and the kinds tried when nothing matches."""
    mlflow, logs = MlflowReads(project), LogReads(project)
    try:
        return _Resolver(project, mlflow, logs).resolve(_check(thing))
    finally:
        logs.close()
        mlflow.close()


#: Hops each way by default: enough to reach the data snapshot from a request id
#: (request -> serving job -> version -> run -> job -> dataset), and the deployment from the data.
DEPTH = 5


def _walk(lineage: Lineage, ex: Expander, root: Node, depth: int, upstream: bool) -> None:
    frontier, seen = [root], {root.key}
    for _ in range(depth):
        nxt: list[Node] = []
        for node in frontier:
            for other, label in ex.up(node) if upstream else ex.down(node):
                lineage.add(other)
                src, dst = (other.key, node.key) if upstream else (node.key, other.key)
                lineage.link(src, dst, label)
                if other.key not in seen:
                    seen.add(other.key)
                    nxt.append(other)
        frontier = nxt


def build(project: Project, thing: str, depth: int = DEPTH) -> Lineage:
    """THING's lineage: up to `depth` hops upstream (what it came from) and downstream (what
    came of it). Raises UsageError naming THING when nothing matches."""
    if depth < 0:
        raise UsageError(f"--depth must be 0 or more (got {depth})")
    mlflow, logs = MlflowReads(project), LogReads(project)
    try:
        resolver = _Resolver(project, mlflow, logs)
        key = resolver.resolve(_check(thing))
        root = resolver.ex.lookup(key)
        if root is None:
            raise UsageError(f"{thing}: {key} is named but its record is gone")
        lineage = Lineage(root=key)
        lineage.add(root)
        _walk(lineage, resolver.ex, root, depth, upstream=True)
        _walk(lineage, resolver.ex, root, depth, upstream=False)
        lineage.left_out = {k: n for k, n in resolver.ex.left_out.items() if k in lineage.nodes}
        return lineage
    finally:
        logs.close()
        mlflow.close()
