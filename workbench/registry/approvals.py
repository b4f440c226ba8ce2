"""Approval requests for alias moves that `[governance]` says need approvals.

A request lives in the append-only Parquet log `approvals` as events (requested, approved,
rejected, executed, expired); its state is the fold of its events, so nothing is ever updated
in place and two machines sharing the logs see the same history. Every write happens under
the registry lock (alias_moves.locked), so the approval that reaches `required_approvals`
and the move it executes are one step, and no two approvers execute the same request.
A request past its `expires` reads as expired at once; the `expired` event (and its audit
row) is written the first time a changing command meets it, never by a listing.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from workbench import names
from workbench.errors import RegistryError, UsageError
from workbench.project import Project
from workbench.registry import alias_moves, audit, roles, versions
from workbench.registry import approvals_policy as policy
from workbench.registry.approvals_policy import current_user as current_user
from workbench.store import backends, tracking
from workbench.store.db import Db
from workbench.store.parquet_log import ParquetLog, utcnow

LOG = "approvals"
STATES = ("pending", "executed", "rejected", "expired")


def now() -> datetime:
    """The clock requests expire by (tests replace it)."""
    return utcnow()


@dataclass
class Request:
    id: str
    model: str
    alias: str
    version: int
    requester: str
    reason: str
    created: datetime
    expires: datetime
    required: int
    from_version: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    approvals: list[dict[str, Any]] = field(default_factory=list)  # user, reason, ts
    state: str = "pending"
    closed_by: str | None = None
    closed_reason: str | None = None
    noticed: bool = True  # expired: the `expired` event is written (False: only by the clock)

    @property
    def approvers(self) -> list[str]:
        return [a["user"] for a in self.approvals]

    def age(self, now: datetime) -> str:
        """How long ago it was asked: `12m`, `3h`, `2d`."""
        seconds = max(0, int((now - self.created).total_seconds()))
        if seconds < 3600:
            return f"{seconds // 60}m"
        if seconds < 86400:
            return f"{seconds // 3600}h"
        return f"{seconds // 86400}d"

    def needs(self) -> str:
        """What it still needs, in a few words."""
        if self.state != "pending":
            return self.state
        left = self.required - len(self.approvals)
        return f"{len(self.approvals)}/{self.required} approvals, {left} more needed"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["approvers"] = self.approvers
        return out


def _log(project: Project) -> ParquetLog:
    return ParquetLog(project.logs_root, LOG)


def _fold(rows: list[dict[str, Any]], at: datetime) -> dict[str, Request]:
    out: dict[str, Request] = {}
    for row in rows:
        rid, event = row["request_id"], row["event"]
        details = json.loads(row["details"] or "{}")
        if event == "requested":
            out[rid] = Request(
                id=rid,
                model=row["model"],
                alias=row["alias"],
                version=int(row["version"]),
                requester=row["user"],
                reason=row["reason"] or "",
                created=row["ts"],
                expires=datetime.fromisoformat(details["expires"]),
                required=int(details.get("required", 1)),
                from_version=details.get("from_version"),
                evidence=details.get("evidence", {}),
            )
            continue
        req = out.get(rid)
        if req is None or req.state != "pending":
            continue
        if event == "approved":
            req.approvals.append({"user": row["user"], "reason": row["reason"], "ts": row["ts"]})
        elif event in ("executed", "rejected", "expired"):
            req.state = event
            req.closed_by, req.closed_reason = row["user"], row["reason"]
    for req in out.values():
        if req.state == "pending" and at >= req.expires:
            req.state, req.noticed = "expired", False
    return out


def requests(project: Project, all_states: bool = False, db: Db | None = None) -> list[Request]:
    """This model's requests, oldest first: pending ones only, or every one."""
    with Db.borrow(db, project.logs_root) as use:
        rows = use.rows(
            "SELECT * FROM approvals WHERE model = ? ORDER BY ts", [project.config.model_name]
        )
    folded = _fold(rows, now()).values()
    return [r for r in folded if all_states or r.state == "pending"]


def get(project: Project, request_id: str) -> Request:
    """The request `request_id` of this model, or UsageError naming the pending ones."""
    rid = request_id.strip()
    every = {r.id: r for r in requests(project, all_states=True)}
    if rid not in every and f"r-{rid}" in every:
        rid = f"r-{rid}"
    if rid not in every:
        pending = ", ".join(r.id for r in every.values() if r.state == "pending") or "none"
        raise UsageError(
            f"no approval request {request_id!r} for model {project.config.model_name} "
            f"(pending: {pending})"
        )
    return every[rid]


