"""What a model's inference server should serve, and what it says it serves.

Two small JSON files per model under `.workbench/deployments/`:
- `<model>.json`, the desired state: the production version (None: follow the production
  alias), the canary (version, traffic share, sticky key) and a generation number bumped by
  every change. Commands and the TUI write it (read-modify-write under a lock, atomic rename).
- `<model>.server.json`, the running server's report: its URL, pid, job and the generation
  it has applied. The server writes it.
The server polls the desired state and swaps its routing in one step once the models it
needs are loaded, so a change never drops a request. Commands wait for the server to report
the new generation. Every change is audited.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.errors import UsageError, WorkbenchError
from workbench.project import Project
from workbench.registry import audit
from workbench.store.parquet_log import utcnow
from workbench.tasks import ModelTask


@dataclass(frozen=True)
class Canary:
    version: int
    traffic: float  # share of requests, 0 < traffic <= 1
    sticky_key: str | None = None  # a record field: the same value always gets the same variant
    started_at: str = ""


@dataclass(frozen=True)
class DeploymentState:
    model: str
    generation: int = 0
    production: int | None = None  # pinned version; None follows the production alias
    canary: Canary | None = None
    updated_at: str = ""
    updated_by: str = ""
    reason: str = ""
    history: tuple[dict[str, Any], ...] = field(default_factory=tuple)  # last changes, newest last

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["history"] = list(self.history)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploymentState:
        canary = data.get("canary")
        return cls(
            model=str(data["model"]),
            generation=int(data.get("generation", 0)),
            production=data.get("production"),
            canary=Canary(**canary) if canary else None,
            updated_at=str(data.get("updated_at", "")),
            updated_by=str(data.get("updated_by", "")),
            reason=str(data.get("reason", "")),
            history=tuple(data.get("history", ())),
        )


STALE_AFTER_S = 10.0  # the server rewrites its report every 2 s


def folder(project: Project) -> Path:
    return project.store / "deployments"


def state_path(project: Project) -> Path:
    return folder(project) / f"{project.config.model_name}.json"


def server_path(project: Project) -> Path:
    return folder(project) / f"{project.config.model_name}.server.json"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the deployment state: {exc}") from None


def read_state(project: Project) -> DeploymentState:
    data = _read_json(state_path(project))
    if data is None:
        return DeploymentState(model=project.config.model_name)
    try:
        return DeploymentState.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{state_path(project)}: not a deployment state: {exc}") from None


@contextmanager
def _locked(project: Project) -> Iterator[None]:
    path = folder(project) / f".{project.config.model_name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def change(
    project: Project,
    mutate: Callable[[DeploymentState], DeploymentState],
    action: str,
    reason: str,
    actor: str | None = None,
) -> DeploymentState:
    """Apply `mutate` to the current state under the lock; bump the generation."""
    with _locked(project):
        before = read_state(project)
        after = mutate(before)
        who = actor or audit.actor()
        now = utcnow().isoformat(timespec="seconds")
        entry = {"generation": before.generation + 1, "at": now, "by": who, "action": action}
        after = replace(
            after,
            generation=before.generation + 1,
            updated_at=now,
            updated_by=who,
            reason=reason,
            history=(*before.history, {**entry, "reason": reason})[-20:],
        )
        _write_json(state_path(project), after.to_dict())
        return after


def _check_traffic(traffic: float) -> float:
    """Accept a percentage (10 = 10 %); return the share (0.1)."""
    if not 0 < traffic <= 100:
        raise UsageError(f"--traffic must be a percentage in (0, 100] (got {traffic:g})")
    return traffic / 100.0


def production_version(
    project: Project, state: DeploymentState | None = None, alias: str | None = None
) -> int | None:
    """The version production serves: pinned in the state, else the serving alias's."""
    from workbench.registry import versions as registry

    state = state or read_state(project)
    if state.production is not None:
        return state.production
    return registry.aliases(project).get(alias or project.config.serving.alias)


