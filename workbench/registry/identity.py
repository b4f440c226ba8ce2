"""Who you are on the project's MLflow store, and whether you may move the model's aliases.

The embedded store: the local user, who may (it is their file). PostgreSQL: the database user
the URI names; what they may do is the database's business (unknown here). A tracking server
with basic auth (`mlflow server --app-name basic-auth`): the user its credentials name
(`/api/2.0/mlflow/users/current`, else `users/get`), and their permission on the registered
model (the effective one, `/api/3.0/mlflow/users/permissions/get`, else the explicit
`/api/2.0/mlflow/registered-models/permissions/get`). EDIT or MANAGE (or an admin) may move
aliases. A server without auth lets anyone edit. Anything the server will not say: None.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import asdict, dataclass
from typing import Any

from workbench.errors import RegistryError
from workbench.project import Project
from workbench.registry import audit
from workbench.store import backends

#: Permissions that may change a registered model's aliases.
EDITING = frozenset({"EDIT", "MANAGE"})


@dataclass(frozen=True)
class Identity:
    user: str | None
    store_location: str
    can_edit_model: bool | None  # None: unknown
    model: str = ""
    permission: str | None = None  # the server's word (READ, EDIT, MANAGE, ...)
    is_admin: bool | None = None

    def may(self) -> str:
        """What you may do with the model, in a few words."""
        if self.can_edit_model is None:
            return "permissions unknown"
        if self.can_edit_model:
            return "may promote"
        return f"read only{f' ({self.permission})' if self.permission else ''}"

    def line(self) -> str:
        return f"{self.user or 'anonymous'} on {self.store_location} · {self.may()}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "may": self.may()}


def identity(project: Project) -> Identity:
    """Who you are on the project's registry store and whether you may change the model."""
    uri = project.registry_uri
    model = project.config.model_name
    which = backends.kind(uri)
    where = backends.redact(uri)
    if which == "sqlite":
        db = project.mlflow_db
        writable = os.access(db if db.exists() else db.parent, os.W_OK) or not db.parent.exists()
        try:
            shown = str(db.relative_to(project.root))  # .workbench/mlflow.db, as a user sees it
        except ValueError:
            shown = str(db)
        return Identity(audit.actor().split("@", 1)[0], shown, writable, model)
    backends.apply_credentials(project)
    if which == "postgresql":
        user = urllib.parse.urlsplit(backends.connect_uri(project, uri)).username
        return Identity(user, where, None, model)
    return _server_identity(uri, where, model)


def _server_identity(uri: str, where: str, model: str) -> Identity:
    status, body = backends.http_get(uri, "/api/2.0/mlflow/users/current", {})
    if status == 401:
        raise backends.unreachable(uri, "401 unauthorized (check MLFLOW_TRACKING_PASSWORD)")
    named = os.environ.get("MLFLOW_TRACKING_USERNAME")
    auth = status != 404
    user_info = body.get("user") if status == 200 and isinstance(body, dict) else None
    if user_info is None and named:  # a server before users/current
        status, body = backends.http_get(uri, "/api/2.0/mlflow/users/get", {"username": named})
        user_info = body.get("user") if status == 200 and isinstance(body, dict) else None
        auth = auth or status != 404 or (isinstance(body, dict) and "error_code" in body)
    if not auth:
        return Identity(named, where, True, model)  # no auth on the server: anyone may edit
    if not isinstance(user_info, dict):
        return Identity(named, where, None, model)
    user = str(user_info.get("username") or named or "")
    if user_info.get("is_admin"):
        return Identity(user, where, True, model, "ADMIN", True)
    permission = _model_permission(uri, user, model)
    can = None if permission is None else permission in EDITING
    return Identity(user, where, can, model, permission, False)


def _model_permission(uri: str, user: str, model: str) -> str | None:
    status, body = backends.http_get(
        uri,
        "/api/3.0/mlflow/users/permissions/get",
        {"username": user, "resource_type": "registered_model", "resource_id": model},
    )
    if status == 200 and isinstance(body, dict) and body.get("permission"):
        return str(body["permission"])
    status, body = backends.http_get(
        uri,
        "/api/2.0/mlflow/registered-models/permissions/get",
        {"name": model, "username": user},
    )
    if status == 200 and isinstance(body, dict):
        perm = body.get("registered_model_permission", {})
        if isinstance(perm, dict) and perm.get("permission"):
            return str(perm["permission"])
    return None


def denied(project: Project, what: str = "change aliases of") -> RegistryError:
    """The one line for a write the store refused with 403."""
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if not user and backends.kind(project.registry_uri) == "postgresql":
        user = urllib.parse.urlsplit(project.registry_uri).username
    who = f"user {user}" if user else "you"
    return RegistryError(
        f"permission denied: {who} may not {what} model {project.config.model_name} on "
        f"{backends.redact(project.registry_uri)} (ask an admin for EDIT)"
    )
