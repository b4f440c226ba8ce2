"""The StoreReader of an MLflow tracking server (http/https): MLflow's REST API read with
`requests`, without importing mlflow (requests imports in about 0.1 s, mlflow in about 1.5 s).

Credentials are read as MLflow reads them: MLFLOW_TRACKING_USERNAME and _PASSWORD (basic
auth), else MLFLOW_TRACKING_TOKEN (bearer); MLFLOW_TRACKING_INSECURE_TLS,
MLFLOW_TRACKING_SERVER_CERT_PATH (a CA bundle) and MLFLOW_TRACKING_CLIENT_CERT_PATH. A refused
login (401), a denied search (403) or a server that cannot be reached is one WorkbenchError
line naming the server. The auth plugin answers 403 for a run or logged model id it does not
know, so a lookup by id reads 403 and 404 as "not in the store".

The first full read fetches pages in parallel (rest_pages.py); `read_runs(since_ms)` asks for
runs started, ended or still running since then (three searches, merged by run id): MLflow's
search has no OR and no "metric logged since", so a metric logged on a run that had already
ended before `since_ms` is only seen by a full read.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from workbench.errors import WorkbenchError
from workbench.store import rest_pages
from workbench.store.mlflow_tables import MetricPoint, StoreModelVersion, StoreRun

API = "/api/2.0/mlflow"
TIMEOUT_S = (10.0, 120.0)  # connect, read
WORKERS = 8


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def _reason(exc: BaseException) -> str:
    """The useful end of a requests exception (`[Errno 111] Connection refused`)."""
    text = str(exc)
    found = re.findall(r"\[Errno -?\d+\] [^'\")\]]+|certificate verify failed[^'\")\]]*", text)
    if found:
        return str(found[-1]).strip()
    if "timed out" in text.lower():
        return "timed out"
    return type(exc).__name__


def _quoted(value: str) -> str:
    """`value` as a string literal in MLflow's search filter."""
    return f'"{value}"' if "'" in value else f"'{value}'"