def start_canary(
    project: Project,
    version: int,
    traffic: float,
    sticky_key: str | None = None,
    reason: str = "",
) -> DeploymentState:
    """Serve `version` beside production on `traffic` percent of requests."""
    from workbench.registry import versions as registry

    share = _check_traffic(traffic)
    registry.check_version(project, version, UsageError)
    if sticky_key is not None and sticky_key not in project.config.features:
        raise UsageError(
            f"--sticky-key {sticky_key!r} is not a model input "
            f"(inputs: {', '.join(project.config.features)})"
        )
    current = read_state(project)
    prod = production_version(project, current)
    if prod == version:
        raise UsageError(f"version {version} is already production; a canary must differ")
    if current.canary and current.canary.version != version:
        raise UsageError(
            f"version {current.canary.version} is already the canary; "
            "promote or roll it back first (workbench canary promote|rollback)"
        )
    reason = reason.strip() or f"canary v{version} at {traffic:g}%"

    def mutate(state: DeploymentState) -> DeploymentState:
        started = state.canary.started_at if state.canary else utcnow().isoformat()
        return replace(state, canary=Canary(version, share, sticky_key, started))

    after = change(project, mutate, "canary.start", reason)
    audit.record(
        project,
        "canary.start",
        project.config.model_name,
        "canary",
        prod,
        version,
        reason,
        traffic=share,
        sticky_key=sticky_key,
        generation=after.generation,
    )
    return after


def set_traffic(project: Project, traffic: float, reason: str = "") -> DeploymentState:
    share = _check_traffic(traffic)
    state = read_state(project)
    if state.canary is None:
        raise UsageError("no canary is deployed (workbench deploy VERSION --canary --traffic N)")
    reason = reason.strip() or f"canary traffic {state.canary.traffic * 100:g}% -> {traffic:g}%"

    def mutate(s: DeploymentState) -> DeploymentState:
        if s.canary is None:
            raise UsageError("no canary is deployed")
        return replace(s, canary=replace(s.canary, traffic=share))

    after = change(project, mutate, "canary.traffic", reason)
    audit.record(
        project,
        "canary.traffic",
        project.config.model_name,
        "canary",
        state.canary.version,
        state.canary.version,
        reason,
        traffic=share,
        generation=after.generation,
    )
    return after


def adjust_traffic(project: Project, points: float) -> tuple[float, DeploymentState | None]:
    """Move the canary's share by `points` percentage points (clamped to 1..100), reading the
    share under the state's lock so concurrent presses from any process add up. Returns the
    share before (percent) and the new state, or None when it was already at the limit."""
    before: list[float] = []

    def mutate(s: DeploymentState) -> DeploymentState:
        if s.canary is None:
            raise UsageError(
                "no canary is deployed (workbench deploy VERSION --canary --traffic N)"
            )
        current = s.canary.traffic * 100
        before.append(current)
        target = min(100.0, max(1.0, round(current + points, 6)))
        if abs(target - current) < 1e-9:
            raise _Unchanged
        return replace(s, canary=replace(s.canary, traffic=target / 100))

    try:
        after = change(project, mutate, "canary.traffic", "")
    except _Unchanged:
        return before[0], None
    assert after.canary is not None
    reason = f"canary traffic {before[0]:g}% -> {after.canary.traffic * 100:g}%"
    audit.record(
        project,
        "canary.traffic",
        project.config.model_name,
        "canary",
        after.canary.version,
        after.canary.version,
        reason,
        traffic=after.canary.traffic,
        generation=after.generation,
    )
    return before[0], after


class _Unchanged(Exception):
    pass


def promote_canary(project: Project, reason: str) -> DeploymentState:
    """The canary takes all traffic and the production alias (audited as a promotion)."""
    from workbench.registry import versions as registry

    if not reason or not reason.strip():
        raise UsageError("a reason is required (--reason TEXT)")
    state = read_state(project)
    if state.canary is None:
        raise UsageError("no canary is deployed; nothing to promote")
    version = state.canary.version
    # Move the alias first: while the state still names the canary, the server routes the
    # canary's share to the same version as the rest, so no request meets a missing model.
    registry.move_alias(project, project.config.serving.alias, version, reason, "canary.promote")

    def mutate(s: DeploymentState) -> DeploymentState:
        return replace(s, production=None, canary=None)

    return change(project, mutate, "canary.promote", reason.strip())


