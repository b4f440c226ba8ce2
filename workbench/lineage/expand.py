"""The lineage graph's rules: for a node key, its record (`lookup`), the nodes just upstream of
it (`up`) and just downstream (`down`), each with the edge's label.

    dataset -> job -> run -> version -> alias moves (<- approvals), deployments (canaries),
    serving jobs -> drift checks -> retrain -> job -> run -> the next version
    request -> (answered by) serving job and version
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from workbench.lineage import nodes
from workbench.lineage.log_reads import ALIAS_MOVES, DEPLOY_ACTIONS, LogReads
from workbench.lineage.mlflow_reads import DIGEST_TAG, MlflowReads
from workbench.lineage.model import Node
from workbench.monitoring.monitor import TRIGGER
from workbench.project import Project
from workbench.serving import deployments
from workbench.store.parquet_log import utcnow

Linked = list[tuple[Node, str]]
#: A retraining's job starts right after its trigger (the monitor runs the pipeline at once).
RETRAIN_WITHIN = timedelta(hours=1)
TRAINING_KINDS = ("train", "sweep")
#: At most this many neighbours of one node in one direction (a dataset used by 1,000 runs).
FANOUT = 25
#: The run's tag of the pipeline's validation (workbench.pipeline.flow.VALIDATION_TAG).
VALIDATION_TAG = "workbench.validation"
NOT_VALIDATED = "not validated (trained outside the pipeline)"


class Expander:
    def __init__(self, project: Project, mlflow: MlflowReads, logs: LogReads) -> None:
        self.project = project
        self.model = project.config.model_name
        self.mlflow = mlflow
        self.logs = logs
        self._history: dict[int, dict[str, Any]] | None = None
        self._served: dict[str, list[int]] = {}
        #: node key -> how many of its neighbours were past FANOUT (not in the graph)
        self.left_out: dict[str, int] = {}

    # --- records -------------------------------------------------------------------------------

    def lookup(self, key: str) -> Node | None:
        kind, _, ident = key.partition(":")
        fn = getattr(self, f"_node_{kind}", None)
        return fn(ident) if fn is not None else None

    def _node_dataset(self, digest: str) -> Node:
        runs = self.mlflow.runs_of_digest(digest)
        run = self.mlflow.run(runs[0]) if runs else None
        inputs = self.mlflow.inputs(runs[0]) if runs else []
        inp = next((i for i in inputs if i.digest == digest), None)
        return nodes.dataset(digest, inp, run, self._validation(runs))

    def _validation(self, runs: list[str]) -> dict[str, Any] | str | None:
        """The validation the newest run of the snapshot recorded (the pipeline's tag), else
        why there is none: trained outside the pipeline, or before it recorded one."""
        if not runs:
            return None
        tagged = self.mlflow.tag_of(runs, VALIDATION_TAG)
        newest = next((r for r in reversed(runs) if r in tagged), None)
        if newest is not None:
            try:
                summary = json.loads(tagged[newest])
            except ValueError:
                summary = None
            if isinstance(summary, dict):
                return {**summary, "run_id": newest}
        job = self.logs.job_of_run(runs[-1])
        if job is not None and (job.get("_args") or {}).get("pipeline") is False:
            return NOT_VALIDATED
        return "not recorded (trained before the pipeline recorded its validation)"

    def _node_job(self, job_id: str) -> Node | None:
        row = self.logs.jobs().get(job_id)
        return nodes.job(row) if row else None

    _node_serving = _node_job

    def _node_run(self, run_id: str) -> Node | None:
        run = self.mlflow.run(run_id)
        return nodes.run(run) if run else None

    def _node_version(self, ident: str) -> Node | None:
        model, _, number = ident.rpartition("/")
        mv = self.mlflow.version(model, int(number)) if number.isdigit() else None
        return nodes.version(mv) if mv else None

    def _node_alias(self, ident: str) -> Node | None:
        row = next((r for r in self.alias_moves() if nodes.alias_key(r) == f"alias:{ident}"), None)
        return nodes.alias(row) if row else None

    def _node_approval(self, request_id: str) -> Node | None:
        rows = self.approval_rows(request_id)
        return nodes.approval(request_id, rows) if rows else None

    def _node_deployment(self, gen: str) -> Node | None:
        rows = [r for r in self.deploy_rows() if str(r["_details"].get("generation")) == gen]
        return nodes.deployment(rows[-1], self.history()) if rows else None

    def _node_drift(self, check_id: str) -> Node | None:
        check = self.logs.drift_checks().get(check_id)
        return nodes.drift(check) if check else None

    def _node_retrain(self, ident: str) -> Node | None:
        for row, job_id in self.retrains():
            if self.retrain_key(row, job_id) == f"retrain:{ident}":
                return nodes.retrain(f"retrain:{ident}", row, job_id)
        return None

    def _node_request(self, request_id: str) -> Node | None:
        row = self.logs.request(request_id)
        return nodes.request(row) if row else None

    # --- the audit log, read once --------------------------------------------------------------

    def alias_moves(self) -> list[dict[str, Any]]:
        return [r for r in self.logs.audit() if r["action"] in ALIAS_MOVES and r.get("alias")]

    def deploy_rows(self) -> list[dict[str, Any]]:
        return [
            r
            for r in self.logs.audit()
            if r["action"] in DEPLOY_ACTIONS and r["_details"].get("generation") is not None
        ]

    def approval_rows(self, request_id: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.logs.audit()
            if r["action"].startswith("approval.")
            and (request_id is None or r["_details"].get("request_id") == request_id)
        ]

    def history(self) -> dict[int, dict[str, Any]]:
        """The deployment state file's recent changes, by generation."""
        if self._history is None:
            try:
                state = deployments.read_state(self.project)
                self._history = {int(h["generation"]): dict(h) for h in state.history}
            except Exception:  # an unreadable state file only loses the details
                self._history = {}
        return self._history

    def retrains(self) -> list[tuple[dict[str, Any], str | None]]:
        """Each retrain trigger with the training job it started: the job whose record names
        the trigger's drift check (`args.trigger`, the monitor's pipeline records it), else,
        for rows from before that was recorded, the first training job within RETRAIN_WITHIN
        after it that names no trigger."""
        triggers = [r for r in self.logs.audit() if r["action"] == TRIGGER]
        train = [
            j
            for j in self.logs.jobs().values()
            if j.get("kind") in TRAINING_KINDS and j.get("started_at") is not None
        ]
        by_check: dict[str, dict[str, Any]] = {}
        for j in sorted(train, key=lambda j: j["started_at"]):
            check = (j.get("_args") or {}).get("trigger")
            if check and check not in by_check:
                by_check[str(check)] = j
        unnamed = [j for j in train if not (j.get("_args") or {}).get("trigger")]
        out: list[tuple[dict[str, Any], str | None]] = []
        for i, row in enumerate(triggers):
            named = by_check.get(str(row["_details"].get("check_id")))
            if named is not None:
                out.append((row, named["job_id"]))
                continue
            until = row["ts"] + RETRAIN_WITHIN
            if i + 1 < len(triggers):
                until = min(until, triggers[i + 1]["ts"])
            started = [j for j in unnamed if row["ts"] <= j["started_at"] <= until]
            first = min(started, key=lambda j: j["started_at"], default=None)
            out.append((row, first["job_id"] if first else None))
        return out

    @staticmethod
    def retrain_key(row: dict[str, Any], job_id: str | None) -> str:
        return f"retrain:{job_id or nodes.iso(row['ts'])}"

    def serving_jobs(self) -> list[dict[str, Any]]:
        return [j for j in self.logs.jobs().values() if j.get("kind") == "serve"]

    def serving_at(self, start: datetime, end: datetime | None = None) -> list[dict[str, Any]]:
        """Serving jobs running at some time between `start` and `end` (default: `start`)."""
        end = end or start
        now = utcnow()
        return [
            j
            for j in self.serving_jobs()
            if j.get("started_at") is not None
            and j["started_at"] <= end
            and (j.get("ended_at") or now) >= start
        ]

    # --- edges ---------------------------------------------------------------------------------

    def up(self, node: Node) -> Linked:
        fn = getattr(self, f"_up_{node.kind}", None)
        return fn(node) if fn is not None else []

    def down(self, node: Node) -> Linked:
        fn = getattr(self, f"_down_{node.kind}", None)
        return fn(node) if fn is not None else []

    def _cap(self, node: Node, links: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """At most FANOUT of `links` (the newest kept: the lists come oldest first); how many
        were left out goes in `left_out` under the node's key."""
        if len(links) > FANOUT:
            self.left_out[node.key] = self.left_out.get(node.key, 0) + len(links) - FANOUT
            links = links[-FANOUT:]
        return links

    def _some(self, node: Node, keys_labels: list[tuple[str, str]]) -> Linked:
        """The nodes of `keys_labels`, at most FANOUT (see `_cap`); the runs among them read
        from the store in one go."""
        keys_labels = self._cap(node, keys_labels)
        self.mlflow.prefetch(k[4:] for k, _ in keys_labels if k.startswith("run:"))
        out: Linked = []
        for key, label in keys_labels:
            found = self.lookup(key)
            if found is not None and all(found.key != n.key for n, _ in out):
                out.append((found, label))
        return out

    def _down_dataset(self, node: Node) -> Linked:
        runs = self.mlflow.runs_of_digest(node.details["digest"])
        links = []
        for run_id, label in self._cap(node, [(r, "input of") for r in runs]):  # cap, then look up
            job = self.logs.job_of_run(run_id)
            links.append((f"job:{job['job_id']}" if job else f"run:{run_id}", label))
        return self._some(node, links)

    def _up_job(self, node: Node) -> Linked:
        run_id = node.details.get("run_id")
        run = self.mlflow.run(run_id) if run_id else None
        links = []
        if run and run.tags.get(DIGEST_TAG):
            links.append((f"dataset:{run.tags[DIGEST_TAG]}", "input of"))
        for row, job_id in self.retrains():
            if job_id == node.details["job_id"]:
                links.append((self.retrain_key(row, job_id), "started"))
        return self._some(node, links)

    def _down_job(self, node: Node) -> Linked:
        run_id = node.details.get("run_id")
        run_ids = [run_id] if run_id else self.mlflow.runs_of_job(node.details["job_id"])
        return self._some(node, [(f"run:{r}", "ran") for r in run_ids])

    def _up_run(self, node: Node) -> Linked:
        job = self.logs.job_of_run(node.details["run_id"])
        job_id = job["job_id"] if job else node.details.get("job_id")
        if job_id and job_id in self.logs.jobs():
            return self._some(node, [(f"job:{job_id}", "ran")])
        digest = node.details.get("data_digest")
        return self._some(node, [(f"dataset:{digest}", "input of")] if digest else [])

    def _down_run(self, node: Node) -> Linked:
        found = self.mlflow.versions_of_run(node.details["run_id"])
        return self._some(node, [(f"version:{v.name}/{v.version}", "registered") for v in found])

    def _up_version(self, node: Node) -> Linked:
        run_id = node.details.get("run_id")
        return self._some(node, [(f"run:{run_id}", "registered")] if run_id else [])

    def _down_version(self, node: Node) -> Linked:
        model, number = node.details["model"], node.details["version"]
        links = [
            (nodes.alias_key(r), "moved")
            for r in self.alias_moves()
            if r["model"] == model and r.get("to_version") == number
        ]
        for r in self.approval_rows():
            d = r["_details"]
            if r["action"] == "approval.request" and d.get("version") == number:
                links.append((f"approval:{d.get('request_id')}", "requested"))
        for r in self.deploy_rows():
            if r["model"] == model and nodes.deployment(r, {}).details["canary_version"] == number:
                links.append((f"deployment:{r['_details']['generation']}", "deployed"))
        links += [(f"serving:{j}", "served") for j in self._serving_of(model, number, node.ts)]
        for check in self.logs.drift_checks().values():
            if check.get("model") == model and check.get("version") == number:
                links.append((f"drift:{check['check_id']}", "checked"))
        return self._some(node, links)

    def _up_alias(self, node: Node) -> Linked:
        d = node.details
        links = []
        if d.get("request_id"):
            links.append((f"approval:{d['request_id']}", "approved"))
        if d.get("to_version") is not None:
            links.append((f"version:{d['model']}/{d['to_version']}", "moved"))
        return self._some(node, links)

    def _up_approval(self, node: Node) -> Linked:
        v = node.details.get("version")
        return self._some(
            node, [(f"version:{self.model}/{v}", "requested")] if v is not None else []
        )

    def _down_approval(self, node: Node) -> Linked:
        rid = node.details["request_id"]
        moves = [r for r in self.alias_moves() if r["_details"].get("request_id") == rid]
        return self._some(node, [(nodes.alias_key(r), "approved") for r in moves])

    def _up_deployment(self, node: Node) -> Linked:
        v = node.details.get("canary_version")
        model = node.details["model"]
        return self._some(node, [(f"version:{model}/{v}", "deployed")] if v is not None else [])

    def _down_deployment(self, node: Node) -> Linked:
        assert node.ts is not None
        later = [r["ts"] for r in self.deploy_rows() if r["ts"] > node.ts]
        jobs = self.serving_at(node.ts, min(later, default=None) or node.ts)
        return self._some(node, [(f"serving:{j['job_id']}", "served by") for j in jobs])

    def _serving_of(self, model: str, version: int, since: datetime | None) -> list[str]:
        """The serving jobs (oldest first) that answered with the version: of those running
        after it was made, the newest FANOUT asked one `LIMIT 1` query each."""
        jobs = [j for j in self.serving_jobs() if j.get("started_at") is not None]
        now = utcnow()
        if since is not None:
            jobs = [j for j in jobs if (j.get("ended_at") or now) >= since]
        jobs.sort(key=lambda j: j["started_at"])
        return [
            j["job_id"]
            for j in jobs[-FANOUT:]
            if self.logs.answered(model, version, j["started_at"], j.get("ended_at"))
        ]

    def _served_by(self, node: Node) -> list[int]:
        job_id = node.details["job_id"]
        if job_id not in self._served:
            start = nodes_ts(node.details.get("started_at"))
            end = nodes_ts(node.details.get("ended_at"))
            self._served[job_id] = self.logs.served(self.model, start, end)
        return self._served[job_id]

    def _up_serving(self, node: Node) -> Linked:
        versions = self._served_by(node)
        return self._some(node, [(f"version:{self.model}/{v}", "served") for v in versions])

    def _down_serving(self, node: Node) -> Linked:
        versions = set(self._served_by(node))
        start = nodes_ts(node.details.get("started_at"))
        links = [
            (f"drift:{c['check_id']}", "checked")
            for c in self.logs.drift_checks().values()
            if c.get("version") in versions and (start is None or c["ts"] >= start)
        ]
        return self._some(node, links)

    def _up_drift(self, node: Node) -> Linked:
        d = node.details
        return self._some(node, [(f"version:{d.get('model')}/{d.get('version')}", "checked")])

    def _down_drift(self, node: Node) -> Linked:
        cid = node.details["check_id"]
        links = [
            (self.retrain_key(row, job_id), "triggered")
            for row, job_id in self.retrains()
            if row["_details"].get("check_id") == cid
        ]
        return self._some(node, links)

    def _up_retrain(self, node: Node) -> Linked:
        cid = node.details.get("check_id")
        return self._some(node, [(f"drift:{cid}", "triggered")] if cid else [])

    def _down_retrain(self, node: Node) -> Linked:
        job_id = node.details.get("job_id")
        return self._some(node, [(f"job:{job_id}", "started")] if job_id else [])

    def _up_request(self, node: Node) -> Linked:
        d = node.details
        links = []
        if node.ts is not None:
            links += [(f"serving:{j['job_id']}", "answered") for j in self.serving_at(node.ts)]
        links.append((f"version:{d['model']}/{d['version']}", "answered"))
        return self._some(node, links)


def nodes_ts(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