class RestReader:
    """Reads an MLflow tracking server at `base_url` (http://host:5000, https://...)."""

    def __init__(self, base_url: str, workers: int = WORKERS) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        netloc = parts.netloc.rsplit("@", 1)[-1]
        self.base = urlunsplit(parts._replace(netloc=netloc))
        self.location = self.base
        self.workers = workers
        self._session: Any = None
        self._lock = threading.Lock()

    # --- transport -----------------------------------------------------------------------------

    def _http(self) -> Any:
        with self._lock:
            if self._session is None:
                self._session = self._new_session()
            return self._session

    def _new_session(self) -> Any:
        import requests
        from requests.adapters import HTTPAdapter

        session = requests.Session()
        session.mount("http://", HTTPAdapter(pool_maxsize=self.workers))
        session.mount("https://", HTTPAdapter(pool_maxsize=self.workers))
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        if user and password:
            session.auth = (user, password)
        elif token:
            session.headers["Authorization"] = f"Bearer {token}"
        cert_path = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
        if _env_true("MLFLOW_TRACKING_INSECURE_TLS"):
            if cert_path:
                raise WorkbenchError(
                    "MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH "
                    "cannot both be set"
                )
            session.verify = False
        elif cert_path:
            session.verify = cert_path
        client_cert = os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH")
        if client_cert:
            session.cert = client_cert
        return session

    def call(
        self, path: str, params: dict[str, Any] | None = None, body: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The JSON answer of GET (or POST with `body`) `path`; None when the server answers
        404 RESOURCE_DOES_NOT_EXIST. Anything else that is not a 200 raises one line."""
        import requests

        session = self._http()
        url = f"{self.base}{API}/{path}"
        try:
            if body is None:
                resp = session.get(url, params=params, timeout=TIMEOUT_S)
            else:
                resp = session.post(url, json=body, timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            raise WorkbenchError(
                f"cannot reach the MLflow tracking server at {self.location}: {_reason(exc)}"
            ) from None
        if resp.status_code == 200:
            try:
                answer: dict[str, Any] = resp.json()
            except ValueError:
                raise WorkbenchError(
                    f"the MLflow tracking server at {self.location} answered {path} with "
                    "something that is not JSON (is it an MLflow server?)"
                ) from None
            return answer
        self._refused(path, resp)
        return None

    def _refused(self, path: str, resp: Any) -> None:
        """Raise the one line of a refused call; return on 404 RESOURCE_DOES_NOT_EXIST."""
        who = os.environ.get("MLFLOW_TRACKING_USERNAME") or (
            "the token" if os.environ.get("MLFLOW_TRACKING_TOKEN") else "no credentials"
        )
        if resp.status_code == 401:
            raise WorkbenchError(
                f"the MLflow tracking server at {self.location} refused the login ({who}; 401): "
                "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or "
                "MLFLOW_TRACKING_TOKEN"
            )
        if resp.status_code == 403:
            raise WorkbenchError(
                f"the MLflow tracking server at {self.location} denied {path} to {who} (403)"
            )
        try:
            error = resp.json()
        except ValueError:
            error = {}
        if resp.status_code == 404 and error.get("error_code") == "RESOURCE_DOES_NOT_EXIST":
            return  # the caller reads it as "not in the store"
        message = str(error.get("message") or resp.text or resp.reason).strip()
        first = (message.splitlines() or [""])[0][:300]
        raise WorkbenchError(
            f"the MLflow tracking server at {self.location} answered {path} with "
            f"{resp.status_code}: {first}"
        )

    def _lookup(self, path: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """A GET of one object by id: None when missing (404, or 403 from the auth plugin,
        which cannot check the permission of an id it does not know)."""
        try:
            return self.call(path, params)
        except WorkbenchError as exc:
            if "(403)" in str(exc):
                return None
            raise

    def _pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.workers, thread_name_prefix="wb-rest")

    # --- runs ----------------------------------------------------------------------------------

    def experiments(self) -> dict[str, str]:
        """Experiment id -> name, deleted experiments included."""
        out: dict[str, str] = {}
        token: str | None = None
        while True:
            body: dict[str, Any] = {"max_results": 1000, "view_type": "ALL"}
            if token:
                body["page_token"] = token
            answer = self.call("experiments/search", body=body) or {}
            for exp in answer.get("experiments", []):
                out[str(exp["experiment_id"])] = exp.get("name", "")
            token = answer.get("next_page_token")
            if not token:
                return out

    def read_runs(self, since_ms: int | None = None) -> list[StoreRun]:
        names = self.experiments()
        if not names:
            return []
        ids = sorted(names)
        with self._pool() as pool:
            if since_ms is None:
                raw = rest_pages.all_runs(self.call, pool, ids)
            else:
                raw = rest_pages.changed_runs(self.call, pool, ids, int(since_ms))
        runs = [rest_pages.to_store_run(run, names) for run in raw.values()]
        return runs

    def _get_run(self, run_id: str) -> dict[str, Any] | None:
        answer = self._lookup("runs/get", {"run_id": run_id})
        return None if answer is None else answer.get("run")

    def read_latest_metrics(self, run_ids: list[str]) -> dict[str, dict[str, float]]:
        if not run_ids:
            return {}
        with self._pool() as pool:
            got = list(pool.map(self._get_run, run_ids))
        out: dict[str, dict[str, float]] = {}
        for run_id, run in zip(run_ids, got, strict=True):
            if run is not None:
                metrics = run.get("data", {}).get("metrics", [])
                out[run_id] = {m["key"]: float(m["value"]) for m in metrics}
        return out

    def _history(self, run_id: str, key: str) -> list[MetricPoint]:
        points: list[MetricPoint] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"run_id": run_id, "metric_key": key, "max_results": 25000}
            if token:
                params["page_token"] = token
            answer = self.call("metrics/get-history", params) or {}
            for m in answer.get("metrics", []):
                value = float(m["value"])
                points.append((key, int(m.get("step", 0)), value, int(m.get("timestamp", 0))))
            token = answer.get("next_page_token")
            if not token:
                return points

    def read_metric_history(self, run_ids: list[str]) -> dict[str, list[MetricPoint]]:
        latest = self.read_latest_metrics(run_ids)
        pairs = [(run_id, key) for run_id, metrics in latest.items() for key in sorted(metrics)]
        with self._pool() as pool:
            got = list(pool.map(lambda pair: self._history(*pair), pairs))
        out: dict[str, list[MetricPoint]] = {}
        for (run_id, _), points in zip(pairs, got, strict=True):
            out.setdefault(run_id, []).extend(points)
        for points in out.values():
            points.sort(key=lambda p: (p[0], p[1], p[3]))
        return out

    def running_run_ids(self, tag: str, value: str, run_id: str | None = None) -> list[str]:
        ids = sorted(self.experiments())
        if not ids:
            return []
        with self._pool() as pool:
            raw = rest_pages.search(self.call, pool, ids, "attributes.status = 'RUNNING'")
        tags = {rid: rest_pages.kv(run.get("data", {}).get("tags")) for rid, run in raw.items()}
        return [rid for rid in raw if rid == run_id or tags[rid].get(tag) == value]

    def run_artifact_uri(self, run_id: str) -> str | None:
        run = self._get_run(run_id)
        uri = None if run is None else run.get("info", {}).get("artifact_uri")
        return str(uri) if uri else None

    def logged_model_location(self, model_id: str) -> str | None:
        answer = self._lookup(f"logged-models/{quote(model_id, safe='')}", {})
        info = ((answer or {}).get("model") or {}).get("info") or {}
        uri = info.get("artifact_uri")
        return str(uri) if uri else None

    # --- the model registry --------------------------------------------------------------------

    def _versions(self, name: str | None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"max_results": 10000}
            if name:
                params["filter"] = f"name = {_quoted(name)}"
            if token:
                params["page_token"] = token
            answer = self.call("model-versions/search", params) or {}
            out += answer.get("model_versions", [])
            token = answer.get("next_page_token")
            if not token:
                return out

    def read_aliases(self, name: str) -> dict[str, int]:
        answer = self.call("registered-models/get", {"name": name})
        model = (answer or {}).get("registered_model") or {}
        return {a["alias"]: int(a["version"]) for a in model.get("aliases", [])}

    def read_model_versions(self, name: str | None = None) -> list[StoreModelVersion]:
        raw = self._versions(name)
        names = sorted({str(v["name"]) for v in raw})
        with self._pool() as pool:
            aliases = dict(zip(names, pool.map(self.read_aliases, names), strict=True))
        out = []
        for v in raw:
            mname, version = str(v["name"]), int(v["version"])
            created = v.get("creation_timestamp")
            out.append(
                StoreModelVersion(
                    name=mname,
                    version=version,
                    run_id=v.get("run_id") or None,
                    source=v.get("source"),
                    status=v.get("status"),
                    created_ms=int(created) if created is not None else None,
                    description=v.get("description"),
                    aliases=sorted(a for a, n in aliases[mname].items() if n == version),
                    tags=rest_pages.kv(v.get("tags")),
                )
            )
        out.sort(key=lambda mv: (mv.name, -mv.version))
        return out

    def read_version_tags(self, name: str, keys: Iterable[str]) -> list[tuple[int, str, str]]:
        wanted = set(keys)
        if not wanted:
            return []
        out = []
        for v in self._versions(name):
            for key, value in rest_pages.kv(v.get("tags")).items():
                if key in wanted:
                    out.append((int(v["version"]), key, value))
        return out
