"""The model registry: versions, aliases, promote and rollback, and the history of alias moves.

MLflow holds the aliases (the truth for who serves). The audit log holds every move, which
gives the history: replaying it yields a stack per alias (promote pushes, rollback pops), so
rollback returns to the version that held the alias before, and can be repeated. A move and
its audit row are one step under the registry lock (alias_moves.py); moves made outside
Workbench are recorded as moves by `mlflow` when found.

A pipeline registers its version with its intent (the aliases to move) as a tag and marks it
settled once they moved; a version whose pipeline died in between is settled on the next read
on this host (see `settle_versions`). Reads go through the store's reader (store/backends.py,
no mlflow import); writes go through MlflowClient, and an MlflowException becomes one line
(RegistryError).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from typing import Any

from workbench import names
from workbench.errors import RegistryError, UsageError, WorkbenchError
from workbench.project import Project
from workbench.registry import alias_moves, approvals_policy, audit, card_store
from workbench.registry.alias_moves import (
    MOVES as MOVES,  # re-exported: the actions that move aliases
)
from workbench.registry.alias_moves import locked, mlflow_call, refusal
from workbench.store import backends, tracking
from workbench.store.db import Db
from workbench.store.parquet_log import utcnow
from workbench.store.reader import StoreReader

#: Version tags: what the registering pipeline meant to do, and how that ended.
INTENT_TAG = "workbench.intent"
SETTLED_TAG = "workbench.settled"
INCOMPLETE_TAG = "workbench.incomplete"


@dataclass
class VersionInfo:
    version: int
    aliases: list[str]
    run_id: str | None
    status: str | None
    created_ms: int | None
    metrics: dict[str, float]
    source: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def champion(self, metric: str) -> tuple[int, float] | None:
        """What the gate compared this version with: (production's version, its `metric`
        on this version's holdout), when a production version existed then."""
        version = self.metrics.get("champion_version")
        value = self.metrics.get(f"champion_{metric}")
        if version is None or value is None:
            return None
        return int(version), value


def _registry(project: Project) -> StoreReader:
    return backends.reader_for(project, registry=True)


def list_versions(project: Project) -> list[VersionInfo]:
    versions = _registry(project).read_model_versions(project.config.model_name)
    run_ids = [v.run_id for v in versions if v.run_id]
    metrics = backends.reader_for(project).read_latest_metrics(run_ids)
    return [
        VersionInfo(
            version=v.version,
            aliases=sorted(v.aliases),
            run_id=v.run_id,
            status=v.status,
            created_ms=v.created_ms,
            metrics=metrics.get(v.run_id or "", {}),
            source=v.source,
        )
        for v in versions
    ]


def aliases(project: Project) -> dict[str, int]:
    return backends.reader_for(project, registry=True).read_aliases(project.config.model_name)


def register(
    project: Project,
    run_id: str,
    model_uri: str,
    description: str = "",
    intent: dict[str, Any] | None = None,
    **details: Any,
) -> int:
    """A new version of the project's model; `intent` (see `new_intent`) is stored with it, in
    the same write, so a kill right after this call leaves a version that says what was meant.
    Audited as `register` (reason: the description), with `details` and the intent's."""
    client = tracking.client(project)
    from mlflow.exceptions import MlflowException

    name = project.config.model_name
    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name, description=project.config.project.description)
        except MlflowException as exc:
            # Two first pipelines register at once: the other one created it; go on.
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise refusal(exc) from None
    tags = {INTENT_TAG: json.dumps(intent, sort_keys=True)} if intent else None
    mv = mlflow_call(
        client.create_model_version,
        name,
        source=model_uri,
        run_id=run_id,
        description=description,
        tags=tags,
    )
    version = int(mv.version)
    facts = {"run_id": run_id, "model_uri": model_uri, **(intent or {}).get("details", {})}
    facts.update(details)
    reason = description or f"registered from run {run_id}"
    audit.record(project, "register", name, None, None, version, reason, **facts)
    # Its card: now, or with an intent once the aliases moved (when the lock is released).
    card_store.after_move(project, version)
    if not intent:
        card_store.flush()
    return version


def alias_history(
    project: Project, alias: str | None = None, db: Db | None = None
) -> list[dict[str, Any]]:
    """Alias moves of this project's model, oldest first. Moves found in MLflow that no audit
    row explains are recorded first (as `external`, by `mlflow`), and versions left pending by
    a dead pipeline are settled."""
    with Db.borrow(db, project.logs_root) as use:
        settle_versions(project, use)
        history = alias_moves.moves(project, use)
        if alias_moves.differences(history, aliases(project)) or alias_moves.cut_short(project):
            with locked(project):
                alias_moves.record_external(project, use)
            history = alias_moves.moves(project, use)
        return [ev for ev in history if alias is None or ev["alias"] == alias]


