"""Who the user is, and what `[governance.aliases.<alias>]` lets them do with an alias.

No section for an alias: anyone moves it, as always. `required_approvals = 0` with approvers:
only they move it. `required_approvals = N`: nobody moves it directly; a promotion is a request
(approvals.py) that N approvers other than the requester approve. Rollback stays immediate for
whoever `rollback` lists (empty: anyone). This module reads config only (no MLflow, no logs),
so the registry's move functions can ask it before they take the lock.
"""

from __future__ import annotations

import getpass
import os
import urllib.parse

from workbench.config_sections import AliasGovernance
from workbench.errors import RegistryError
from workbench.project import Project
from workbench.store import backends


def current_user(project: Project) -> str:
    """The bare user name (no host): WORKBENCH_USER, else the tracking store's user in team
    mode (`[store] username_env`, else MLFLOW_TRACKING_USERNAME; a PostgreSQL URI's user),
    else the OS user."""
    named = os.environ.get("WORKBENCH_USER", "").strip()
    if named:
        return named
    team = _store_user(project)
    if team:
        return team
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _store_user(project: Project) -> str | None:
    uri = project.registry_uri
    which = backends.kind(uri)
    if which == "sqlite":
        return None
    env = project.config.store.username_env
    user = (os.environ.get(env) if env else None) or None
    if which == "postgresql":
        return urllib.parse.urlsplit(uri).username or user
    return user or os.environ.get("MLFLOW_TRACKING_USERNAME") or None


def rule(project: Project, alias: str) -> AliasGovernance | None:
    """The alias's `[governance.aliases.<alias>]`, or None (no rules: moves as always)."""
    return project.config.governance.aliases.get(alias)


def required(project: Project, alias: str) -> int:
    """How many approvals a move of `alias` needs (0: none, it moves directly)."""
    found = rule(project, alias)
    return found.required_approvals if found else 0


def _listed(names: list[str]) -> str:
    return ", ".join(names) or "nobody"


def denied(user: str, what: str, project: Project, alias: str, who: str, names: list[str]) -> str:
    model = project.config.model_name
    return f"permission denied: {user} may not {what} alias {alias} of model {model} ({who}: " + (
        f"{_listed(names)})"
    )


def check_move(project: Project, alias: str, user: str | None = None) -> None:
    """A direct move of `alias` (promote, deploy, canary promote): RegistryError when the
    rules forbid it to `user` (default: the current user), or when it needs approvals."""
    found = rule(project, alias)
    if found is None:
        return
    user = user or current_user(project)
    if found.required_approvals:
        raise RegistryError(
            f"alias {alias} of model {project.config.model_name} needs "
            f"{found.required_approvals} approval(s): request the move with "
            f"`workbench promote VERSION --alias {alias} --reason TEXT`"
        )
    if found.approvers and user not in found.approvers:
        raise RegistryError(denied(user, "move", project, alias, "approvers", found.approvers))
    if not found.approvers and found.requesters and user not in found.requesters:
        raise RegistryError(denied(user, "move", project, alias, "requesters", found.requesters))


def check_request(project: Project, alias: str, user: str) -> AliasGovernance:
    """May `user` ask for a move of `alias` (which needs approvals)? Its rule, or RegistryError."""
    found = rule(project, alias)
    if found is None or not found.required_approvals:
        raise RegistryError(f"alias {alias} needs no approval: promote it directly")
    if found.requesters and user not in found.requesters:
        raise RegistryError(
            denied(user, "request a move of", project, alias, "requesters", found.requesters)
        )
    return found


def check_approver(project: Project, alias: str, user: str, verb: str = "approve") -> None:
    """May `user` approve (or reject) requests for `alias`?"""
    found = rule(project, alias)
    approvers = found.approvers if found else []
    if user not in approvers:
        raise RegistryError(
            denied(user, f"{verb} requests for", project, alias, "approvers", approvers)
        )


def check_rollback(project: Project, alias: str, user: str | None = None) -> None:
    """Rollback is immediate, for whoever `rollback` lists (empty or no rule: anyone)."""
    found = rule(project, alias)
    if found is None or not found.rollback:
        return
    user = user or current_user(project)
    if user not in found.rollback:
        raise RegistryError(denied(user, "roll back", project, alias, "rollback", found.rollback))
