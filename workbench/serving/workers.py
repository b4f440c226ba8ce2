"""Several inference server processes on one port: `python -m workbench.serving --workers N`.

The supervisor binds the listening socket once (a busy port is still one clear line), then
forks N workers that inherit it: the kernel hands each new connection to whichever worker
accepts it first, so an idle worker takes the next one, and a dead worker's queued
connections stay queued for the others. The supervisor itself holds no model and runs no
thread (it is safe to fork from); it restarts a worker that dies, and on SIGTERM or SIGINT
passes SIGTERM on and waits for every worker to flush its prediction log.

What the workers share, and how:
- the deployment state file is the one source of truth: every worker polls it and swaps its
  routing itself, so the canary split is the same decision everywhere;
- counters live in prometheus-client's multiprocess files (workbench.serving.shared_metrics):
  `/metrics` from any worker is the merge of all of them;
- one worker is the leader (it holds an flock; when it dies, another takes it on its next
  poll): it judges the canary on the merged counts, rolls it back once, writes the server's
  report (applied generation: the lowest any worker has applied) and the live window figures
  every worker's `/deployment` shows;
- each worker writes its own prediction log files (unique names; the log's manifest is
  updated under a lock), so a worker killed with -9 loses at most one flush interval.
"""

from __future__ import annotations

import contextlib
import faulthandler
import fcntl
import json
import mmap
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

from workbench.errors import UsageError
from workbench.project import Project
from workbench.serving import deployments
from workbench.serving.canary_rule import LiveWindow, WindowStats, judge
from workbench.serving.log_rows import one_line
from workbench.serving.prediction_log import PredictionLogger
from workbench.serving.routes import Routes
from workbench.serving.server import InferenceServer, run_app

#: A worker that dies sooner than this after its start counts as failing to start.
QUICK_DEATH_S = 5.0
#: Quick deaths in a row of one worker slot before the supervisor gives up.
MAX_QUICK_DEATHS = 5
STOP_TIMEOUT_S = 30.0
#: The shared rollback flag: (canary version, routes generation), little-endian int64s.
VETO = struct.Struct("<qq")


