"""Serving: `serve`, `deploy`, `canary status/traffic/promote/rollback`, `labels ingest`."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click

from workbench.cli.common import RUNNERS, Commands, load_project, print_json
from workbench.errors import UsageError
from workbench.names import check_alias, check_name

commands = Commands()


def _check_port_free(host: str, port: int) -> None:
    """Fail in one line before starting anything when the port is taken (the server binds
    the same way when it starts)."""
    from workbench.serving.listen import bind

    bind(host, port).close()


def _check_can_serve(project: Any, port: int, alias: str) -> None:
    from workbench.serving import deployments

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


@commands.command("serve", "serve a registered model over HTTP (a container or a process)")
@click.option("--alias", help="the alias to serve (default: [serving].alias, production)")
@click.option("--port", type=int, help="default: [serving].port (8080)")
@click.option(
    "--host", help="address to listen on (default: [serving].host, 127.0.0.1: this machine only)"
)
@click.option(
    "--runner",
    type=click.Choice(RUNNERS),
    help="where it runs (default: [runner].default; auto = docker if an engine answers)",
)
@click.option("--detach", "-d", is_flag=True, help="run in the background")
@click.option(
    "--timeout", type=float, default=300.0, help="with --detach: seconds to wait for ready"
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="server processes on the port (default: [serving].workers, else one per core, <= 8)",
)
@click.option("--job-id", hidden=True)
def serve(
    alias: str | None,
    port: int | None,
    host: str | None,
    runner: str | None,
    detach: bool,
    timeout: float,
    workers: int | None,
    job_id: str | None,
) -> int:
    if job_id:
        check_name(job_id, "--job-id")
    if alias:
        check_alias(alias)
    project = load_project()
    cfg = project.config.serving
    host = host or cfg.host
    port = cfg.port if port is None else port
    _check_can_serve(project, port, alias or cfg.alias)
    _check_port_free(host, port)
    if detach:
        return _detach(project, host, port, alias, runner, timeout, workers)
    return _foreground(project, host, port, alias or cfg.alias, runner, job_id, workers)


def _foreground(
    project: Any,
    host: str,
    port: int,
    alias: str,
    runner: str | None,
    job_id: str | None,
    workers: int | None = None,
) -> int:
    """Serve until Ctrl-C or SIGTERM (a graceful stop), as a job the runner starts."""
    from workbench.jobs.control import new_job_id, resolve_runner, run_job
    from workbench.jobs.observer import JobObserver

    cfg = project.config.serving
    notes: list[str] = []
    resolved = resolve_runner(project, runner, notes)
    why = f" ({notes[0]})" if notes and not str(notes[0]).startswith("cannot reach") else ""
    print(f"runner: {resolved.name}{why}", file=sys.stderr, flush=True)
    job_id = job_id or new_job_id("serve")
    url = f"http://{host}:{port}"
    server_args = ["--project", str(project.root), "--alias", alias, "--port", str(port)]
    server_args += ["--public-url", url, "--job-id", job_id]
    if workers is not None:
        server_args += ["--workers", str(workers)]
    ports: dict[int, tuple[str, int]] = {}
    if resolved.name == "docker":
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
    facts = _serve_facts(project, alias, job_id, port, resolved.name, workers)
    _audit(project, "serve.start", alias, facts, f"serve {alias} at {url}")
    ended = "interrupted"
    try:
        outcome = run_job(
            project,
            "serve",
            "workbench.serving",
            server_args,
            resolved,
            JobObserver(on_log=lambda line: print(line, flush=True), should_stop=stop.is_set),
            job_id=job_id,
            ports=ports,
            env=env,
            ends_well="stopped",
        )
        ended = outcome.reason or outcome.status
    finally:  # one row for the server, however many workers it ran
        _audit(project, "serve.stop", alias, facts, f"server at {url} ended: {ended}"[:500])
    if outcome.status == "stopped":
        return 0
    print(f"error: the server ended: {outcome.reason}", file=sys.stderr)
    return 1


def _serve_facts(
    project: Any, alias: str, job_id: str, port: int, runner: str, workers: int | None
) -> dict[str, Any]:
    """The details of a serve.start/serve.stop row."""
    from workbench.serving import deployments

    version = deployments.production_version(project, alias=alias)
    facts = {"job_id": job_id, "version": version, "port": port, "runner": runner}
    return {**facts, "workers": workers} if workers is not None else facts


def _audit(project: Any, action: str, alias: str | None, facts: dict[str, Any], why: str) -> None:
    from workbench.registry import audit

    model = project.config.model_name
    audit.record(project, action, model, alias, None, facts.get("version"), why, **facts)


def _deploy_facts(project: Any, version: int, canary: bool, **more: Any) -> dict[str, Any]:
    """The details of a `deploy` row: what was deployed, how, and the server that runs."""
    from workbench.serving import deployments

    server = deployments.read_server(project) or {}
    mode = "canary" if canary else "production"
    facts = {"version": version, "mode": mode, "job_id": server.get("job_id")}
    return {**facts, "port": project.config.serving.port, "server": server.get("url"), **more}


def _detach(
    project: Any,
    host: str,
    port: int,
    alias: str | None,
    runner: str | None,
    timeout: float,
    workers: int | None = None,
) -> int:
    from workbench.serving import process as server_process

    job_id, url, pid = server_process.start_detached(
        project, host, port, alias, runner, timeout, workers
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


@commands.command("deploy", "deploy a version: as a canary, or straight to production")
@click.argument("version", type=int, metavar="VERSION")
@click.option("--canary", is_flag=True, help="serve it beside production")
@click.option(
    "--traffic", type=float, default=10.0, help="percent of requests the canary gets (10)"
)
@click.option("--sticky-key", metavar="FIELD", help="same FIELD value -> same variant")
@click.option("--reason", help="why (required without --canary)")
@click.option("--wait", type=float, default=30.0, help="seconds to wait for the server")
def deploy(
    version: int,
    canary: bool,
    traffic: float,
    sticky_key: str | None,
    reason: str | None,
    wait: float,
) -> int:
    from workbench.registry import versions as registry
    from workbench.serving import deployments

    project = load_project()
    if not canary:
        if not reason:
            raise UsageError("a reason is required to replace production (--reason TEXT)")
        row = registry.promote(project, version, reason, project.config.serving.alias)
        facts = _deploy_facts(project, version, False, replaced=row["from_version"])
        _audit(project, "deploy", row["alias"], facts, reason)
        print(
            f"{row['model']}@{row['alias']}: v{row['from_version'] or '-'} -> v{row['to_version']}"
        )
        if deployments.read_server(project):
            print("the running server follows the alias within a second")
        return 0
    state = deployments.start_canary(project, version, traffic, sticky_key, reason or "")
    assert state.canary is not None
    more = {"traffic": state.canary.traffic, "generation": state.generation}
    facts = _deploy_facts(project, version, True, **more)
    _audit(project, "deploy", project.config.serving.alias, facts, reason or f"canary v{version}")
    sticky = f", sticky by {state.canary.sticky_key}" if state.canary.sticky_key else ""
    applied = _applied_line(project, state.generation, wait)
    print(
        f"canary v{state.canary.version} gets {state.canary.traffic * 100:g}% of requests"
        f"{sticky} (generation {state.generation}); {applied}"
    )
    return 0


canary = commands.group("canary", "the running canary: status, traffic, promote, rollback")


@canary.action("status", "per-variant stats from the prediction log", json=True)
@click.option("--window", type=float, default=60.0, help="seconds of log to read (60)")
def canary_status(window: float, as_json: bool) -> int:
    from workbench.serving import deployments

    project = load_project()
    report = deployments.status(project, window)
    if as_json:
        print_json(report)
        return 0
    _print_status(report, window)
    return 0


def _print_status(report: dict[str, Any], window: float) -> None:
    from rich.console import Console

    from workbench.cli.tables import Col, num, show

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
    multiclass = (report.get("task") or {}).get("type") == "multiclass"
    priced = report.get("value") is not None  # [monitoring.value] is set
    cols = [Col("variant"), Col("ver", right=True)]
    cols += [Col(c, right=True) for c in ("req/s", "p50", "p95", "p99", "errors")]
    cols += [
        Col("top class" if multiclass else "mean pred", right=True, optional=True),
        Col("metric"),
        *([Col("value/1k", right=True)] if priced else []),
    ]

    def ms(value: Any) -> str:  # 0.85, 12.3, 1,235: a few characters, never cut
        if value is None:
            return "-"
        return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else num(value, 3)

    rows = []
    for name, s in sorted(report["variants"].items(), key=lambda kv: kv[0] != "production"):
        rows.append(
            [
                name,
                ",".join(map(str, s["versions"])),
                "-" if s["rps"] is None else num(round(s["rps"], 1)),
                ms(s["p50_ms"]),
                ms(s["p95_ms"]),
                ms(s["p99_ms"]),
                f"{s['error_rate']:.2%}",
                _top_class(s) if multiclass else num(s["prediction_mean"]),
                _metric_cell(s),
                *([_value_cell(s)] if priced else []),
            ]
        )
    if not report["variants"]:
        console.print("no predictions in the window")
    else:
        title = f"last {window:g} s, from the prediction log (latency in ms)"
        show(cols, rows, title=title, out=console, gap=1)
    if priced and report["variants"]:
        unit = report["value"].get("unit") or ""
        console.print(f"value/1k: \\[monitoring.value] per 1,000 labelled predictions {unit}")


def _value_cell(stats: dict[str, Any]) -> str:
    """`+9.5k`, `-120`: the value per 1,000 labelled predictions, short ('-' without)."""
    from workbench.value import fmt_short

    return fmt_short(stats.get("value_per_1k"))


def _metric_cell(stats: dict[str, Any]) -> str:
    """`auc 0.9123`, `rmse 52.1 · mae 40.3`; `accuracy: no labels` before labels come."""
    from workbench.serving.stats_summary import live_metrics

    metrics = live_metrics(stats)
    if not metrics:
        return "-"
    if all(v is None for v in metrics.values()):
        return f"{next(iter(metrics))}: no labels"
    from workbench.cli.tables import num

    return " · ".join(f"{k} {num(v)}" for k, v in metrics.items())


def _top_class(stats: dict[str, Any]) -> str:
    """The most frequent predicted class and its share: `class_1 48%`."""
    from workbench.serving.stats_summary import top_class

    found = top_class(stats)
    return "-" if found is None else f"{found[0]} {found[1]:.0%}"


@canary.action("traffic", "set the canary's share")
@click.argument("percent", type=float, metavar="PERCENT")
@click.option("--reason")
@click.option("--wait", type=float, default=30.0)
def canary_traffic(percent: float, reason: str | None, wait: float) -> int:
    from workbench.serving import deployments

    project = load_project()
    state = deployments.set_traffic(project, percent, reason or "")
    assert state.canary is not None
    print(
        f"canary v{state.canary.version} now gets {state.canary.traffic * 100:g}% of requests; "
        f"{_applied_line(project, state.generation, wait)}"
    )
    return 0


def _canary_end(reason: str, wait: float, promote: bool) -> int:
    from workbench.serving import deployments

    project = load_project()
    current = deployments.read_state(project).canary
    if promote:
        state = deployments.promote_canary(project, reason)
        what = f"promoted to {project.config.serving.alias}"
    else:
        state = deployments.rollback_canary(project, reason)
        what = "rolled back; production takes all traffic"
    version = current.version if current else "?"
    print(f"canary v{version} {what}; {_applied_line(project, state.generation, wait)}")
    return 0


@canary.action("promote", "the canary takes all traffic and the production alias")
@click.option("--reason", required=True)
@click.option("--wait", type=float, default=30.0)
def canary_promote(reason: str, wait: float) -> int:
    return _canary_end(reason, wait, promote=True)


@canary.action("rollback", "production takes all traffic; the canary is dropped")
@click.option("--reason", required=True)
@click.option("--wait", type=float, default=30.0)
def canary_rollback(reason: str, wait: float) -> int:
    return _canary_end(reason, wait, promote=False)


labels = commands.group("labels", "delayed ground truth for logged predictions")


@labels.action("ingest", "add labels from a CSV/Parquet file (request_id, label)")
@click.argument("file", metavar="FILE")
def labels_ingest(file: str) -> int:
    from workbench.serving import labels as ground_truth

    n = ground_truth.ingest(load_project(), Path(file))
    print(f"ingested {n:,} label(s) from {file}")
    return 0
