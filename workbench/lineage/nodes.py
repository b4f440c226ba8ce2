"""Lineage nodes made from the records they stand for: a title of one short line, the time,
and JSON-safe details (what the CLI's --json, the OpenLineage events and the TUI show)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from workbench.lineage.mlflow_reads import DIGEST_TAG, DatasetInput
from workbench.lineage.model import Node
from workbench.store.mlflow_tables import StoreModelVersion, StoreRun

GIT_TAG = "mlflow.source.git.commit"


def ms(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value / 1000, UTC) if value else None


def iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts else None


def _safe(value: Any) -> Any:
    """JSON-safe: datetimes as ISO text, NaN as None."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return value


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dataset(
    digest: str,
    inp: DatasetInput | None,
    run: StoreRun | None,
    validation: dict[str, Any] | str | None = None,
) -> Node:
    params = run.params if run else {}
    rows = {k: int(params[k]) for k in ("rows_train", "rows_valid", "rows_holdout") if k in params}
    info: dict[str, Any] = {
        "digest": digest,
        "name": inp.name if inp else None,
        "path": inp.path() if inp else None,
        "rows": sum(rows.values()) if rows else (inp.rows() if inp else None),
        "split_rows": rows,
        "schema": inp.columns() if inp else [],
        "context": inp.tags.get("mlflow.data.context") if inp else None,
        # the pipeline's validation summary (its newest run's), or why there is none
        "validation": _safe(validation),
        "time_range": validation.get("time_range") if isinstance(validation, dict) else None,
    }
    name = info["name"] or (info["path"] or "").rsplit("/", 1)[-1] or "data"
    n = f", {info['rows']:,} rows" if info["rows"] else ""
    return Node(f"dataset:{digest}", "dataset", _short(f"{name} @{digest[:12]}{n}"), None, info)


def job(row: dict[str, Any]) -> Node:
    args = row.get("_args") or {}
    kind = "serving" if row.get("kind") == "serve" else "job"
    info = {
        "job_id": row["job_id"],
        "kind": row.get("kind"),
        "runner": row.get("runner"),
        "status": row.get("status"),
        "run_id": row.get("run_id"),
        "handle": row.get("handle"),
        "host": args.get("host"),
        "image": args.get("image"),
        "image_id": args.get("image_id"),  # the image's digest (sha256:...)
        "resources": args.get("resources"),
        "ports": args.get("ports"),
        "started_at": iso(row.get("started_at")),
        "ended_at": iso(row.get("ended_at")),
        "exit_code": row.get("exit_code"),
        "reason": row.get("reason"),
    }
    title = f"{row['job_id']} ({row.get('runner')}, {row.get('status')})"
    return Node(f"{kind}:{row['job_id']}", kind, _short(title), row.get("started_at"), info)


def run(r: StoreRun) -> Node:
    metrics = {k: v for k, v in sorted(r.metrics.items()) if not k.startswith("system/")}
    info = {
        "run_id": r.run_id,
        "run_name": r.run_name,
        "experiment": r.experiment,
        "status": r.status,
        "user": r.user,
        "params": dict(sorted(r.params.items())),
        "metrics": _safe(metrics),
        "git_commit": r.tags.get(GIT_TAG),
        "data_digest": r.tags.get(DIGEST_TAG),
        "job_id": r.tags.get("workbench.job_id"),
        "trainer": r.tags.get("workbench.trainer"),
    }
    auc = next((f" {k}={v:.4f}" for k, v in metrics.items() if k.startswith("holdout_")), "")
    title = f"run {r.run_name or r.run_id[:8]} ({r.run_id[:8]}){auc}"
    return Node(f"run:{r.run_id}", "run", _short(title), ms(r.start_time), info)


def version(mv: StoreModelVersion) -> Node:
    info = {
        "model": mv.name,
        "version": mv.version,
        "run_id": mv.run_id,
        "source": mv.source,
        "status": mv.status,
        "aliases": sorted(mv.aliases),
        "tags": dict(sorted(mv.tags.items())),
        "description": mv.description,
    }
    at = f" @{','.join(sorted(mv.aliases))}" if mv.aliases else ""
    key = f"version:{mv.name}/{mv.version}"
    return Node(key, "version", _short(f"{mv.name} v{mv.version}{at}"), ms(mv.created_ms), info)


