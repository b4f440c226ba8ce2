"""The StoreReader of an MLflow store in PostgreSQL: MLflow's own tables read directly with
psycopg2, the same SQL as the SQLite store (mlflow_tables.py), without importing mlflow.

psycopg2 imports in about 30 ms, SQLAlchemy core in about 210 ms and mlflow in about 1.5 s,
so this module uses the bare driver. One connection is opened on first use and kept; every
read is one read-only REPEATABLE READ transaction (its queries see one snapshot), and a dropped
connection is reopened once. A database that does not exist yet, or that MLflow has not made
its tables in, reads as empty. The password comes from the URI, else libpq's usual places
(PGPASSWORD, ~/.pgpass); it never appears in `location` or an error.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from workbench.errors import WorkbenchError
from workbench.store import mlflow_tables as mt
from workbench.store.mlflow_tables import MetricPoint, StoreModelVersion, StoreRun

T = TypeVar("T")
CONNECT_TIMEOUT_S = 10


def libpq_url(url: str) -> str:
    """`url` as libpq takes it: SQLAlchemy's `postgresql+psycopg2://` driver suffix dropped."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def without_password(url: str) -> str:
    """`url` with the password (if any) left out, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


class _PgTables:
    def __init__(self, cur: Any, known: set[str]) -> None:
        self.cur = cur
        self.known = known  # tables seen to exist on this connection (MLflow never drops one)

    def rows(self, sql: str, args: Sequence[object] = ()) -> Iterable[tuple[Any, ...]]:
        self.cur.execute(sql.replace("?", "%s"), tuple(args))
        rows: list[tuple[Any, ...]] = self.cur.fetchall()
        return rows

    def has(self, *tables: str) -> bool:
        for table in set(tables) - self.known:
            self.cur.execute("SELECT to_regclass(%s)", (table,))
            if self.cur.fetchone()[0] is None:
                return False
            self.known.add(table)
        return True


class SqlReader:
    """Reads an MLflow store kept in PostgreSQL (`postgresql[+psycopg2]://user[:pw]@host/db`)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.location = without_password(url)
        self._con: Any = None
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def _error(self, exc: BaseException) -> WorkbenchError:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        first = first.replace(self.url, self.location)
        return WorkbenchError(f"cannot read the MLflow store at {self.location}: {first}")

    def _connect(self) -> Any:
        """An open connection, or None when the database does not exist (yet)."""
        try:
            import psycopg2
        except ImportError:
            raise WorkbenchError(
                f"reading the MLflow store at {self.location} needs psycopg2: "
                "pip install 'workbench[team]'"
            ) from None
        dsn = libpq_url(self.url)
        kwargs: dict[str, Any] = {}
        if "connect_timeout" not in dsn:
            kwargs["connect_timeout"] = CONNECT_TIMEOUT_S
        try:
            con = psycopg2.connect(dsn, **kwargs)
        except psycopg2.OperationalError as exc:
            if 'database "' in str(exc) and "does not exist" in str(exc):
                return None
            raise self._error(exc) from None
        except psycopg2.Error as exc:  # a malformed URI (ProgrammingError)
            raise self._error(exc) from None
        con.set_session(readonly=True, isolation_level="REPEATABLE READ", autocommit=False)
        return con

    @contextmanager
    def _tables(self) -> Iterator[mt.Tables | None]:
        import psycopg2

        with self._lock:
            for attempt in (1, 2):
                if self._con is None or self._con.closed:
                    self._con = self._connect()
                if self._con is None:
                    yield None
                    return
                try:
                    with self._con.cursor() as cur:
                        cur.execute("SELECT 1")
                    break
                except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                    self._drop()
                    if attempt == 2:
                        raise self._error(exc) from None
            try:
                with self._con.cursor() as cur:
                    yield _PgTables(cur, self._known)
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                self._drop()
                raise self._error(exc) from None
            except psycopg2.Error as exc:
                raise self._error(exc) from None
            finally:
                if self._con is not None and not self._con.closed:
                    self._con.rollback()  # read-only: nothing to commit; ends the snapshot

    def _drop(self) -> None:
        if self._con is not None:
            with contextlib.suppress(Exception):  # already broken
                self._con.close()
        self._con = None
        self._known = set()

    def _read(self, fn: Callable[[mt.Tables], T], empty: T) -> T:
        with self._tables() as t:
            return empty if t is None else fn(t)

    def close(self) -> None:
        with self._lock:
            self._drop()

    def read_runs(self, since_ms: int | None = None) -> list[StoreRun]:
        return self._read(lambda t: mt.runs_of(t, since_ms), [])

    def read_metric_history(self, run_ids: list[str]) -> dict[str, list[MetricPoint]]:
        return self._read(lambda t: mt.metric_history_of(t, run_ids), {})

    def read_model_versions(self, name: str | None = None) -> list[StoreModelVersion]:
        return self._read(lambda t: mt.model_versions_of(t, name), [])

    def read_aliases(self, name: str) -> dict[str, int]:
        return self._read(lambda t: mt.aliases_of(t, name), {})

    def read_latest_metrics(self, run_ids: list[str]) -> dict[str, dict[str, float]]:
        return self._read(lambda t: mt.latest_metrics_of(t, run_ids), {})

    def read_version_tags(self, name: str, keys: Iterable[str]) -> list[tuple[int, str, str]]:
        wanted = list(keys)
        return self._read(lambda t: mt.version_tags_of(t, name, wanted), [])

    def running_run_ids(self, tag: str, value: str, run_id: str | None = None) -> list[str]:
        return self._read(lambda t: mt.running_ids_of(t, tag, value, run_id), [])

    def logged_model_location(self, model_id: str) -> str | None:
        sql = mt.LOGGED_MODEL_SQL
        return self._read(lambda t: mt.one_of(t, "logged_models", sql, model_id), None)

    def run_artifact_uri(self, run_id: str) -> str | None:
        return self._read(lambda t: mt.one_of(t, "runs", mt.RUN_ARTIFACT_SQL, run_id), None)