def _append(project: Project, req: Request, event: str, user: str, reason: str, **d: Any) -> None:
    _log(project).append(
        [
            {
                "ts": utcnow(),
                "request_id": req.id,
                "event": event,
                "user": user,
                "model": req.model,
                "alias": req.alias,
                "version": req.version,
                "reason": reason,
                "details": json.dumps(d, default=str, sort_keys=True),
            }
        ]
    )


def evidence(project: Project, version: int) -> dict[str, Any]:
    """What the version's run and registration already say: the gate's decision, its holdout
    metrics (and production's on the same holdout), its latest drift check. Small."""
    name = project.config.model_name
    found = [
        v
        for v in backends.reader_for(project, registry=True).read_model_versions(name)
        if v.version == version
    ]
    gate = (found[0].description or None) if found else None
    info = [v for v in versions.list_versions(project) if v.version == version]
    metric = f"holdout_{project.config.metric}"
    metrics: dict[str, float] = {}
    if info:
        keep = (f"champion_{metric}", "champion_version")
        for key, value in sorted(info[0].metrics.items()):
            if key.startswith("holdout_") or key in keep:
                metrics[key] = round(float(value), 6)
    with Db(project.logs_root) as db:
        checks = db.rows(
            "SELECT check_id, max(ts) AS ts, count(*) FILTER (WHERE status = 'alert') AS alerts, "
            "count(*) FILTER (WHERE status = 'warn') AS warnings FROM drift "
            "WHERE model = ? AND version = ? GROUP BY check_id ORDER BY ts DESC LIMIT 1",
            [name, version],
        )
    drift = None
    if checks:
        c = checks[0]
        status = "alert" if c["alerts"] else "warn" if c["warnings"] else "ok"
        drift = {"check_id": c["check_id"], "status": status, "alerts": int(c["alerts"])}
    return {"gate": gate, "metrics": metrics, "drift": drift}


def _expire_noticed(project: Project, reqs: list[Request]) -> None:
    """Under the lock: write the `expired` event (and audit it) for each request only the
    clock has expired so far."""
    for req in reqs:
        if req.state == "expired" and not req.noticed:
            why = f"expired at {req.expires.isoformat(timespec='seconds')} unapproved"
            _append(project, req, "expired", current_user(project), why)
            audit.record(
                project, "approval.expire", req.model, req.alias, req.from_version,
                req.version, why, request_id=req.id,
            )  # fmt: skip
            req.noticed = True


def request(
    project: Project, alias: str, version: int, reason: str, user: str | None = None
) -> Request:
    """Ask for `alias` -> `version`: a pending request (audited as `approval.request`)."""
    if not reason or not reason.strip():
        raise UsageError("a reason is required (--reason TEXT)")
    names.check_alias(alias, "alias")
    user = user or current_user(project)
    rule = policy.check_request(project, alias, user)
    versions.check_version(project, version)
    shown = evidence(project, version)
    with alias_moves.locked(project):
        every = requests(project, all_states=True)
        _expire_noticed(project, every)
        for other in every:
            if other.state == "pending" and (other.alias, other.version) == (alias, version):
                raise RegistryError(
                    f"request {other.id} already asks for v{version} on {alias} "
                    f"({other.needs()}): approve it with `workbench approve {other.id}`"
                )
        taken = {r.id for r in every}
        rid = next(i for i in (f"r-{uuid.uuid4().hex[:6]}" for _ in range(100)) if i not in taken)
        created = now()
        ttl = project.config.governance.request_ttl_h
        req = Request(
            id=rid,
            model=project.config.model_name,
            alias=alias,
            version=version,
            requester=user,
            reason=reason.strip(),
            created=created,
            expires=created + timedelta(hours=ttl),
            required=rule.required_approvals,
            from_version=versions.aliases(project).get(alias),
            evidence=shown,
        )
        _append(
            project, req, "requested", user, req.reason,
            expires=req.expires.isoformat(), required=req.required,
            from_version=req.from_version, evidence=shown,
        )  # fmt: skip
        row = audit.make_row(
            "approval.request", req.model, alias, req.from_version, version, req.reason
        )
        details = {"request_id": rid, "alias": alias, "version": version, "evidence": shown}
        audit.append(project, {**row, "details": json.dumps(details, default=str, sort_keys=True)})
    return req


@dataclass
class Promotion:
    """What `promote` did: moved the alias (`row`, the audit row) or asked (`request`)."""

    row: dict[str, Any] | None = None
    request: Request | None = None
    approvers: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.row is not None:
            r = self.row
            return f"{r['model']}@{r['alias']}: v{r['from_version'] or '-'} -> v{r['to_version']}"
        assert self.request is not None
        q = self.request
        return (
            f"request {q.id}: {q.model}@{q.alias} v{q.from_version or '-'} -> v{q.version} "
            f"needs {q.required} approval(s) (approvers: "
            f"{', '.join(self.approvers)}); "
            f"approve with `workbench approve {q.id} --reason TEXT`"
        )