def _stack(history: list[dict[str, Any]]) -> list[int]:
    stack: list[int] = []
    for ev in history:
        to = ev["to_version"]
        if ev["action"] == "rollback":
            if stack:
                stack.pop()
            if to is not None and (not stack or stack[-1] != to):
                stack.append(to)
        elif to is not None and (not stack or stack[-1] != to):
            stack.append(to)
    return stack


def rollback_target(project: Project, alias: str) -> tuple[int | None, int]:
    """(current version, version to roll back to) or RegistryError saying why there is none."""
    stack = _stack(alias_history(project, alias))
    current = aliases(project).get(alias)
    if current is not None and (not stack or stack[-1] != current):
        stack.append(current)  # moved outside meanwhile: start from there
    if current is None:
        raise RegistryError(f"alias {alias!r} is not set on model {project.config.model_name!r}")
    if len(stack) < 2:
        raise RegistryError(
            f"nothing to roll back to: {alias!r} has only ever pointed at version {current}"
        )
    return current, stack[-2]


def check_version(
    project: Project, version: int, error: type[WorkbenchError] = RegistryError
) -> None:
    """`error` naming the versions there are when the model has no `version`."""
    have = [v.version for v in _registry(project).read_model_versions(project.config.model_name)]
    if version not in have:
        listed = ", ".join(map(str, have)) or "none"
        raise error(
            f"model {project.config.model_name!r} has no version {version} (versions: {listed})"
        )


def move_alias(
    project: Project,
    alias: str,
    version: int,
    reason: str,
    action: str = "promote",
    by: str | None = None,
    **details: Any,
) -> dict[str, Any]:
    """Point `alias` at `version` and audit it, as one step under the registry lock."""
    if not reason or not reason.strip():
        raise UsageError("a reason is required (--reason TEXT)")
    names.check_alias(alias, "alias")
    approvals_policy.check_move(project, alias)  # [governance]: who may move it directly
    check_version(project, version)
    client = tracking.client(project)  # the slow part, outside the lock
    with locked(project):
        alias_moves.record_external(project)
        return alias_moves.move_locked(
            project, client, alias, version, reason.strip(), action, by, **details
        )


def promote(
    project: Project, version: int, reason: str, alias: str | None = None
) -> dict[str, Any]:
    """Point `alias` (default: the configured production alias) at `version`."""
    alias = alias or project.config.registry.production_alias
    return move_alias(project, alias, version, reason, "promote")


def rollback(project: Project, reason: str, alias: str | None = None) -> dict[str, Any]:
    """Move `alias` (default: the production alias) back to the version that held it before;
    the target is chosen under the same lock as the move."""
    if not reason or not reason.strip():
        raise UsageError("a reason is required (--reason TEXT)")
    alias = names.check_alias(alias or project.config.registry.production_alias, "alias")
    approvals_policy.check_rollback(project, alias)
    client = tracking.client(project)
    with locked(project):
        _, target = rollback_target(project, alias)  # records outside moves first
        return alias_moves.move_locked(project, client, alias, target, reason.strip(), "rollback")


# --- a pipeline's intent, and versions whose pipeline died before carrying it out ----------


