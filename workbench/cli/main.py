"""The `workbench` command. No subcommand opens the TUI; every TUI action is also a command.

Errors the user can act on print one line (`workbench: error: ...`) and exit non-zero:
2 for bad arguments or config, 1 for failed data, jobs or registry operations.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import __version__
from workbench.errors import UsageError, WorkbenchError
from workbench.names import check_label

if TYPE_CHECKING:
    from rich.console import Console

Handler = Callable[[argparse.Namespace], int]


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def _err(msg: str) -> None:
    print(f"workbench: error: {msg}", file=sys.stderr)


def _project(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from workbench.project import Project

    return Project.load(getattr(args, "project", None))


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


# --- commands ----------------------------------------------------------------------------


HEADLESS = (
    "validate, pipeline run, train, runs, models, promote, rollback, history, serve, "
    "canary, drift, monitor, sql, jobs, logs"
)


def _need_terminal(what: str, instead: str) -> None:
    """The TUI draws on a terminal; with a pipe (CI, `ssh host workbench` without -t) it would
    write escape codes for ever. Say so in one line instead."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        return
    which = "standard input" if not sys.stdin.isatty() else "standard output"
    raise UsageError(f"{what} needs a terminal ({which} is not one; `ssh -t` gives one); {instead}")


def cmd_tui(args: argparse.Namespace) -> int:
    from importlib.metadata import entry_points

    _need_terminal(
        "the TUI", f"the same steps run headless as commands: {HEADLESS} (workbench --help)"
    )
    project = _project(args)
    eps = [ep for ep in entry_points(group="workbench.ui") if ep.name == "tui"]
    if not eps:
        raise WorkbenchError("the TUI is not installed (entry point workbench.ui:tui is missing)")
    run_tui = eps[0].load()
    return int(run_tui(project) or 0)


def cmd_init(args: argparse.Namespace) -> int:
    from workbench.demo import samples

    root = samples.init(
        Path(args.dir), args.sample, rows=args.rows, seed=args.seed, force=args.force
    )
    print(f"created project {args.sample!r} in {root}")
    print(f"next: cd {root} && workbench pipeline run")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Exit 2 for a config problem (one line naming the key), 1 when the data fails."""
    from workbench.config import CONFIG_FILE
    from workbench.data.validation import check_config, render_report
    from workbench.pipeline.flow import validate

    project = _project(args)
    check_config(project.config, str(project.root / CONFIG_FILE))  # before reading the data
    report = validate(project)
    if args.json:
        _print_json(report.to_dict())
    else:
        con = _console()
        con.print(render_report(report))
        verdict = "[green]passed[/]" if report.passed else "[red]FAILED[/]"
        con.print(
            f"{project.data_path.name}: {report.rows:,} rows, {verdict}: "
            f"{len(report.failures)} failure(s), {len(report.warnings)} warning(s)"
        )
    return 0 if report.passed else 1


class _Progress:
    """A rich progress bar for training on a terminal; plain lines otherwise."""

    def __init__(self, enabled: bool, quiet: bool = False) -> None:
        self.enabled = enabled
        self.quiet = quiet
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]training[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[scores]}"),
                TimeElapsedColumn(),
                console=_console(),
                transient=False,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task("train", total=None, scores="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def log(self, line: str) -> None:
        """A job's output line: above the bar on a terminal, else on stderr."""
        if self.quiet:
            return
        if self.bar is not None:
            from rich.text import Text

            self.bar.console.print(Text(line, style="dim"), highlight=False)
        else:
            print(line, file=sys.stderr, flush=True)

    def progress(self, i: int, total: int, metrics: dict[str, float]) -> None:
        if self.bar is None:
            return
        shown = "  ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k.startswith("valid"))
        self.bar.update(self.task, completed=i, total=total, scores=shown)

    def step(self, name: str, status: str, detail: str) -> None:
        if not self.enabled:
            return
        mark = {"running": "[cyan]…[/]", "done": "[green]✓[/]", "failed": "[red]✗[/]"}.get(
            status, status
        )
        if status != "running" or name != "train":
            target = self.bar.console if self.bar else _console()
            target.print(f"{mark} {name:<9} {detail}")