def rollback_canary(project: Project, reason: str, actor: str | None = None) -> DeploymentState:
    """Production takes all traffic again; the canary is dropped (audited)."""
    if not reason or not reason.strip():
        raise UsageError("a reason is required (--reason TEXT)")
    state = read_state(project)
    if state.canary is None:
        raise UsageError("no canary is deployed; nothing to roll back")
    canary = state.canary

    def mutate(s: DeploymentState) -> DeploymentState:
        return replace(s, canary=None)

    after = change(project, mutate, "canary.rollback", reason.strip(), actor=actor)
    audit.record(
        project,
        "canary.rollback",
        project.config.model_name,
        "canary",
        canary.version,
        production_version(project, after),
        reason.strip(),
        by=actor,
        automatic=actor is not None,
        traffic=canary.traffic,
        generation=after.generation,
    )
    return after


def rollback_canary_once(project: Project, version: int, reason: str) -> DeploymentState | None:
    """The automatic rollback of canary `version`: one state change and one audit record, or
    None when that canary is gone already (another worker or a person got there first)."""
    gone: list[Canary] = []

    def mutate(s: DeploymentState) -> DeploymentState:
        if s.canary is None or s.canary.version != version:
            raise _Unchanged
        gone.append(s.canary)
        return replace(s, canary=None)

    try:
        after = change(project, mutate, "canary.rollback", reason, actor="auto-rollback")
    except _Unchanged:
        return None
    audit.record(
        project,
        "canary.rollback",
        project.config.model_name,
        "canary",
        version,
        production_version(project, after),
        reason,
        by="auto-rollback",
        automatic=True,
        traffic=gone[0].traffic,
        generation=after.generation,
    )
    return after


def status(project: Project, window_s: float, db: Any = None) -> dict[str, Any]:
    """The deployment (desired and applied), the server and per-variant stats from the log.
    Pass the caller's `Db` to reuse its connection (a poll every second should)."""
    from datetime import datetime

    from workbench.serving import stats as serving_stats
    from workbench.store.db import Db

    state = read_state(project)
    server = read_server(project)
    since = None
    if state.canary and state.canary.started_at:
        since = datetime.fromisoformat(state.canary.started_at)
    prod = production_version(project, state)
    task = _task(project, prod)
    with Db.borrow(db, project.logs_root) as use:
        stats = serving_stats.variant_stats(
            use,
            window_s,
            model=project.config.model_name,
            metric_since=since,
            task=task,
            value=project.config.monitoring.value,
        )
    out: dict[str, Any] = {
        "model": project.config.model_name,
        "state": state.to_dict(),
        "production_version": prod,
        "server": server,
        "window_s": window_s,
        "task": task.to_dict() if task else None,
        "variants": {name: s.to_dict() for name, s in stats.items()},
        "value": _value(project),
    }
    if "production" in stats and "canary" in stats:
        out["canary_vs_production"] = serving_stats.compare(stats["production"], stats["canary"])
    return out


def _value(project: Project) -> dict[str, Any] | None:
    """`[monitoring.value]` as the status shows it (its unit), None when it is not set."""
    value = project.config.monitoring.value
    return {"unit": value.unit} if value.configured else None


def _task(project: Project, version: int | None) -> ModelTask | None:
    """The task of the version production serves (None: no such version, or unreadable)."""
    from workbench.serving.predictors import task_of

    if version is None:
        return None
    try:
        return task_of(project, version)
    except WorkbenchError:
        return None


# --- the running server's report ---------------------------------------------------------


def write_server(project: Project, report: dict[str, Any]) -> None:
    _write_json(server_path(project), report)


def clear_server(project: Project, pid: int) -> None:
    report = _read_json(server_path(project))
    if report and report.get("pid") == pid:
        server_path(project).unlink(missing_ok=True)


def read_server(project: Project) -> dict[str, Any] | None:
    """The running server's report, or None when no server runs (a stale report whose process
    is gone is ignored)."""
    try:
        report = _read_json(server_path(project))
    except UsageError:
        return None
    if not report:
        return None
    if time.time() - float(report.get("heartbeat", 0)) > STALE_AFTER_S:
        return None  # killed without a goodbye (kill -9, a removed container)
    if report.get("host_name") == _hostname() and not _pid_alive(int(report.get("pid", 0))):
        return None
    return report


def _hostname() -> str:
    import socket

    return socket.gethostname()


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_applied(project: Project, generation: int, timeout_s: float = 30.0) -> bool:
    """Wait for the running server to report `generation` applied; False on timeout or when
    no server runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        report = read_server(project)
        if report is None:
            return False
        if int(report.get("applied_generation", -1)) >= generation:
            return True
        time.sleep(0.05)
    return False