def new_intent(
    project: Project, moves: list[tuple[str, str, str]], **details: Any
) -> dict[str, Any]:
    """What a pipeline means to do with the version it registers: `moves` as (alias, action,
    reason), each with the version the alias held when decided, and who is doing it."""
    import psutil

    for alias, _, _ in moves:
        names.check_alias(alias, "[registry] alias")
    now = aliases(project)
    return {
        "moves": [
            {"alias": a, "action": act, "reason": why, "expect": now.get(a)}
            for a, act, why in moves
        ],
        "details": details,
        "actor": audit.actor(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": psutil.Process().create_time(),
    }


def apply_intent(project: Project, version: int, intent: dict[str, Any]) -> list[str]:
    """Carry out a live pipeline's intent: move its aliases, then mark the version settled."""
    client = tracking.client(project)
    with locked(project):
        alias_moves.record_external(project)
        moved: list[str] = []
        for move in intent["moves"]:
            try:
                alias_moves.move_locked(
                    project,
                    client,
                    move["alias"],
                    version,
                    move["reason"],
                    move["action"],
                    **intent["details"],
                )
            except WorkbenchError as exc:  # say so on the version, then fail the pipeline
                _incomplete(project, client, version, move, str(exc), None, intent["details"])
                raise
            moved.append(move["alias"])
        _tag(client, project, version, SETTLED_TAG, f"{utcnow().isoformat()} by the pipeline")
    return moved


def _incomplete(
    project: Project,
    client: Any,
    version: int,
    move: dict[str, Any],
    problem: str,
    by: str | None,
    details: dict[str, Any],
    why: str = "",
) -> None:
    """Audit a move of a registered version that was not made, and tag the version so."""
    current = aliases(project).get(move["alias"])
    audit.record(
        project,
        "incomplete",
        project.config.model_name,
        move["alias"],
        current,
        version,
        f"{why}not done: {move['action']} {move['alias']} ({problem})",
        by=by,
        **details,
    )
    _tag(client, project, version, INCOMPLETE_TAG, problem[:5000])


def _tag(client: Any, project: Project, version: int, key: str, value: str) -> None:
    name = project.config.model_name
    mlflow_call(client.set_model_version_tag, name, str(version), key, value)


def _pending(project: Project) -> dict[int, dict[str, Any]]:
    """Versions registered with an intent that is neither settled nor marked incomplete."""
    rows = backends.reader_for(project, registry=True).read_version_tags(
        project.config.model_name, (INTENT_TAG, SETTLED_TAG, INCOMPLETE_TAG)
    )
    tags: dict[int, dict[str, str]] = {}
    for version, key, value in rows:
        tags.setdefault(version, {})[key] = value
    out = {}
    for version, t in tags.items():
        if INTENT_TAG in t and SETTLED_TAG not in t and INCOMPLETE_TAG not in t:
            try:
                out[version] = json.loads(t[INTENT_TAG])
            except ValueError:
                out[version] = {"moves": [], "details": {}, "pid": None}
    return out


def _owner_gone(intent: dict[str, Any]) -> bool:
    """Did the pipeline that registered the version end (on this host; a reused pid is told
    apart by its start time)? A pipeline on another host cannot be judged from here."""
    import psutil

    pid = intent.get("pid")
    if not pid or intent.get("host") != socket.gethostname():
        return False
    try:
        proc = psutil.Process(int(pid))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return True
        return bool(abs(proc.create_time() - float(intent.get("started") or 0)) > 1.0)
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def settle_versions(project: Project, db: Db | None = None) -> list[int]:
    """Finish the intent of every version whose pipeline died before moving its aliases.
    Without any pending version: one SQLite read, no lock, no mlflow import."""
    if not any(_owner_gone(i) for i in _pending(project).values()):
        return []
    client = tracking.client(project)
    settled = []
    with locked(project):
        alias_moves.record_external(project, db)
        for version, intent in sorted(_pending(project).items()):
            if _owner_gone(intent):
                _finish(project, client, version, intent, db)
                settled.append(version)
    return settled


def _done(project: Project, move: dict[str, Any], version: int, db: Db | None) -> bool:
    if not move.get("job_id"):
        return False
    with Db.borrow(db, project.logs_root) as use:
        job = json.dumps(move["job_id"])
        (row,) = use.rows(
            "SELECT count(*) AS n FROM audit WHERE model = ? AND alias = ? AND action = ? "
            "AND to_version = ? AND contains(details, ?)",
            [project.config.model_name, move["alias"], move["action"], version, job],
        )
        return bool(row["n"])


def _finish(
    project: Project, client: Any, version: int, intent: dict[str, Any], db: Db | None
) -> None:
    """Under the lock: make the moves the dead pipeline meant, while each alias still holds
    the version it held when the pipeline decided; past the first one that moved since, none
    (moving it now would undo someone's later move): the version is tagged incomplete."""
    pid, host = intent.get("pid"), intent.get("host")
    by = f"settled for {intent.get('actor', 'unknown')} (pipeline pid {pid} died)"
    why = f"pipeline pid {pid} died after registering v{version}; "
    details = {**intent.get("details", {}), "settled_for_pid": pid, "settled_for_host": host}
    if not intent.get("moves"):
        unreadable = "its intent could not be read"
        name = project.config.model_name
        audit.record(project, "incomplete", name, None, None, version, why + unreadable, by=by)
        _tag(client, project, version, INCOMPLETE_TAG, unreadable)
        return
    problem: str | None = None
    for move in intent["moves"]:
        current = aliases(project).get(move["alias"])
        job_move = {**move, "job_id": details.get("job_id")}
        if problem is None and (current == version or _done(project, job_move, version, db)):
            continue
        if problem is None and current != move.get("expect"):
            problem = (
                f"{move['alias']!r} moved from v{move.get('expect') or '-'} to "
                f"v{current or '-'} after the pipeline decided"
            )
        if problem is None:
            try:
                alias_moves.move_locked(
                    project,
                    client,
                    move["alias"],
                    version,
                    move["reason"],
                    move["action"],
                    by,
                    **details,
                )
                continue
            except WorkbenchError as exc:
                problem = str(exc)
        _incomplete(project, client, version, move, problem, by, details, why)
    if problem is None:
        _tag(client, project, version, SETTLED_TAG, f"{utcnow().isoformat()} by {by}")