def _runner(args: argparse.Namespace, project: Any, quiet: bool) -> Any:
    from workbench.jobs.control import resolve_runner

    notes: list[str] = []
    runner = resolve_runner(project, args.runner, notes)
    if not quiet:
        why = f" ({notes[0]})" if notes and not str(notes[0]).startswith("cannot reach") else ""
        print(f"runner: {runner.name}{why}", file=sys.stderr)
    return runner


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {pair!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from workbench.data.validation import check_config
    from workbench.jobs.control import run_training

    if args.run_name is not None:
        check_label(args.run_name, "--run-name")
    project = _project(args)
    params = _parse_params(args.param)
    check_config(
        project.config, "--param" if params else str(project.root / "workbench.toml"), params
    )
    runner = _runner(args, project, args.json)
    with _Progress(
        enabled=not args.json and sys.stdout.isatty(), quiet=args.quiet or args.json
    ) as bar:
        outcome = run_training(
            project,
            runner,
            on_progress=bar.progress,
            on_log=bar.log,
            run_name=args.run_name,
            params=params,
        )
    if args.json:
        _print_json(
            {
                "job_id": outcome.job_id,
                "status": outcome.status,
                "runner": outcome.runner,
                "reason": outcome.reason,
                **outcome.result,
            }
        )
    elif outcome.ok:
        m = outcome.result["metrics"]
        shown = ", ".join(f"{k}={v:.4f}" for k, v in m.items() if k.startswith("holdout_"))
        print(f"run {outcome.result['run_id']} finished: {shown}")
    if not outcome.ok:
        raise WorkbenchError(
            f"training job {outcome.job_id} {outcome.status}: {outcome.reason} "
            f"(log: {outcome.log_path})"
        )
    return 0


def cmd_pipeline_run(args: argparse.Namespace) -> int:
    from workbench.pipeline import flow as pipeline

    project = _project(args)
    runner = _runner(args, project, args.json)
    with _Progress(
        enabled=not args.json and sys.stdout.isatty(), quiet=args.quiet or args.json
    ) as bar:
        plain = not args.json and not sys.stdout.isatty()

        def on_step(name: str, status: str, detail: str) -> None:
            if plain and status != "running":
                print(f"{name}: {status}: {detail}")
            bar.step(name, status, detail)

        result = pipeline.run(
            project,
            runner,
            on_step=on_step,
            on_progress=bar.progress,
            on_log=bar.log,
            auto_promote=True if args.auto_promote else None,
        )
    if args.json:
        _print_json(result.to_dict())
    else:
        gate = result.gate
        print(
            f"{result.model} v{result.version} (run {result.run_id}): gate {gate['decision']}"
            f" — {gate['reason']}; aliases set: {', '.join(result.aliases_set)}"
        )
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from workbench.store import runs_index
    from workbench.store.db import Db

    project = _project(args)
    db = Db(project.logs)
    if not args.no_sync:
        runs_index.sync(project, db)
    df = runs_index.runs_frame(db)
    df = runs_index.sort_filter(df, _sort_column(df, args.sort), not args.asc, args.filter or "")
    if args.limit:
        df = df.head(args.limit)
    if args.json:
        _print_json(df.to_dicts())
        return 0
    from rich.table import Table

    metric_cols = [c for c in df.columns if c.startswith("m.holdout_")][:4] or [
        c for c in df.columns if c.startswith("m.")
    ][:4]
    table = Table(
        "run id",
        "name",
        "status",
        "started",
        *[c[2:] for c in metric_cols],
        title=f"{df.height} run(s)",
    )
    for row in df.iter_rows(named=True):
        started = row["start_time"].strftime("%Y-%m-%d %H:%M") if row["start_time"] else "-"
        table.add_row(
            row["run_id"][:12],
            row["run_name"] or "",
            row["status"] or "",
            started,
            *[_fmt(row[c]) for c in metric_cols],
        )
    _console().print(table)
    return 0


def _sort_column(df: Any, key: str | None) -> str | None:
    if not key:
        return "start_time"
    for candidate in (key, f"m.{key}", f"p.{key}"):
        if candidate in df.columns:
            return candidate
    if df.height == 0:
        return None
    raise UsageError(f"--sort {key}: no such column (try start_time, run_name or a metric name)")


def cmd_compare(args: argparse.Namespace) -> int:
    from workbench.store import runs_index
    from workbench.store.db import Db

    project = _project(args)
    db = Db(project.logs)
    runs_index.sync(project, db)
    df = runs_index.runs_frame(db)
    ids = [_expand_run_id(df, r) for r in args.runs]
    rows = runs_index.compare_runs(df, ids, only_diff=args.diff)
    if args.json:
        _print_json(rows)
        return 0
    from rich.table import Table

    table = Table("field", *[i[:12] for i in ids], title="only what differs" if args.diff else None)
    for row in rows:
        style = "bold" if row["differs"] else "dim"
        table.add_row(row["field"], *[_fmt(row[i]) for i in ids], style=style)
    _console().print(table)
    return 0


def _expand_run_id(df: Any, prefix: str) -> str:
    matches = [r for r in df["run_id"].to_list() if r.startswith(prefix)] if df.height else []
    if len(matches) == 1:
        return str(matches[0])
    if not matches:
        raise UsageError(f"no run id starts with {prefix!r}")
    raise UsageError(f"run id prefix {prefix!r} is ambiguous ({len(matches)} runs)")


def cmd_models(args: argparse.Namespace) -> int:
    from workbench.registry import versions as registry

    project = _project(args)
    versions = registry.list_versions(project)
    metric = f"holdout_{project.config.evaluation.metric}"
    if args.json:
        _print_json(
            {"model": project.config.model_name, "versions": [v.to_dict() for v in versions]}
        )
        return 0
    from rich.table import Table

    table = Table(
        "version",
        "aliases",
        "run id",
        metric,
        "holdout_logloss",
        title=f"model {project.config.model_name}",
    )
    for v in versions:
        table.add_row(
            str(v.version),
            ", ".join(v.aliases) or "-",
            (v.run_id or "-")[:12],
            _fmt(v.metrics.get(metric)),
            _fmt(v.metrics.get("holdout_logloss")),
        )
    _console().print(
        table if versions else "no registered versions yet (run `workbench pipeline run`)"
    )
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from workbench import names
    from workbench.registry import versions as registry

    if args.alias is not None:
        names.check_alias(args.alias)
    project = _project(args)
    row = registry.promote(project, args.version, args.reason, alias=args.alias)
    print(f"{row['model']}@{row['alias']}: v{row['from_version'] or '-'} -> v{row['to_version']}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from workbench import names
    from workbench.registry import versions as registry

    if args.alias is not None:
        names.check_alias(args.alias)
    project = _project(args)
    row = registry.rollback(project, args.reason, alias=args.alias)
    print(
        f"{row['model']}@{row['alias']} rolled back: v{row['from_version']} -> v{row['to_version']}"
    )
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from workbench import names
    from workbench.registry import versions as registry

    if args.alias is not None:
        names.check_alias(args.alias)
    project = _project(args)
    rows = registry.alias_history(project, args.alias)
    if args.json:
        _print_json(rows)
        return 0
    from rich.table import Table

    table = Table(
        "when (UTC)",
        "alias",
        "action",
        "from",
        "to",
        "who",
        "reason",
        title=f"alias history of {project.config.model_name}",
    )
    for r in rows:
        table.add_row(
            r["ts"].strftime("%Y-%m-%d %H:%M:%S"),
            r["alias"],
            r["action"],
            _fmt(r["from_version"]),
            _fmt(r["to_version"]),
            r["actor"],
            r["reason"],
        )
    _console().print(table)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from workbench.store.db import Db

    project = _project(args)
    rows = Db(project.logs).rows("SELECT * FROM audit ORDER BY ts DESC LIMIT ?", [args.limit])
    if args.json:
        _print_json(rows)
        return 0
    from rich.table import Table

    table = Table("when (UTC)", "who", "action", "model", "alias", "from", "to", "reason")
    for r in rows:
        table.add_row(
            r["ts"].strftime("%Y-%m-%d %H:%M:%S"),
            r["actor"],
            r["action"],
            r["model"],
            r["alias"] or "-",
            _fmt(r["from_version"]),
            _fmt(r["to_version"]),
            r["reason"],
        )
    _console().print(table)
    return 0


def _runtime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def cmd_jobs(args: argparse.Namespace) -> int:
    from workbench.jobs import control as jobs

    project = _project(args)
    found = jobs.list_jobs(project, limit=args.limit)
    if args.json:
        _print_json([j.to_dict() for j in found])
        return 0
    from rich.table import Table

    table = Table(
        "job",
        "kind",
        "runner",
        "status",
        "runtime",
        "progress",
        "run id",
        "exit",
        title=f"{len(found)} job(s)",
    )
    table.add_column("reason", overflow="ellipsis", no_wrap=True, max_width=48)
    table.columns[0].no_wrap = True
    for j in found:
        progress = f"{j.progress[0]}/{j.progress[1]}" if j.progress else "-"
        table.add_row(
            j.job_id,
            j.kind,
            j.runner,
            j.status,
            _runtime(j.runtime_s),
            progress,
            (j.run_id or "-")[:12],
            _fmt(j.exit_code),
            j.reason or "",
        )
    _console().print(table)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    import time

    from workbench import plugins
    from workbench.jobs import control as jobs

    project = _project(args)
    job = jobs.get_job(project, args.job)
    lines, offset = jobs.read_log(job, 0, events_too=args.events)
    for line in lines:
        print(line)
    if not args.follow or not job.active:
        return 0
    runner = plugins.load("runner", job.runner)
    if hasattr(runner, "follow") and job.handle and _owner_gone(job):
        # Nobody is copying the container's output into the log file: read the container.
        for i, line in enumerate(runner.follow(job.handle)):
            if i >= len(lines) and (args.events or not line.startswith("@wb ")):
                print(line, flush=True)
        return 0
    while True:
        new, offset = jobs.read_log(job, offset, events_too=args.events)
        for line in new:
            print(line, flush=True)
        if not new:
            job = jobs.get_job(project, job.job_id)
            if not job.active:
                new, offset = jobs.read_log(job, offset, events_too=args.events)
                for line in new:
                    print(line, flush=True)
                return 0
            time.sleep(0.3)


def _owner_gone(job: Any) -> bool:
    """Has the job's log file stopped growing (the process that started it is gone)?"""
    import os
    import time

    try:
        return time.time() - os.path.getmtime(job.log_path) > 5
    except OSError:
        return True


def cmd_stop(args: argparse.Namespace) -> int:
    from workbench.jobs import control as jobs

    project = _project(args)
    job = jobs.stop_job(project, args.job)
    print(f"asked job {job.job_id} ({job.runner}) to stop")
    return 0


def cmd_image_bootstrap(args: argparse.Namespace) -> int:
    from workbench.jobs import images

    images.bootstrap_base(args.tag, args.suite, args.mirror)
    print(f'use it: set [docker].base_image = "{args.tag}" in workbench.toml')
    return 0


def cmd_image_build(args: argparse.Namespace) -> int:
    from workbench.jobs import images

    tag = images.ensure_job_image(_project(args), force=args.force)
    print(tag)
    return 0


def cmd_labels_ingest(args: argparse.Namespace) -> int:
    from workbench.serving import labels

    project = _project(args)
    n = labels.ingest(project, Path(args.file))
    print(f"ingested {n:,} label(s) from {args.file}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from workbench.store import runs_index

    res = runs_index.sync(_project(args))
    print(f"runs index: {res.total} run(s), {res.changed} new or changed")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from workbench.demo import acts as demo

    def echo(line: str) -> None:  # with --json, stdout carries only the JSON
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    if not args.headless:
        _need_terminal("the demo's TUI", "run `workbench demo --headless` for the demo without it")
    root = demo.prepare(Path(args.dir) if args.dir else None, echo=echo)
    act2 = None if args.first_act_only else demo.second_act(root, echo=echo)
    if args.headless:
        code = demo.summary(root, as_json=args.json)
    else:
        args.project = str(root)
        code = cmd_tui(args)
    if act2:
        echo(f"the demo's server still runs at {act2['url']}: workbench stop {act2['job']}")
    return code


# --- parser ------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--project",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="project folder (default: nearest workbench.toml at or above cwd)",
    )
    jsonp = argparse.ArgumentParser(add_help=False)
    jsonp.add_argument("--json", action="store_true", help="print JSON instead of a table")
    runp = argparse.ArgumentParser(add_help=False)
    runp.add_argument(
        "--runner",
        choices=["auto", "local", "docker"],
        help="where jobs run (default: [runner].default, auto = docker if an engine answers)",
    )
    runp.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="do not stream the job's log (on stderr, or above the progress bar)",
    )

    p = _Parser(
        prog="workbench",
        parents=[common],
        description="A terminal MLOps workbench. With no command, opens the TUI.",
    )
    p.add_argument("--version", action="version", version=f"workbench {__version__}")
    p.set_defaults(func=cmd_tui)
    sub: Any = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def add(
        name: str, func: Handler, help_: str, *parents: argparse.ArgumentParser
    ) -> argparse.ArgumentParser:
        sp: argparse.ArgumentParser = sub.add_parser(
            name, help=help_, description=help_, parents=[common, *parents]
        )
        sp.set_defaults(func=func)
        return sp

    sp = add("init", cmd_init, "create a project from a sample, with generated data")
    sp.add_argument("dir", metavar="DIR")
    sp.add_argument(
        "--sample", default="fraud_detection", help="sample name (default: fraud_detection)"
    )
    sp.add_argument("--rows", type=int, default=50_000, help="rows of data to generate (>= 500)")
    sp.add_argument("--seed", type=int, default=7)
    sp.add_argument("--force", action="store_true", help="overwrite an existing workbench.toml")

    sp = add("demo", cmd_demo, "create a sample project, train a first model, open the TUI", jsonp)
    sp.add_argument(
        "dir", nargs="?", metavar="DIR", help="where to create it (default: a temp dir)"
    )
    sp.add_argument("--headless", action="store_true", help="run the same steps, print a summary")
    sp.add_argument(
        "--first-act-only",
        action="store_true",
        help="stop after training (no server, drifted traffic, retraining or canary)",
    )

    add("validate", cmd_validate, "validate the data snapshot (exit 1 when it fails)", jsonp)

    sp = add("train", cmd_train, "train one model as a job, with live progress", jsonp, runp)
    sp.add_argument("--run-name", help="MLflow run name")
    sp.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a trainer param (repeatable)",
    )

    pl = sub.add_parser("pipeline", help="validate -> train -> evaluate -> gate -> register")
    pl_sub = pl.add_subparsers(
        dest="pipeline_command", metavar="ACTION", parser_class=_Parser, required=True
    )
    sp = pl_sub.add_parser("run", help="run the whole pipeline", parents=[common, jsonp, runp])
    sp.add_argument(
        "--auto-promote",
        action="store_true",
        help="move production when the gate passes (overrides [gate].auto_promote)",
    )
    sp.set_defaults(func=cmd_pipeline_run)

    sp = add("runs", cmd_runs, "list runs from the runs index (synced from MLflow)", jsonp)
    sp.add_argument("--sort", help="column or metric name (default: start_time)")
    sp.add_argument("--asc", action="store_true", help="ascending sort")
    sp.add_argument("--filter", help="text, or KEY=VALUE / METRIC>NUMBER terms")
    sp.add_argument("--limit", type=int, default=0)
    sp.add_argument("--no-sync", action="store_true", help="read the index as it is")

    sp = add("compare", cmd_compare, "compare runs side by side", jsonp)
    sp.add_argument("runs", nargs="+", metavar="RUN", help="run ids or unique prefixes")
    sp.add_argument("--diff", action="store_true", help="show only what differs")

    add("models", cmd_models, "list registered versions with aliases and metrics", jsonp)

    sp = add("promote", cmd_promote, "point an alias at a version")
    sp.add_argument("version", type=int, metavar="VERSION")
    sp.add_argument("--alias", help="default: [registry].production_alias (production)")
    sp.add_argument("--reason", required=True)

    sp = add("rollback", cmd_rollback, "move an alias back to the version that held it before")
    sp.add_argument("--alias", help="default: [registry].production_alias (production)")
    sp.add_argument("--reason", required=True)

    sp = add("history", cmd_history, "alias moves over time", jsonp)
    sp.add_argument("--alias", default=None, help="only this alias")

    sp = add("audit", cmd_audit, "the audit log", jsonp)
    sp.add_argument("--limit", type=int, default=100)

    sp = add(
        "jobs", cmd_jobs, "jobs and their status (a job that ended unobserved is settled)", jsonp
    )
    sp.add_argument("--limit", type=int, default=50)

    sp = add("logs", cmd_logs, "a job's log")
    sp.add_argument("job", metavar="JOB", help="job id or unique prefix")
    sp.add_argument("--follow", "-f", action="store_true", help="keep printing until it ends")
    sp.add_argument("--events", action="store_true", help="include @wb progress/result events")

    sp = add("stop", cmd_stop, "stop a running job")
    sp.add_argument("job", metavar="JOB", help="job id or unique prefix")

    im = sub.add_parser("image", help="job images: bootstrap a base image, build the job image")
    im_sub = im.add_subparsers(
        dest="image_command", metavar="ACTION", parser_class=_Parser, required=True
    )
    sp = im_sub.add_parser(
        "bootstrap",
        parents=[common],
        help="make a Python base image with no registry (root, debootstrap)",
    )
    sp.add_argument("--tag", default="workbench-base:bookworm")
    sp.add_argument("--suite", default="bookworm")
    sp.add_argument("--mirror", help="Debian mirror URL (default: debootstrap's)")
    sp.set_defaults(func=cmd_image_bootstrap)
    sp = im_sub.add_parser(
        "build", parents=[common], help="build the project's job image (skipped when up to date)"
    )
    sp.add_argument("--force", action="store_true", help="build even when up to date")
    sp.set_defaults(func=cmd_image_build)

    lb = sub.add_parser("labels", help="delayed ground truth for logged predictions")
    lb_sub = lb.add_subparsers(
        dest="labels_command", metavar="ACTION", parser_class=_Parser, required=True
    )
    sp = lb_sub.add_parser(
        "ingest", parents=[common], help="add labels from a CSV/Parquet file (request_id, label)"
    )
    sp.add_argument("file", metavar="FILE")
    sp.set_defaults(func=cmd_labels_ingest)

    add("sync", cmd_sync, "sync the runs index from the MLflow store")

    from workbench.cli import serving as cli_serving

    cli_serving.register(sub, add, common, jsonp, _Parser)
    from workbench.cli import sql as cli_sql

    cli_sql.register(sub, add, common, jsonp, _Parser)
    from workbench.cli import drift as cli_drift

    cli_drift.register(sub, add, common, jsonp, _Parser)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except WorkbenchError as exc:
        _err(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
