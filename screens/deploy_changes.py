"""The changes the Deployments screen makes through the core: the canary's traffic, promote,
roll back, deploy a canary, and the plan its dialog starts from. Each runs in one of the
screen's thread workers (they import the core, and `promote_canary` imports mlflow), under
the screen's change lock, and returns a `Change`: a one-line summary and the generation the
server is to apply, or the error to show."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench_tui.base import describe_error
from workbench_tui.formatting import fmt_version

if TYPE_CHECKING:
    from workbench.project import Project


@dataclass(frozen=True)
class Change:
    action: str
    ok: bool
    text: str
    generation: int | None = None
    warning: bool = False


def adjust_traffic(project: Project, points: int, lock: threading.Lock) -> Change:
    """Move the canary's share by `points` (a warning when it is already at the edge)."""
    from workbench.serving import deployments

    # The core reads and moves the share under the state's lock: presses add up, also
    # against changes made meanwhile from another process.
    with lock:
        try:
            current, after = deployments.adjust_traffic(project, points)
        except Exception as exc:
            return Change("traffic", False, describe_error(exc))
    if after is None or after.canary is None:
        edge = "at most" if points > 0 else "at least"
        text = f"canary traffic is already {current:g}% ({edge} {current:g}%)"
        return Change("traffic", True, text, warning=True)
    text = f"canary traffic {current:g}% → {after.canary.traffic * 100:g}%"
    return Change("traffic", True, text, after.generation)


def promote(project: Project, reason: str, lock: threading.Lock) -> Change:
    from workbench.serving import deployments

    with lock:
        try:
            before = deployments.read_state(project).canary
            after = deployments.promote_canary(project, reason)
        except Exception as exc:
            return Change("promote", False, describe_error(exc))
    version = fmt_version(before.version if before else None)
    return Change("promote", True, f"{version} promoted to production", after.generation)


def rollback(project: Project, reason: str, lock: threading.Lock) -> Change:
    from workbench.serving import deployments

    with lock:
        try:
            before = deployments.read_state(project).canary
            after = deployments.rollback_canary(project, reason)
        except Exception as exc:
            return Change("rollback", False, describe_error(exc))
    version = fmt_version(before.version if before else None)
    return Change("rollback", True, f"canary {version} rolled back", after.generation)


def deploy_canary(
    project: Project, version: int, percent: float, reason: str, lock: threading.Lock
) -> Change:
    from workbench.serving import deployments

    with lock:
        try:
            after = deployments.start_canary(project, version, percent, reason=reason)
        except Exception as exc:
            return Change("canary", False, describe_error(exc))
    text = f"canary v{version} on {percent:g}% of traffic"
    return Change("canary", True, text, after.generation)


def plan_canary(project: Project) -> tuple[list[int], int | None, int | None]:
    """The registered versions, production's, and the one to suggest as the canary: the
    staging candidate, else the newest version that is not production."""
    from workbench.registry import versions as registry
    from workbench.serving import deployments

    versions = sorted(v.version for v in registry.list_versions(project))
    production = deployments.production_version(project)
    aliases = registry.aliases(project)
    staging = aliases.get("staging")
    others = [v for v in versions if v != production]
    suggested = staging if staging in others else (others[-1] if others else None)
    return versions, production, suggested


def start_server(project: Project, lock: threading.Lock) -> Change:
    """`workbench serve --detach` on the configured host and port (the runner's default)."""
    from workbench.serving import process as server_process

    cfg = project.config.serving
    with lock:
        try:
            job_id, url, _ = server_process.start_detached(project, cfg.host, cfg.port)
        except Exception as exc:
            return Change("serve", False, describe_error(exc))
    return Change("serve", True, f"serving at {url} (job {job_id})")


def stop_server(project: Project, lock: threading.Lock) -> Change:
    """Stop the running server gracefully (its prediction log is flushed)."""
    from workbench.serving import process as server_process

    with lock:
        try:
            job_id = server_process.stop(project)
        except Exception as exc:
            return Change("stop", False, describe_error(exc))
    if job_id is None:
        return Change("stop", True, "no server was running", warning=True)
    return Change("stop", True, f"server stopped (job {job_id})")
