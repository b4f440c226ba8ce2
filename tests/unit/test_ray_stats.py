"""The Ray runner's host-process lookup without a cluster: what counts as this host, and
answers that stay empty (never an error) when the job cannot be reached."""

from __future__ import annotations

import time

import psutil
from workbench_plugins.ray_stats import JobProcesses, is_local


def test_this_hosts_addresses_are_local_and_others_are_not() -> None:
    ours = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
    assert is_local("127.0.0.1") and is_local("::1")
    assert all(is_local(ip) for ip in ours if "." in ip)
    assert not is_local("203.0.113.9") and not is_local("")


def test_a_bad_handle_or_a_closed_port_is_empty_and_quick() -> None:
    jobs = JobProcesses()
    started = time.monotonic()
    assert jobs.stats("not-a-handle") == {} and jobs.pids("") == []
    assert jobs.stats("wb-x@http://127.0.0.1:9") == {}  # the discard port: closed
    assert time.monotonic() - started < 5
