"""The target of `workbench store migrate`: its URI checked, reached, and its MLflow client.

A target is a database (`postgresql+psycopg2://...`, any SQLAlchemy URI MLflow takes) or a
tracking server (`http(s)://...`, credentials from MLFLOW_TRACKING_USERNAME / PASSWORD, as
MLflow reads them). A URI of another form is a usage error (exit 2); a target that does not
answer is one line (exit 1), found before anything is written.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from workbench.errors import ConfigError, UsageError, WorkbenchError

DATABASES = ("postgresql", "mysql", "mssql", "sqlite")
_HEX = re.compile(r"[0-9a-f]{32}")


def kind(uri: str) -> str:
    """`server` or `database`; anything else is a UsageError naming the forms."""
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("http", "https") and urlsplit(uri).netloc:
        return "server"
    if scheme.split("+", 1)[0] in DATABASES and "://" in uri:
        return "database"
    raise UsageError(
        f"--to {masked(uri)}: not a tracking URI (use postgresql+psycopg2://user@host/db "
        "or http(s)://host:port)"
    )


def masked(uri: str) -> str:
    """The URI with any password replaced by ***, for messages and files."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def without_password(uri: str) -> str:
    """The URI to write into workbench.toml: no password (MLflow's env vars or PGPASSWORD
    give it)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}"))


def probe(uri: str) -> None:
    """Reach the target once, quickly, before anything is written: one line if it fails."""
    if kind(uri) == "server":
        _probe_server(uri)
    else:
        _probe_database(uri)


def _probe_server(uri: str) -> None:
    import requests

    try:
        answer = requests.get(uri.rstrip("/") + "/health", timeout=10)
    except requests.RequestException as exc:
        raise WorkbenchError(
            f"cannot reach the MLflow server at {masked(uri)}: {_why(exc)}"
        ) from None
    if answer.status_code >= 500:
        raise WorkbenchError(
            f"the MLflow server at {masked(uri)} answered HTTP {answer.status_code} on /health"
        )


def _probe_database(uri: str) -> None:
    import sqlalchemy

    args = {"connect_timeout": 10} if uri.startswith("postgresql") else {}
    try:
        engine = sqlalchemy.create_engine(uri, connect_args=args)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"--to {masked(uri)}: the database driver is not installed ({exc.name}; "
            "pip install 'workbench-mlops[team]')"
        ) from None
    except sqlalchemy.exc.ArgumentError as exc:
        raise UsageError(f"--to {masked(uri)}: {_why(exc)}") from None
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise WorkbenchError(f"cannot reach the database at {masked(uri)}: {_why(exc)}") from None
    finally:
        engine.dispose()


def has_mlflow_tables(uri: str) -> bool:
    """Whether a database target already holds MLflow's schema (a dry run creates none)."""
    if kind(uri) == "server":
        return True
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri)
    try:
        return "runs" in sqlalchemy.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def client(uri: str) -> Any:
    """MLflow's client on the target (a database's schema is created on first use)."""
    from mlflow import MlflowClient

    from workbench.store import tracking

    tracking._quiet()
    # set_terminated prints a "View run" URL on stdout for a server: not in a --json answer
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    try:
        made = MlflowClient(tracking_uri=uri, registry_uri=uri)
        made.search_experiments(max_results=1)  # the credentials and the schema, checked
    except Exception as exc:
        raise WorkbenchError(f"the MLflow store at {masked(uri)} refused: {_why(exc)}") from None
    return made


def _why(exc: BaseException) -> str:
    """An exception's first meaningful line, short (a driver's message has many)."""
    text = str(getattr(exc, "message", None) or exc).strip()
    orig = getattr(exc, "orig", None)
    if orig is not None:
        text = str(orig).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[0] if lines else type(exc).__name__
    if "Connection refused" in text:
        line = "connection refused"
    elif "Max retries exceeded" in line or "NewConnectionError" in line:
        line = "connection refused or host unknown"
    return line[:300]


def is_run_id(text: str) -> bool:
    return bool(_HEX.fullmatch(text))
