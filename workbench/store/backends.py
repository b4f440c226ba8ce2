"""Which MLflow store a project uses, and how Workbench reaches it.

`[store] tracking_uri` (or `WORKBENCH_TRACKING_URI`) picks the kind: the embedded SQLite file
(the default), PostgreSQL (MLflow's tables read directly, the same schema as SQLite), or an
MLflow tracking server over http(s) (its REST API). `reader_for(project)` gives the fast read
path for that kind (reader.py's `StoreReader`), one per project and store, cached.

Credentials never sit in workbench.toml: `[store] username_env / password_env / token_env`
name the variables that hold them. For a tracking server they are copied into the variables
MLflow reads (MLFLOW_TRACKING_USERNAME / PASSWORD / TOKEN); for PostgreSQL the password joins
the URI only at connection time (`connect_uri`), in this process's memory, never in a file or
a job's environment. Whatever the user sees names the store by `redact(uri)`.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from workbench.config_sections import store_uri_problem
from workbench.errors import UsageError, WorkbenchError
from workbench.store.mlflow_tables import SqliteReader

if TYPE_CHECKING:
    from workbench.project import Project
    from workbench.store.reader import StoreReader

#: `[store]` key -> the variable MLflow reads it from.
_MLFLOW_CREDENTIALS = {
    "username_env": "MLFLOW_TRACKING_USERNAME",
    "password_env": "MLFLOW_TRACKING_PASSWORD",
    "token_env": "MLFLOW_TRACKING_TOKEN",
}
#: What a job needs to reach a remote store and its artifacts (copied when set).
CREDENTIAL_VARS = (
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "MLFLOW_S3_ENDPOINT_URL",
    "MLFLOW_S3_IGNORE_TLS",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
)
#: Seconds a reachability check waits for the store to answer.
CONNECT_TIMEOUT_S = 5.0


def kind(uri: str) -> str:
    """'sqlite', 'postgresql' or 'http' (https too)."""
    scheme = uri.partition("://")[0].lower()
    if scheme == "sqlite":
        return "sqlite"
    if scheme.startswith("postgresql"):
        return "postgresql"
    if scheme in ("http", "https"):
        return "http"
    problem = store_uri_problem(uri) or "is not a store URI"
    raise UsageError(f"tracking URI {redact(uri)}: {problem}")


def redact(uri: str) -> str:
    """`uri` without its user and password (what messages show)."""
    try:
        parts = urllib.parse.urlsplit(uri)
    except ValueError:
        return uri.partition("://")[0] + "://..."
    if "@" not in parts.netloc:
        return uri
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _named(project: Project, key: str) -> str | None:
    name = getattr(project.config.store, key)
    return os.environ.get(name) if name else None


def apply_credentials(project: Project) -> None:
    """Copy the `[store] *_env` variables into those MLflow reads, for a tracking server.
    A variable that is unset leaves MLflow's own as it is."""
    if kind(project.tracking_uri) != "http" and kind(project.registry_uri) != "http":
        return
    for key, target in _MLFLOW_CREDENTIALS.items():
        value = _named(project, key)
        if value:
            os.environ[target] = value


def connect_uri(project: Project, uri: str) -> str:
    """The URI to connect with: for PostgreSQL, the user and password from `[store]
    username_env / password_env` joined in (when set and the URI has none)."""
    if kind(uri) != "postgresql":
        return uri
    parts = urllib.parse.urlsplit(uri)
    user = parts.username or _named(project, "username_env")
    password = _named(project, "password_env")
    if not user or (password is None and parts.username):
        return uri
    auth = urllib.parse.quote(user, safe="")
    if password is not None:
        auth += ":" + urllib.parse.quote(password, safe="")
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{auth}@{host}"))


def job_env(project: Project) -> dict[str, str]:
    """What a job's environment needs to reach the project's store: nothing for the embedded
    store; else the store's URIs (without credentials) and the credential variables that are
    set (the `[store] *_env` ones included, by their own names)."""
    if project.is_embedded_store:
        return {}
    env = {
        "WORKBENCH_TRACKING_URI": project.tracking_uri,
        "WORKBENCH_REGISTRY_URI": project.registry_uri,
        "MLFLOW_TRACKING_URI": redact(project.tracking_uri),
        "MLFLOW_REGISTRY_URI": redact(project.registry_uri),
    }
    named = [getattr(project.config.store, key) for key in _MLFLOW_CREDENTIALS]
    for var in (*CREDENTIAL_VARS, *(n for n in named if n)):
        value = os.environ.get(var)
        if value is not None:
            env[var] = value
    return env