def default_workers() -> int:
    """One per core this process may run on, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def workers_for(project: Project, given: int | None) -> int:
    """--workers, else [serving].workers, else one per core (at most 8)."""
    workers = given if given is not None else project.config.serving.workers
    if workers is None:
        return default_workers()
    if workers < 1:
        raise UsageError(f"--workers must be 1 or more (got {workers})")
    return workers


class SharedView(LiveWindow):
    """A variant's window as the leader judged it over every worker's requests; feeding it
    is a no-op (the shared counters are the input)."""

    def __init__(self, owner: WorkerServer, variant: str) -> None:
        super().__init__(owner.project.config.serving.canary.window_s, cap=1)
        self.owner, self.variant = owner, variant

    def add(self, latency_ms: float, error: bool, now: float | None = None) -> None:
        return None

    def clear(self) -> None:
        return None

    def stats(self, now: float | None = None) -> WindowStats:
        return self.owner.live_stats(self.variant)


class WorkerServer(InferenceServer):
    """One worker: the inference server, with shared counters and a leader's duties."""

    def __init__(
        self,
        project: Project,
        logger: PredictionLogger,
        *,
        index: int,
        workers: int,
        shared: Path,
        supervisor: int,
        started: float,
        **kwargs: Any,
    ) -> None:
        from workbench.serving.shared_metrics import AggregateWindow, SharedMetrics

        super().__init__(project, logger, **kwargs)
        self.index, self.workers, self.shared, self.supervisor = index, workers, shared, supervisor
        self.shared_metrics = SharedMetrics(started, workers)
        self.metrics = self.shared_metrics
        self.aggregate = AggregateWindow(self.shared_metrics, self.windows["canary"].window_s)
        self.windows = {v: SharedView(self, v) for v in ("production", "canary")}
        self.tag = f"[worker {index}] "
        self.extra_headers = [(b"x-worker-pid", str(os.getpid()).encode())]
        self.leader = False
        self._lock_fd: int | None = None
        self._live: tuple[float, dict[str, Any]] = (0.0, {})
        self._reported: tuple[int, float] = (-2, 0.0)  # (generation, when)
        # The leader's rollback, seen by every worker at once (before the state file says
        # so): (canary version, generation of the routes it was rolled back from).
        with open(shared / "veto", "r+b") as fh:
            self._veto = mmap.mmap(fh.fileno(), VETO.size)

    def before_serving(self) -> None:
        """Accept no connection before the model is loaded (or has failed to): the others
        on the socket answer meanwhile, so a starting worker never answers 503."""
        while self.routes is None and self.last_error is None and not self._stop.is_set():
            time.sleep(0.05)

    # --- leadership ---------------------------------------------------------------------

    def _try_lead(self) -> None:
        if self.leader:
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self.shared / "leader.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        self.leader = True
        canary = self.routes.canary if self.routes is not None else None
        self.aggregate.canary_started(canary.version if canary is not None else None)

    def publish(self, applied: int, last_report: float, changed: bool = False) -> float:
        """Each poll: this worker's gauges; the leader also samples the merged counts, shares
        the live window and writes the server's report."""
        self.shared_metrics.sync(self, applied)
        self._try_lead()
        if not self.leader:
            return last_report
        totals, gauges = self.shared_metrics.read()
        self.aggregate.sample(totals)
        live = {v: _stats_dict(self.aggregate.stats(v)) for v in ("production", "canary")}
        _write_json(self.shared / "live.json", live)
        # Applied means applied by every worker: until all of them serve, the lowest is -1.
        lowest = int(gauges.get("applied", -1))
        if gauges.get("up", 0) < self.workers:
            lowest = -1
        generation, when = self._reported
        if lowest != generation or time.monotonic() - when > 2.0:
            report = {**self.report(lowest), "pid": self.supervisor, "workers": self.workers}
            report["worker_pids"] = gauges.get("pids", [])
            deployments.write_server(self.project, report)
            self._reported = (lowest, time.monotonic())
        return time.monotonic()

    def live_stats(self, variant: str) -> WindowStats:
        if self.leader:
            return self.aggregate.stats(variant)
        at, live = self._live
        if time.monotonic() - at > 0.2:
            try:
                live = json.loads((self.shared / "live.json").read_text())
            except (OSError, ValueError):
                live = {}
            self._live = (time.monotonic(), live)
        got = live.get(variant) or {}
        return WindowStats(int(got.get("requests", 0)), int(got.get("errors", 0)), got.get("p99"))

    # --- the canary ---------------------------------------------------------------------

    def vetoed(self, routes: Routes) -> bool:
        version, generation = VETO.unpack_from(self._veto)
        canary = routes.canary
        return canary is not None and canary.version == version and routes.generation <= generation

    def canary_started(self, version: int | None) -> None:
        if self.leader:
            self.aggregate.canary_started(version)
            self.value_watch.reset()

    def _judge_canary(self, rule: Any) -> None:
        if not self.leader or self.routes is None or self.routes.canary is None:
            return
        prod, canary = self.aggregate.stats("production"), self.aggregate.stats("canary")
        prod, canary = self.value_watch.apply(rule, prod, canary, self.routes.production.version)
        reason = judge(rule, prod, canary)
        if reason is None:
            return
        version = self.routes.canary.version
        VETO.pack_into(self._veto, 0, version, self.routes.generation)  # every worker, now
        self.routes = Routes(self.routes.production, generation=self.routes.generation)
        why = f"auto-rollback: {reason} (over {self.workers} workers)"
        if deployments.rollback_canary_once(project=self.project, version=version, reason=why):
            self.say(why)


def _stats_dict(stats: WindowStats) -> dict[str, Any]:
    return {"requests": stats.requests, "errors": stats.errors, "p99": stats.p99_ms}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


# --- the supervisor ---------------------------------------------------------------------


def supervise(
    project: Project,
    sock: socket.socket,
    url: str,
    workers: int,
    server_kwargs: dict[str, Any],
) -> int:
    """Fork `workers` workers on `sock`; restart the ones that die; stop them all on SIGTERM
    or SIGINT. Returns the exit status."""
    from workbench.serving.shared_metrics import ENV

    shared = Path(tempfile.mkdtemp(prefix="workbench-serve-"))
    (shared / "metrics").mkdir()
    (shared / "veto").write_bytes(VETO.pack(0, -1))
    os.environ[ENV] = str(shared / "metrics")  # before any worker imports prometheus_client
    pool = _Pool(project, sock, workers, shared, server_kwargs)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: pool.signals.append(signum))
    for slot in range(workers):
        pool.spawn(slot)
    pids = ", ".join(map(str, pool.pids.values()))
    print(f"{workers} workers listen at {url} (pids {pids}; supervisor {os.getpid()})", flush=True)
    try:
        while not pool.signals:
            pool.tend()
            time.sleep(0.1)
    finally:
        _stop_all(pool.pids)
        written = _rows_written(shared / "metrics")
        deployments.clear_server(project, os.getpid())
        shutil.rmtree(shared, ignore_errors=True)
        print(f"stopped; {written} predictions logged by {workers} workers", flush=True)
    return pool.status


