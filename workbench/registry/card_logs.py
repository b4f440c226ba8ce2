"""The model card's facts that live in the logs, read through DuckDB's views: monitoring
(the drift log's checks of the version, its predictions and labels) and history (the audit
log's alias moves, approvals and deployments of the version; the deployment state file).

The registry sits below monitoring and serving, so their modules are not imported: the views
and the deployment state's JSON are read as they are written (`monitoring.checks.append`:
one drift row per feature per check, feature `__metric__` the live metric;
`serving.deployments`: `.workbench/deployments/<model>.json`).
"""

from __future__ import annotations

import json
from typing import Any

from workbench.project import Project
from workbench.registry.alias_moves import MOVES
from workbench.store.db import Db

METRIC_FEATURE = "__metric__"  # monitoring.checks.METRIC_FEATURE
_WORST = {"alert": 3, "warn": 2, "ok": 1, "no_data": 0}
#: Audit actions about serving a version (canary.promote also moves an alias).
DEPLOY_ACTIONS = ("canary.start", "canary.traffic", "canary.rollback", "canary.promote", "deploy")
SERVE_ACTIONS = ("serve.start", "serve.stop")


def monitoring(
    project: Project, version: int, evaluation: dict[str, Any], db: Db
) -> dict[str, Any]:
    return {
        "drift": _drift(project, version, db),
        "live": _live(project, version, evaluation, db),
    }


def _drift(project: Project, version: int, db: Db) -> dict[str, Any] | None:
    """The version's newest drift check: its overall status (the worst feature's), the
    features that warn or alert, and how many checks there were."""
    model = project.config.model_name
    (count,) = db.rows(
        "SELECT count(DISTINCT check_id) AS n, max(ts) AS last FROM drift "
        "WHERE model = ? AND version = ?",
        [model, version],
    )
    if not count["n"]:
        return None
    rows = db.rows(
        'SELECT check_id, ts, source, "window", feature, kind, test, score, status, n_cur '
        "FROM drift WHERE model = ? AND version = ? AND check_id = ("
        "SELECT check_id FROM drift WHERE model = ? AND version = ? ORDER BY ts DESC LIMIT 1)",
        [model, version, model, version],
    )
    inputs = [r for r in rows if r["kind"] != "metric"]
    status = max((r["status"] for r in inputs), key=lambda s: _WORST.get(s, 0), default="no_data")
    flagged = [
        {"feature": r["feature"], "status": r["status"], "test": r["test"], "score": r["score"]}
        for r in inputs
        if r["status"] in ("warn", "alert")
    ]
    first = rows[0]
    return {
        "checks": count["n"],
        "last_check": first["check_id"],
        "last_at": first["ts"],
        "source": first["source"],
        "window": first["window"],
        "status": status,
        "features_checked": len(inputs),
        "flagged": flagged,
    }


def _live(project: Project, version: int, evaluation: dict[str, Any], db: Db) -> dict[str, Any]:
    """Predictions served by the version, how many got a label, and the live metric of the
    newest check that had labels (its drop from the holdout, as the monitor judged it)."""
    model = project.config.model_name
    (row,) = db.rows(
        "SELECT count(*) AS requests, count(*) FILTER (WHERE p.status = 200) AS ok, "
        "count(l.label) AS labelled, min(p.ts) AS first, max(p.ts) AS last, "
        "max(l.ts) AS last_label FROM predictions p LEFT JOIN labels l USING (request_id) "
        "WHERE p.model = ? AND p.version = ?",
        [model, version],
    )
    out: dict[str, Any] = {
        "predictions": row["requests"],
        "succeeded": row["ok"],
        "labelled": row["labelled"],
        "first_at": row["first"],
        "last_at": row["last"],
        "last_label_at": row["last_label"],
        "metric": None,
    }
    metric = db.rows(
        "SELECT ts, test, score, status, n_cur FROM drift WHERE model = ? AND version = ? "
        "AND feature = ? ORDER BY ts DESC LIMIT 1",
        [model, version, METRIC_FEATURE],
    )
    if metric:
        m = metric[0]
        name, _, way = str(m["test"]).rpartition("_")
        reference = evaluation.get("holdout", {}).get(f"holdout_{name}")
        drop = m["score"]
        current = None
        if reference is not None and drop is not None:
            current = reference - drop if way == "drop" else reference + drop
        out["metric"] = {
            "name": name,
            "at": m["ts"],
            "labelled": m["n_cur"],
            "holdout": reference,
            "current": current,
            "worsening": drop,
            "status": m["status"],
        }
    return out


def history(project: Project, version: int, db: Db) -> dict[str, Any]:
    model = project.config.model_name
    rows = db.rows(
        "SELECT ts, actor, action, alias, from_version, to_version, reason, details FROM audit "
        "WHERE model = ? ORDER BY ts",
        [model],
    )
    moves = [
        _row(r)
        for r in rows
        if r["action"] in MOVES and version in (r["to_version"], r["from_version"])
    ]
    deploy = [
        _row(r)
        for r in rows
        if (r["action"] in DEPLOY_ACTIONS or r["action"] in SERVE_ACTIONS) and _about(r, version)
    ]
    return {
        "alias_moves": moves,
        "approvals": _approvals(rows, version),
        "deployments": deploy,
        "deployment_state": _deployment_state(project, version),
        "registered": next(
            (_row(r) for r in rows if r["action"] == "register" and r["to_version"] == version),
            None,
        ),
    }


def _details(row: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(row.get("details") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _about(row: dict[str, Any], version: int) -> bool:
    """Does an audit row concern `version` (its columns, or `version(s)` in its details)?"""
    if version in (row["to_version"], row["from_version"]):
        return True
    details = _details(row)
    named = details.get("versions", details.get("version"))
    if isinstance(named, list | tuple):
        return version in [_as_int(v) for v in named]
    if isinstance(named, dict):
        return version in [_as_int(v) for v in named.values()]
    return _as_int(named) == version


def _approvals(rows: list[dict[str, Any]], version: int) -> list[dict[str, Any]]:
    """approval.* rows of the requests for `version` (a request names the version; its
    approvals, rejections and expiry name only the request)."""
    ours = {
        _details(r).get("request_id")
        for r in rows
        if r["action"] == "approval.request" and _about(r, version)
    }
    ours.discard(None)
    return [
        {**_row(r), "request_id": _details(r).get("request_id")}
        for r in rows
        if str(r["action"]).startswith("approval.")
        and (_details(r).get("request_id") in ours or _about(r, version))
    ]


def _deployment_state(project: Project, version: int) -> dict[str, Any] | None:
    """What the deployment state asks of the server now, where it names this version."""
    path = project.store / "deployments" / f"{project.config.model_name}.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    canary = state.get("canary") or {}
    pinned = state.get("production") == version
    if not pinned and canary.get("version") != version:
        return None
    return {
        "generation": state.get("generation"),
        "pinned_production": pinned,
        "canary_traffic": canary.get("traffic") if canary.get("version") == version else None,
        "updated_at": state.get("updated_at"),
        "updated_by": state.get("updated_by"),
        "reason": state.get("reason"),
    }


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "ts": r["ts"],
        "actor": r["actor"],
        "action": r["action"],
        "alias": r["alias"],
        "from_version": r["from_version"],
        "to_version": r["to_version"],
        "reason": r["reason"],
    }


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