def promote(project: Project, version: int, reason: str, alias: str | None = None) -> Promotion:
    """Promote `version` to `alias` (default: production): directly, or as a request when
    `[governance.aliases.<alias>] required_approvals` asks for approvals."""
    alias = alias or project.config.registry.production_alias
    roles.note_external_role_changes(project)
    rule = policy.rule(project, alias)
    if rule is not None and rule.required_approvals:
        asked = request(project, alias, version, reason)
        return Promotion(request=asked, approvers=list(rule.approvers))
    return Promotion(row=versions.promote(project, version, reason, alias=alias))


@dataclass
class Decision:
    """What `approve` did: the request as it is now, and the `promote` audit row when this
    approval executed it."""

    request: Request
    row: dict[str, Any] | None = None

    def line(self) -> str:
        q = self.request
        if self.row is not None:
            r = self.row
            return (
                f"{q.id} approved by {', '.join(q.approvers)}: {r['model']}@{r['alias']}: "
                f"v{r['from_version'] or '-'} -> v{r['to_version']}"
            )
        return f"{q.id} approved: {q.needs()} (v{q.version} -> {q.alias})"


def _open(project: Project, request_id: str) -> Request:
    """Under the lock: the request, which must still be pending (expired: noticed now)."""
    req = get(project, request_id)
    _expire_noticed(project, [req])
    if req.state == "expired":
        raise RegistryError(
            f"request {req.id} expired at {req.expires.isoformat(timespec='seconds')} "
            f"(request_ttl_h = {project.config.governance.request_ttl_h:g}): ask again with "
            f"`workbench promote {req.version} --alias {req.alias} --reason TEXT`"
        )
    if req.state != "pending":
        raise RegistryError(f"request {req.id} is {req.state} already (by {req.closed_by})")
    return req


def approve(project: Project, request_id: str, reason: str, user: str | None = None) -> Decision:
    """Approve a pending request as `user` (an approver, not its requester); the approval
    that reaches the required number moves the alias (audited as `promote`, with the request
    and its approvers). An approver who approved already retries a move that failed."""
    roles.note_external_role_changes(project)
    if not reason or not reason.strip():
        raise UsageError("a reason is required (--reason TEXT)")
    user = user or current_user(project)
    client = tracking.client(project)  # the slow part, outside the lock
    with alias_moves.locked(project):
        req = _open(project, request_id)
        policy.check_approver(project, req.alias, user)
        if user == req.requester:
            raise RegistryError(
                f"{user} requested {req.id} and may not approve it (another approver must)"
            )
        if user in req.approvers and len(req.approvals) < req.required:
            raise RegistryError(f"{user} approved {req.id} already ({req.needs()})")
        if user not in req.approvers:
            _append(project, req, "approved", user, reason.strip())
            req.approvals.append({"user": user, "reason": reason.strip(), "ts": utcnow()})
            audit.record(
                project, "approval.approve", req.model, req.alias, req.from_version,
                req.version, reason.strip(), request_id=req.id,
                approvals_so_far=len(req.approvals), required=req.required,
            )  # fmt: skip
        if len(req.approvals) < req.required:
            return Decision(req)
        versions.check_version(project, req.version)
        alias_moves.record_external(project)
        row = alias_moves.move_locked(
            project, client, req.alias, req.version, req.reason, "promote",
            request_id=req.id, approvers=req.approvers, requested_by=req.requester,
        )  # fmt: skip
        _append(project, req, "executed", user, f"approved by {', '.join(req.approvers)}")
        req.state, req.closed_by = "executed", user
        return Decision(req, row)


def reject(project: Project, request_id: str, reason: str, user: str | None = None) -> Request:
    """Close a pending request without moving anything (an approver, or its requester
    withdrawing it)."""
    roles.note_external_role_changes(project)
    if not reason or not reason.strip():
        raise UsageError("a reason is required (--reason TEXT)")
    user = user or current_user(project)
    with alias_moves.locked(project):
        req = _open(project, request_id)
        if user != req.requester:
            policy.check_approver(project, req.alias, user, "reject")
        _append(project, req, "rejected", user, reason.strip())
        audit.record(
            project, "approval.reject", req.model, req.alias, req.from_version, req.version,
            reason.strip(), request_id=req.id,
        )  # fmt: skip
        req.state, req.closed_by, req.closed_reason = "rejected", user, reason.strip()
        return req
