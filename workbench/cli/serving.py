"""CLI commands for serving: serve, deploy, canary (status, traffic, promote, rollback)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from workbench.errors import UsageError
from workbench.names import check_alias, check_name

Handler = Callable[[argparse.Namespace], int]


def _project(args: argparse.Namespace) -> Any:
    from workbench.project import Project

    return Project.load(getattr(args, "project", None))


def _check_port_free(host: str, port: int) -> None:
    """Fail in one line before starting anything when the port is taken (the server binds
    the same way when it starts)."""
    from workbench.serving.server import bind

    bind(host, port).close()


def cmd_serve(args: argparse.Namespace) -> int:
    from workbench.jobs.control import new_job_id, resolve_runner, run_job
    from workbench.serving import deployments

    if args.job_id:
        check_name(args.job_id, "--job-id")
    if args.alias:
        check_alias(args.alias)
    project = _project(args)
    cfg = project.config.serving
    host = args.host or cfg.host
    port = cfg.port if args.port is None else args.port
    alias = args.alias or cfg.alias
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be in 1..65535 (got {port})")
    running = deployments.read_server(project)
    if running:
        raise UsageError(
            f"a server for {project.config.model_name} already runs at {running.get('url')} "
            f"(job {running.get('job_id')}); stop it first: workbench stop {running.get('job_id')}"
        )
    if deployments.production_version(project, alias=alias) is None:
        raise UsageError(
            f"model {project.config.model_name!r} has no version with alias {alias!r} "
            f"(train one: workbench pipeline run --auto-promote, or workbench promote VERSION)"
        )
    _check_port_free(host, port)
    if args.detach:
        return _detach(args, project, host, port)
    notes: list[str] = []
    runner = resolve_runner(project, args.runner, notes)
    why = f" ({notes[0]})" if notes and not str(notes[0]).startswith("cannot reach") else ""
    print(f"runner: {runner.name}{why}", file=sys.stderr, flush=True)
    job_id = args.job_id or new_job_id("serve")
    url = f"http://{host}:{port}"
    server_args = ["--project", str(project.root), "--alias", alias, "--port", str(port)]
    server_args += ["--public-url", url, "--job-id", job_id]
    ports: dict[int, tuple[str, int]] = {}
    if runner.name == "docker":
        server_args += ["--host", "0.0.0.0"]  # inside the container; published on `host` only
        ports = {port: (host, port)}
    else:
        server_args += ["--host", host]
    env = {cfg.token_env: tok} if (tok := os.environ.get(cfg.token_env)) else {}
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    outcome = run_job(
        project,
        "serve",
        "workbench.serving",
        server_args,
        runner,
        on_log=lambda line: print(line, flush=True),
        should_stop=stop.is_set,
        job_id=job_id,
        ports=ports,
        env=env,
    )
    if outcome.status == "stopped":
        return 0
    print(f"error: the server ended: {outcome.reason}", file=sys.stderr)
    return 1


def _detach(args: argparse.Namespace, project: Any, host: str, port: int) -> int:
    from workbench.serving import process as server_process

    job_id, url, pid = server_process.start_detached(
        project, host, port, args.alias, args.runner, args.timeout
    )
    print(f"serving {project.config.model_name} at {url} (job {job_id}, pid {pid})")
    print(f"API docs: {url}/docs; stop it with: workbench stop {job_id}")
    return 0


def _applied_line(project: Any, generation: int, wait_s: float) -> str:
    from workbench.serving import deployments

    started = time.monotonic()
    if deployments.read_server(project) is None:
        return "no server is running: it applies when `workbench serve` starts"
    if deployments.wait_applied(project, generation, wait_s):
        return f"applied by the server in {time.monotonic() - started:.1f} s"
    return f"the server has not applied it after {wait_s:g} s (see workbench canary status)"


def cmd_deploy(args: argparse.Namespace) -> int:
    from workbench.registry import versions as registry
    from workbench.serving import deployments

    project = _project(args)
    if not args.canary:
        if not args.reason:
            raise UsageError("a reason is required to replace production (--reason TEXT)")
        row = registry.promote(project, args.version, args.reason, project.config.serving.alias)
        print(
            f"{row['model']}@{row['alias']}: v{row['from_version'] or '-'} -> v{row['to_version']}"
        )
        if deployments.read_server(project):
            print("the running server follows the alias within a second")
        return 0
    state = deployments.start_canary(
        project, args.version, args.traffic, args.sticky_key, args.reason or ""
    )
    assert state.canary is not None
    sticky = f", sticky by {state.canary.sticky_key}" if state.canary.sticky_key else ""
    applied = _applied_line(project, state.generation, args.wait)
    print(
        f"canary v{state.canary.version} gets {state.canary.traffic * 100:g}% of requests"
        f"{sticky} (generation {state.generation}); {applied}"
    )
    return 0


def cmd_canary_traffic(args: argparse.Namespace) -> int:
    from workbench.serving import deployments

    project = _project(args)
    state = deployments.set_traffic(project, args.percent, args.reason or "")
    assert state.canary is not None
    print(
        f"canary v{state.canary.version} now gets {state.canary.traffic * 100:g}% of requests; "
        f"{_applied_line(project, state.generation, args.wait)}"
    )
    return 0


def _canary_end(args: argparse.Namespace, promote: bool) -> int:
    from workbench.serving import deployments

    project = _project(args)
    canary = deployments.read_state(project).canary
    if promote:
        state = deployments.promote_canary(project, args.reason)
        what = f"promoted to {project.config.serving.alias}"
    else:
        state = deployments.rollback_canary(project, args.reason)
        what = "rolled back; production takes all traffic"
    version = canary.version if canary else "?"
    print(f"canary v{version} {what}; {_applied_line(project, state.generation, args.wait)}")
    return 0


def cmd_canary_promote(args: argparse.Namespace) -> int:
    return _canary_end(args, promote=True)


def cmd_canary_rollback(args: argparse.Namespace) -> int:
    return _canary_end(args, promote=False)


def cmd_canary_status(args: argparse.Namespace) -> int:
    import json

    project = _project(args)
    from workbench.serving import deployments

    report = deployments.status(project, args.window)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    state, server = report["state"], report["server"]
    console = Console()
    where = f"at {server['url']} (job {server.get('job_id')})" if server else "not running"
    console.print(f"[b]{report['model']}[/b] server {where}")
    canary = state.get("canary")
    line = f"production v{report['production_version']}"
    if canary:
        line += f", canary v{canary['version']} at {canary['traffic'] * 100:g}%"
        if canary.get("sticky_key"):
            line += f" (sticky by {canary['sticky_key']})"
    console.print(line + f"; generation {state['generation']}")
    table = Table(title=f"last {args.window:g} s, from the prediction log")
    for col in ("variant", "version", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    table.add_column("mean pred", justify="right")
    table.add_column("metric", justify="right")

    def num(value: Any, fmt: str = "{:.2f}") -> str:
        return "-" if value is None else fmt.format(value)

    for name, s in sorted(report["variants"].items(), key=lambda kv: kv[0] != "production"):
        metric = f"{s['metric_name']} {s['metric']:.4f}" if s.get("metric") is not None else "-"
        table.add_row(
            name,
            ",".join(map(str, s["versions"])),
            num(s["rps"], "{:.1f}"),
            num(s["p50_ms"]),
            num(s["p95_ms"]),
            num(s["p99_ms"]),
            f"{s['error_rate']:.2%}",
            num(s["prediction_mean"], "{:.4f}"),
            metric,
        )
    if not report["variants"]:
        console.print("no predictions in the window")
    else:
        console.print(table)
    return 0


def register(
    sub: Any,
    add: Callable[..., argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    jsonp: argparse.ArgumentParser,
    parser_class: type[argparse.ArgumentParser],
) -> None:
    sp = add("serve", cmd_serve, "serve a registered model over HTTP (a container or a process)")
    sp.add_argument("--alias", help="the alias to serve (default: [serving].alias, production)")
    sp.add_argument("--port", type=int, help="default: [serving].port (8080)")
    sp.add_argument(
        "--host",
        help="address to listen on (default: [serving].host, 127.0.0.1: this machine only)",
    )
    sp.add_argument(
        "--runner",
        choices=["auto", "local", "docker"],
        help="where it runs (default: [runner].default; auto = docker if an engine answers)",
    )
    sp.add_argument("--detach", "-d", action="store_true", help="run in the background")
    sp.add_argument(
        "--timeout", type=float, default=300.0, help="with --detach: seconds to wait for ready"
    )
    sp.add_argument("--job-id", help=argparse.SUPPRESS)

    sp = add("deploy", cmd_deploy, "deploy a version: as a canary, or straight to production")
    sp.add_argument("version", type=int, metavar="VERSION")
    sp.add_argument("--canary", action="store_true", help="serve it beside production")
    sp.add_argument(
        "--traffic", type=float, default=10.0, help="percent of requests the canary gets (10)"
    )
    sp.add_argument("--sticky-key", metavar="FIELD", help="same FIELD value -> same variant")
    sp.add_argument("--reason", help="why (required without --canary)")
    sp.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the server")

    cn = sub.add_parser("canary", help="the running canary: status, traffic, promote, rollback")
    cn_sub = cn.add_subparsers(
        dest="canary_command", metavar="ACTION", parser_class=parser_class, required=True
    )
    sp = cn_sub.add_parser(
        "status", parents=[common, jsonp], help="per-variant stats from the prediction log"
    )
    sp.add_argument("--window", type=float, default=60.0, help="seconds of log to read (60)")
    sp.set_defaults(func=cmd_canary_status)
    sp = cn_sub.add_parser("traffic", parents=[common], help="set the canary's share")
    sp.add_argument("percent", type=float, metavar="PERCENT")
    sp.add_argument("--reason")
    sp.add_argument("--wait", type=float, default=30.0)
    sp.set_defaults(func=cmd_canary_traffic)
    for name, func, what in (
        ("promote", cmd_canary_promote, "the canary takes all traffic and the production alias"),
        ("rollback", cmd_canary_rollback, "production takes all traffic; the canary is dropped"),
    ):
        sp = cn_sub.add_parser(name, parents=[common], help=what)
        sp.add_argument("--reason", required=True)
        sp.add_argument("--wait", type=float, default=30.0)
        sp.set_defaults(func=func)