class _Pool:
    """The supervisor's workers: which pid serves which slot, and restarting the dead."""

    def __init__(
        self,
        project: Project,
        sock: socket.socket,
        workers: int,
        shared: Path,
        server_kwargs: dict[str, Any],
    ) -> None:
        self.setup: dict[str, Any] = {"project": project, "sock": sock, "workers": workers}
        self.setup.update(shared=shared, supervisor=os.getpid(), started=time.time())
        self.setup["server_kwargs"] = server_kwargs
        self.shared = shared
        self.signals: list[int] = []
        self.status = 0
        self.pids: dict[int, int] = {}  # slot -> pid
        self.born: dict[int, float] = {}
        self.quick: dict[int, int] = {}  # quick deaths in a row, per slot
        self.due: dict[int, float] = {}  # slot -> when to start it again

    def spawn(self, slot: int) -> None:
        pid = os.fork()
        if pid == 0:
            _child(slot, **self.setup)
        self.pids[slot], self.born[slot] = pid, time.monotonic()

    def tend(self) -> None:
        """Reap the dead, restart them (backing off when one keeps dying at start)."""
        for pid, code in _reap():
            slot = next((k for k, p in self.pids.items() if p == pid), None)
            if slot is None:
                continue
            del self.pids[slot]
            _forget(self.shared, pid)
            quick = time.monotonic() - self.born[slot] < QUICK_DEATH_S
            self.quick[slot] = self.quick.get(slot, 0) + 1 if quick else 0
            if self.quick[slot] >= MAX_QUICK_DEATHS:
                print(f"error: worker {slot} keeps dying ({_how(code)}); stopping", flush=True)
                self.status = 1
                self.signals.append(signal.SIGTERM)
                return
            delay = min(5.0, 0.25 * 2 ** self.quick[slot]) if self.quick[slot] else 0.0
            print(f"worker {slot} (pid {pid}) {_how(code)}; restarting it", flush=True)
            self.due[slot] = time.monotonic() + delay
        for slot, at in list(self.due.items()):
            if at <= time.monotonic() and not self.signals:
                del self.due[slot]
                self.spawn(slot)


def _reap() -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    while True:
        try:
            pid, code = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return out
        if pid == 0:
            return out
        out.append((pid, code))


def _how(code: int) -> str:
    if os.WIFSIGNALED(code):
        return f"was killed by {signal.Signals(os.WTERMSIG(code)).name}"
    return f"exited with {os.waitstatus_to_exitcode(code)}"


def _forget(shared: Path, pid: int) -> None:
    """A dead worker's live gauges go; its counters stay in the totals."""
    from prometheus_client import multiprocess

    forget: Any = multiprocess.mark_process_dead
    with contextlib.suppress(OSError):
        forget(pid, str(shared / "metrics"))


def _stop_all(pids: dict[int, int]) -> None:
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    left = set(pids.values())
    while left and time.monotonic() < deadline:
        left -= {pid for pid, _ in _reap()}
        time.sleep(0.05)
    for pid in left:  # hung: its log rows of the last interval are lost
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _rows_written(path: Path) -> int:
    from workbench.serving.shared_metrics import _collect

    try:
        for family in _collect(str(path)):
            if family.name == "workbench_prediction_log_rows_written":
                return int(sum(s.value for s in family.samples if s.name.endswith("_total")))
    except (OSError, ValueError):
        pass
    return 0


def _child(
    slot: int,
    *,
    project: Project,
    sock: socket.socket,
    workers: int,
    shared: Path,
    supervisor: int,
    started: float,
    server_kwargs: dict[str, Any],
) -> NoReturn:
    """A worker's life, in the forked process: it never returns into the supervisor's code."""
    code = 1
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        _die_with(supervisor)
        faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1: its stacks
        cfg = project.config.serving
        logger = PredictionLogger(project.logs_root, cfg.log_max_rows, cfg.log_interval_s)
        app = WorkerServer(
            project, logger, index=slot, workers=workers, shared=shared,
            supervisor=supervisor, started=started, **server_kwargs,
        )  # fmt: skip
        try:
            run_app(app, sock)
        finally:
            app.shared_metrics.sync(app, -1)  # the rows the final flush wrote count too
            app.say(f"stopped; {logger.written} predictions logged")
        code = 0
    except BaseException as exc:  # one line, then this process ends
        with contextlib.suppress(Exception):
            print(f"error: worker {slot}: {one_line(exc)}", file=sys.stderr, flush=True)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _die_with(parent: int) -> None:
    """SIGTERM this worker when the supervisor dies (Linux: prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)
