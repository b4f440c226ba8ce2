"""Paging through MLflow's runs/search for rest_reader.py, in parallel where the server lets
it, and turning its JSON runs into StoreRuns.

runs/search pages are chained by an opaque page token. MLflow's own servers (the SQLAlchemy
store) make it base64 of {"offset": N} and order by start time then run id: when the first
page's token is exactly that, the later pages' tokens are made here and fetched `workers` at a
time (ordered by start time ascending, so a run started during the read lands at the end and
shifts no earlier page; the incremental read that follows catches it). Any other token
(another server, a future MLflow) is followed one page at a time.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from workbench.store.mlflow_tables import StoreRun

PAGE = 1000
ORDER = ["attributes.start_time ASC"]
Call = Callable[[str, "dict[str, Any] | None", "dict[str, Any] | None"], "dict[str, Any] | None"]
RawRuns = dict[str, dict[str, Any]]


def kv(items: list[dict[str, Any]] | None) -> dict[str, str]:
    """MLflow's [{key, value}] list as a dict (a tag without a value reads as "")."""
    return {str(i["key"]): str(i.get("value", "")) for i in items or []}


def offset_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset_of(token: str | None) -> int | None:
    if not token:
        return None
    try:
        decoded = json.loads(base64.b64decode(token, validate=True))
    except (binascii.Error, ValueError):
        return None
    if isinstance(decoded, dict) and set(decoded) == {"offset"}:
        offset = decoded["offset"]
        return offset if isinstance(offset, int) else None
    return None


def _page(
    call: Call, ids: list[str], flt: str, token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    body: dict[str, Any] = {
        "experiment_ids": ids,
        "run_view_type": "ALL",
        "max_results": PAGE,
        "order_by": ORDER,
    }
    if flt:
        body["filter"] = flt
    if token:
        body["page_token"] = token
    answer = call("runs/search", None, body) or {}
    return answer.get("runs", []), answer.get("next_page_token") or None


def _add(out: RawRuns, runs: list[dict[str, Any]]) -> None:
    for run in runs:
        info = run["info"]
        out[str(info.get("run_id") or info["run_uuid"])] = run


def search(call: Call, pool: ThreadPoolExecutor, ids: list[str], flt: str = "") -> RawRuns:
    """Every run of experiments `ids` matching `flt`, by run id."""
    out: RawRuns = {}
    runs, token = _page(call, ids, flt, None)
    _add(out, runs)
    if _offset_of(token) == PAGE:  # MLflow's offset tokens: fetch the rest in parallel
        workers = max(1, pool._max_workers)
        next_offset = PAGE
        while True:
            offsets = range(next_offset, next_offset + workers * PAGE, PAGE)
            pages = list(pool.map(lambda o: _page(call, ids, flt, offset_token(o)), offsets))
            for runs, _ in pages:
                _add(out, runs)
            if any(len(runs) < PAGE or not tok for runs, tok in pages):
                return out
            next_offset += workers * PAGE
    while token:  # an opaque token: one page after the other
        runs, token = _page(call, ids, flt, token)
        _add(out, runs)
    return out


def all_runs(call: Call, pool: ThreadPoolExecutor, ids: list[str]) -> RawRuns:
    """Every run of experiments `ids` (deleted ones too), in parallel pages."""
    return search(call, pool, ids)


def changed_runs(call: Call, pool: ThreadPoolExecutor, ids: list[str], since_ms: int) -> RawRuns:
    """Runs started or ended at or after `since_ms`, or still running: MLflow's search has no
    OR, so three searches (run at once), merged by run id."""
    filters = [
        f"attributes.start_time >= {since_ms}",
        f"attributes.end_time >= {since_ms}",
        "attributes.status = 'RUNNING'",
    ]
    inner = ThreadPoolExecutor(len(filters), thread_name_prefix="wb-rest-changed")
    with inner:
        found = list(inner.map(lambda f: search(call, pool, ids, f), filters))
    out: RawRuns = {}
    for runs in found:
        out.update(runs)
    return out


def to_store_run(run: dict[str, Any], experiments: dict[str, str]) -> StoreRun:
    """A runs/search JSON run as the StoreRun the SQL readers make of the same run."""
    info, data = run.get("info", {}), run.get("data", {})
    metrics = data.get("metrics", [])
    exp_id = str(info.get("experiment_id", ""))
    return StoreRun(
        run_id=str(info.get("run_id") or info["run_uuid"]),
        experiment_id=exp_id,
        experiment=experiments.get(exp_id, ""),
        run_name=info.get("run_name"),
        status=info.get("status"),
        lifecycle_stage=info.get("lifecycle_stage"),
        user=info.get("user_id"),
        source="",  # the legacy runs.source_name column, "" for every run MLflow 3 makes
        start_time=_int(info.get("start_time")),
        end_time=_int(info.get("end_time")),
        metrics={str(m["key"]): float(m["value"]) for m in metrics},
        params=kv(data.get("params")),
        tags=kv(data.get("tags")),
        metrics_stamp=max((int(m.get("timestamp", 0)) for m in metrics), default=0),
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