def alias_key(row: dict[str, Any]) -> str:
    return f"alias:{row['model']}/{row['alias']}@{iso(row['ts'])}"


def alias(row: dict[str, Any]) -> Node:
    d = row.get("_details") or {}
    info = {
        "model": row["model"],
        "alias": row["alias"],
        "action": row["action"],
        "from_version": row.get("from_version"),
        "to_version": row.get("to_version"),
        "who": row.get("actor"),
        "when": iso(row["ts"]),
        "why": row.get("reason"),
        "request_id": d.get("request_id"),
        "approvers": d.get("approvers"),
    }
    before = f"v{row['from_version']}" if row.get("from_version") is not None else "-"
    after = f"v{row['to_version']}" if row.get("to_version") is not None else "-"
    title = f"@{row['alias']} {before} -> {after} ({row['action']} by {row.get('actor')})"
    return Node(alias_key(row), "alias", _short(title), row["ts"], _safe(info))


def approval(request_id: str, rows: list[dict[str, Any]]) -> Node:
    first = rows[0]
    d = first.get("_details") or {}
    decisions = [
        {"action": r["action"], "who": r.get("actor"), "when": iso(r["ts"]), "why": r.get("reason")}
        for r in rows
    ]
    last = rows[-1]["action"].removeprefix("approval.")
    info = {
        "request_id": request_id,
        "alias": d.get("alias") or first.get("alias"),
        "version": d.get("version") or first.get("to_version"),
        "evidence": d.get("evidence"),
        "state": last,
        "decisions": decisions,
    }
    title = f"approval {request_id[:12]} @{info['alias']} v{info['version']}: {last}"
    return Node(f"approval:{request_id}", "approval", _short(title), first["ts"], _safe(info))


def deployment(row: dict[str, Any], history: dict[int, dict[str, Any]]) -> Node:
    d = row.get("_details") or {}
    gen = int(d.get("generation", 0))
    canary = row["from_version"] if row["action"] == "canary.rollback" else row["to_version"]
    traffic = d.get("traffic")
    info = {
        "generation": gen,
        "action": row["action"],
        "model": row["model"],
        "canary_version": canary,
        "production_version": row["to_version"]
        if row["action"] == "canary.rollback"
        else row["from_version"],
        "traffic": traffic,
        "sticky_key": d.get("sticky_key"),
        "who": row.get("actor"),
        "when": iso(row["ts"]),
        "why": row.get("reason"),
        "state": history.get(gen),
    }
    share = f" {traffic * 100:g}%" if isinstance(traffic, int | float) else ""
    title = f"deployment #{gen} {row['action']} v{canary}{share}"
    return Node(f"deployment:{gen}", "deployment", _short(title), row["ts"], _safe(info))


def drift(check: dict[str, Any]) -> Node:
    info = _safe({k: v for k, v in check.items() if not k.startswith("_")})
    status = f"{check['alerts']} alert(s)" if check.get("alerts") else "ok"
    title = f"drift {check['check_id'][:14]} v{check.get('version')}: {status}"
    return Node(f"drift:{check['check_id']}", "drift", _short(title), check.get("ts"), info)


def retrain(key: str, row: dict[str, Any], job_id: str | None) -> Node:
    d = row.get("_details") or {}
    info = {
        "reason": row.get("reason"),
        "who": row.get("actor"),
        "when": iso(row["ts"]),
        "check_id": d.get("check_id"),
        "alerts": d.get("alerts"),
        "metric": d.get("metric"),
        "from_version": row.get("from_version"),
        "job_id": job_id,
    }
    title = f"retrain: {row.get('reason') or 'triggered'}"
    return Node(key, "retrain", _short(title), row["ts"], _safe(info))


def request(row: dict[str, Any]) -> Node:
    info = _safe({k: v for k, v in row.items()})
    title = f"request {row['request_id']} -> v{row['version']} ({row['variant']})"
    return Node(f"request:{row['request_id']}", "request", _short(title), row["ts"], info)
