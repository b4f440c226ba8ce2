"""Resource use of a running Ray job, for the Jobs screen and `workbench jobs` (`stats`, `pids`).

The Jobs API's job details name the node the job's driver runs on; when that node is this
host, the job's processes are read with psutil as the local runner does: the driver (the
`driver_info` pid when the entrypoint joined the cluster, else what the job's supervisor actor
started: the entrypoint's process tree, found through Ray's state API) and the job's own Ray
worker processes on this host (the trials of a sweep). On another host there is nothing to
read cheaply: the answer is empty. Every call is bounded by HTTP_TIMEOUT_S per request and
never raises: a cluster that does not answer, a job gone or ended, is {} / [].
"""

from __future__ import annotations

import contextlib
import socket
from functools import cache
from typing import Any
from urllib.parse import urlparse

import psutil
from workbench_plugins.ray_submit import parse_handle

from workbench.jobs.processes import ProcessCache, usage

#: (connect, read) seconds for each request to the dashboard: the TUI polls these.
HTTP_TIMEOUT_S = (1.0, 2.0)
SUPERVISOR = "_ray_internal_job_actor_{}"


class JobProcesses:
    """The host processes of Ray jobs by handle, keeping each psutil.Process between calls
    (its cpu_percent is the CPU use since the previous call, as for the local runner)."""

    def __init__(self) -> None:
        self._cache = ProcessCache()

    def pids(self, handle: str) -> list[int]:
        return [p.pid for p in self.processes(handle)]

    def stats(self, handle: str) -> dict[str, float]:
        return usage(self.processes(handle))

    def processes(self, handle: str) -> list[psutil.Process]:
        """The running job's processes on this host ([] when it runs elsewhere, ended, or
        anything fails)."""
        try:
            submission_id, address = parse_handle(handle)
            roots = _roots(address.rstrip("/"), submission_id)
        except Exception:
            return []
        found: dict[int, psutil.Process] = {}
        for pid, only_children in roots.items():
            proc = self._cache.get(pid)
            if proc is not None:
                for member in self._cache.family(proc, with_root=not only_children):
                    found.setdefault(member.pid, member)
        return list(found.values())


def _roots(address: str, submission_id: str) -> dict[int, bool]:
    """The pids the job's processes hang from on this host, each with whether only its
    descendants are the job's (the supervisor actor is Ray's, what it started is the job's)."""
    info = _get(f"{address}/api/jobs/{submission_id}")
    if not isinstance(info, dict) or info.get("status") != "RUNNING":
        return {}
    driver = info.get("driver_info") or {}
    node_ip = (
        driver.get("node_ip_address")
        or urlparse(str(info.get("driver_agent_http_address") or "")).hostname
    )
    if not node_ip or not is_local(str(node_ip)):
        return {}
    roots: dict[int, bool] = {}
    if driver.get("pid"):
        roots[int(driver["pid"])] = False
        for pid in _job_workers(address, str(driver.get("id") or info.get("job_id") or "")):
            roots.setdefault(pid, False)
    else:
        supervisor = _state(address, "actors", [("name", SUPERVISOR.format(submission_id))])
        for actor in supervisor:
            if actor.get("state") == "ALIVE" and actor.get("pid"):
                roots[int(actor["pid"])] = True
    return roots


def _job_workers(address: str, job_id: str) -> list[int]:
    """The worker processes running the job's tasks and actors now (a sweep's trials), on
    this host."""
    if not job_id:
        return []
    pids: set[int] = set()
    running = (("tasks", "RUNNING", "worker_pid"), ("actors", "ALIVE", "pid"))
    for resource, state, pid_key in running:
        for row in _state(address, resource, [("job_id", job_id), ("state", state)]):
            pid = row.get(pid_key)
            if pid and _node_is_local(address, str(row.get("node_id") or "")):
                pids.add(int(pid))
    return sorted(pids)


_NODE_IPS: dict[str, str] = {}


def _node_is_local(address: str, node_id: str) -> bool:
    if node_id and node_id not in _NODE_IPS:
        for node in _state(address, "nodes", []):
            if node.get("node_id") and node.get("node_ip"):
                _NODE_IPS[str(node["node_id"])] = str(node["node_ip"])
    return is_local(_NODE_IPS.get(node_id, ""))


def _state(address: str, resource: str, filters: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Ray's state API (`ray.util.state`'s REST form on the dashboard), equality filters."""
    params: list[tuple[str, str]] = [("detail", "1"), ("timeout", str(int(HTTP_TIMEOUT_S[1])))]
    for key, value in filters:
        params += [("filter_keys", key), ("filter_predicates", "="), ("filter_values", value)]
    doc = _get(f"{address}/api/v0/{resource}", params)
    try:
        rows = doc["data"]["result"]["result"]
    except (KeyError, TypeError):
        return []
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _get(url: str, params: list[tuple[str, str]] | None = None) -> Any:
    import requests

    try:
        got = requests.get(url, params=params, timeout=HTTP_TIMEOUT_S)
        return got.json() if got.ok else None
    except (requests.RequestException, ValueError):
        return None


def is_local(ip: str) -> bool:
    """Is `ip` an address of this host (a loopback one, or one of its interfaces')?"""
    return ip.startswith("127.") or ip in ("::1", "localhost") or ip in _local_addresses()


@cache
def _local_addresses() -> frozenset[str]:
    found = {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs}
    with contextlib.suppress(OSError):
        found.update(socket.gethostbyname_ex(socket.gethostname())[2])
    return frozenset(found)