def loopback(uri: str) -> bool:
    """Whether `uri` points at this host (a container then needs the host's network)."""
    host = (urllib.parse.urlsplit(uri).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


# -- reaching a remote store --------------------------------------------------------------------


def unreachable(uri: str, why: str) -> WorkbenchError:
    return WorkbenchError(f"cannot reach the MLflow store {redact(uri)}: {why}")


def _ssl_context() -> ssl.SSLContext | None:
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    cert = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
    return ssl.create_default_context(cafile=cert) if cert else None


def _auth_header() -> dict[str, str]:
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if user:
        pair = f"{user}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    return {}


def http_get(uri: str, path: str, params: dict[str, str]) -> tuple[int, Any]:
    """GET `path` on tracking server `uri` with MLflow's credentials: (status, JSON body or
    None). A server that does not answer raises `unreachable`."""
    url = uri.rstrip("/") + path + ("?" + urllib.parse.urlencode(params) if params else "")
    request = urllib.request.Request(url, headers={"Accept": "application/json", **_auth_header()})
    try:
        with urllib.request.urlopen(
            request, timeout=CONNECT_TIMEOUT_S, context=_ssl_context()
        ) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise unreachable(uri, str(reason) or type(reason).__name__) from None
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None


#: URIs (with the credentials used) already found reachable in this process.
_CHECKED: set[tuple[str, str]] = set()


def check_reachable(project: Project, uri: str) -> None:
    """Fail in one line, fast, when the remote store `uri` does not answer or refuses the
    credentials: MLflow itself retries for minutes and ends in a traceback."""
    which = kind(uri)
    if which == "sqlite":
        return
    key = (connect_uri(project, uri), json.dumps(_auth_header()))
    if key in _CHECKED:
        return
    if which == "http":
        status, _ = http_get(
            uri, "/api/2.0/mlflow/experiments/get-by-name", {"experiment_name": "Default"}
        )
        if status == 401:
            user = os.environ.get("MLFLOW_TRACKING_USERNAME")
            who = f"user {user}" if user else "no credentials (set MLFLOW_TRACKING_USERNAME)"
            raise unreachable(uri, f"401 unauthorized: {who} (check MLFLOW_TRACKING_PASSWORD)")
        if status >= 500 or (status >= 300 and status not in (403, 404)):
            raise unreachable(uri, f"the server answered HTTP {status}")
    else:
        _check_postgres(connect_uri(project, uri), uri)
    _CHECKED.add(key)


def _check_postgres(url: str, shown: str) -> None:
    try:
        import psycopg2
    except ImportError:
        raise UsageError(
            f"{redact(shown)} is a PostgreSQL store: install psycopg2 "
            "(pip install 'workbench[team]')"
        ) from None
    dsn = url.replace("postgresql+psycopg2://", "postgresql://").replace(
        "postgresql+psycopg://", "postgresql://"
    )
    try:
        psycopg2.connect(dsn, connect_timeout=int(CONNECT_TIMEOUT_S)).close()
    except psycopg2.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise unreachable(shown, first.removeprefix("connection to server at ")) from None


# -- the fast read path ------------------------------------------------------------------------


#: (store URI, credentials' digest) -> its reader.
_READERS: dict[tuple[str, str], StoreReader] = {}


def reader_for(project: Project, registry: bool = False) -> StoreReader:
    """The fast read path of the project's tracking store (`registry`: its model registry's
    store, the same one unless `[store] registry_uri` says otherwise); one per store and
    credentials, cached."""
    uri = project.registry_uri if registry else project.tracking_uri
    which = kind(uri)
    if which != "sqlite":
        apply_credentials(project)
    url = connect_uri(project, uri)
    digest = hashlib.blake2b(json.dumps(_auth_header()).encode(), digest_size=8).hexdigest()
    key = (url if which != "sqlite" else str(project.mlflow_db), digest)
    reader = _READERS.get(key)
    if reader is None:
        reader = _make_reader(which, url, project)
        _READERS[key] = reader
    return reader


def _make_reader(which: str, url: str, project: Project) -> StoreReader:
    if which == "sqlite":
        path = Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None
        return SqliteReader(path or project.mlflow_db)
    # Imported by name: each lives in its own module, and needs its own client library.
    module, cls = (
        ("workbench.store.sql_reader", "SqlReader")
        if which == "postgresql"
        else ("workbench.store.rest_reader", "RestReader")
    )
    try:
        made = getattr(importlib.import_module(module), cls)(url)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or module
        raise UsageError(
            f"reading the {which} store {redact(url)} needs {missing}, which is not installed "
            "(pip install 'workbench[team]')"
        ) from None
    return cast("StoreReader", made)
