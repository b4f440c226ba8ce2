"""Training and runs: `train`, `pipeline run`, `runs`, `compare`, `sync`."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from workbench.cli.common import Commands, console, fmt, load_project, print_json
from workbench.errors import UsageError, WorkbenchError
from workbench.names import check_label

if TYPE_CHECKING:
    from workbench.jobs.control import JobOutcome
    from workbench.jobs.events import Progress

commands = Commands()


class _Progress:
    """A rich progress bar for training on a terminal; plain lines otherwise."""

    def __init__(self, enabled: bool, quiet: bool = False, label: str = "training") -> None:
        self.enabled = enabled
        self.quiet = quiet
        self.label = label
        self.bar: Any = None
        self.task: Any = None

    @classmethod
    def of(cls, as_json: bool, quiet: bool, label: str = "training") -> _Progress:
        """The bar on a terminal unless JSON is asked for; no job lines with --json or -q."""
        return cls(enabled=not as_json and sys.stdout.isatty(), quiet=quiet or as_json, label=label)

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
                TextColumn(f"[bold]{self.label}[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[scores]}"),
                TimeElapsedColumn(),
                console=console(),
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

    def progress(self, p: Progress) -> None:
        if self.bar is None:
            return
        shown = "  ".join(
            f"{k}={v:.4f}" for k, v in p.metrics.items() if k.startswith(("valid", "best"))
        )
        self.bar.update(self.task, completed=p.iteration, total=p.total, scores=shown)

    def step(self, name: str, status: str, detail: str) -> None:
        if not self.enabled:
            return
        mark = {"running": "[cyan]…[/]", "done": "[green]✓[/]", "failed": "[red]✗[/]"}.get(
            status, status
        )
        if status != "running" or name != "train":
            target = self.bar.console if self.bar else console()
            target.print(f"{mark} {name:<9} {detail}")


def _runner(project: Any, runner: str | None, quiet: bool) -> Any:
    from workbench.jobs.control import resolve_runner

    notes: list[str] = []
    resolved = resolve_runner(project, runner, notes)
    if not quiet:
        why = f" ({notes[0]})" if notes and not str(notes[0]).startswith("cannot reach") else ""
        print(f"runner: {resolved.name}{why}", file=sys.stderr)
    return resolved


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
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


@commands.command("train", "train one model as a job, with live progress", json=True, runner=True)
@click.option("--run-name", help="MLflow run name")
@click.option(
    "--param", multiple=True, metavar="KEY=VALUE", help="override a trainer param (repeatable)"
)
def train(
    run_name: str | None, param: tuple[str, ...], as_json: bool, runner: str | None, quiet: bool
) -> int:
    from workbench.data.validation import check_config
    from workbench.jobs.control import run_training
    from workbench.jobs.observer import JobObserver

    if run_name is not None:
        check_label(run_name, "--run-name")
    project = load_project()
    params = _parse_params(param)
    check_config(
        project.config, "--param" if params else str(project.root / "workbench.toml"), params
    )
    resolved = _runner(project, runner, as_json)
    with _Progress.of(as_json, quiet) as bar:
        observer = JobObserver(on_progress=bar.progress, on_log=bar.log)
        outcome = run_training(project, resolved, observer, run_name=run_name, params=params)
    result = outcome.train_result
    if as_json:
        _print_outcome(outcome)
    elif outcome.ok and result is not None:
        m = result.metrics
        shown = ", ".join(f"{k}={v:.4f}" for k, v in m.items() if k.startswith("holdout_"))
        print(f"run {result.run_id} finished: {shown}")
    _fail_unless_ok("training", outcome)
    return 0


def _print_outcome(outcome: JobOutcome, **more: Any) -> None:
    """A training or sweep job's outcome as JSON: the job, its run, the result and `more`."""
    result = outcome.train_result
    print_json(
        {
            "job_id": outcome.job_id,
            "status": outcome.status,
            "runner": outcome.runner,
            "reason": outcome.reason,
            **({"run_id": outcome.run_id} if outcome.run_id else {}),
            **(result.to_dict() if result else {}),
            **more,
        }
    )


def _fail_unless_ok(kind: str, outcome: JobOutcome) -> None:
    if not outcome.ok:
        raise WorkbenchError(
            f"{kind} job {outcome.job_id} {outcome.status}: {outcome.reason} "
            f"(log: {outcome.log_path})"
        )


@commands.command(
    "sweep", "search trainer params with Optuna: one job, a run per trial", json=True, runner=True
)
@click.option("--trials", type=int, required=True, help="how many trials")
@click.option(
    "--param",
    multiple=True,
    metavar="KEY=SPEC",
    help="KEY=low..high (ints: int range; ..log: log scale), KEY=a,b,c, or KEY=VALUE (fixed)",
)
@click.option("--run-name", help="the parent run's name (default: sweep <time>)")
@click.option("--seed", type=int, help="the sampler's seed (same seed, same trials)")
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    help="trials at once as Ray tasks (--runner ray; default: the cluster's CPUs / trial_cpus)",
)
def sweep(
    trials: int,
    param: tuple[str, ...],
    run_name: str | None,
    seed: int | None,
    parallel: int | None,
    as_json: bool,
    runner: str | None,
    quiet: bool,
) -> int:
    from workbench.jobs.control import run_sweep
    from workbench.jobs.observer import JobObserver
    from workbench.training import search_space

    spec = _sweep_spec(trials, param, run_name, seed)
    project = load_project()
    _check_space(project, spec)
    resolved = _runner(project, runner, as_json)
    if parallel and resolved.name != "ray":
        raise UsageError("--parallel: trials run in parallel on the ray runner (--runner ray)")
    stop = _CtrlC()
    with stop, _Progress.of(as_json, quiet, label="sweep") as bar:
        observer = JobObserver(on_progress=bar.progress, on_log=bar.log, should_stop=stop.is_set)
        outcome = run_sweep(project, resolved, spec.to_json(), observer, parallel or 0)
    result = outcome.train_result
    best = dict(result.extra.get("best_params") or {}) if result else {}
    again = f"workbench pipeline run {search_space.command_line(best)}" if best else None
    if as_json:
        _print_outcome(outcome, **({"command": again} if again else {}))
    elif outcome.ok and result is not None:
        key = f"valid_{project.config.metric}"
        value = result.metrics.get(key)
        shown = f"{key}={value:.4f}" if value is not None else ""
        print(
            f"sweep run {result.run_id}: best trial {result.extra.get('best_trial')} "
            f"(run {result.extra.get('best_run_id')}) {shown}"
        )
        print(f"train and gate the best params with: {again}")
    if stop.is_set() and outcome.status == "stopped":
        raise KeyboardInterrupt
    _fail_unless_ok("sweep", outcome)
    return 0


def _sweep_spec(trials: int, pairs: tuple[str, ...], run_name: str | None, seed: int | None) -> Any:
    from workbench.store.parquet_log import utcnow
    from workbench.training import search_space

    search_space.check_trials(trials)
    space, fixed = search_space.parse_params(pairs)
    if not space:
        raise UsageError(
            "--param: nothing to search; give a range (KEY=low..high) or choices (KEY=a,b)"
        )
    name = check_label(run_name, "--run-name") if run_name else None
    name = name or f"sweep {utcnow():%Y%m%d-%H%M%S}"
    return search_space.SweepSpec(trials, space, fixed, name, seed)


def _check_space(project: Any, spec: Any) -> None:
    """Every end and choice of the space, and the fixed params, through the trainer's checks
    (one ConfigError line, exit 2), before any job starts."""
    from workbench.data.validation import check_config
    from workbench.training import search_space

    for params in search_space.corner_params(spec.space, spec.fixed):
        check_config(project.config, "--param", params)


class _CtrlC:
    """Ctrl-C while a sweep runs asks its job to stop (the job is in its own session and
    never sees the terminal's SIGINT); a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        import threading

        self._event = threading.Event()
        self._previous: Any = None

    def is_set(self) -> bool:
        return self._event.is_set()

    def __enter__(self) -> _CtrlC:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._event.is_set():
            raise KeyboardInterrupt
        self._event.set()
        print(
            "stopping the sweep: the trial under way ends it (Ctrl-C again: at once)",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(self, *exc: object) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


pipeline = commands.group("pipeline", "validate -> train -> evaluate -> gate -> register")


@pipeline.action("run", "run the whole pipeline", json=True, runner=True)
@click.option(
    "--auto-promote",
    is_flag=True,
    help="move production when the gate passes (overrides [gate].auto_promote)",
)
@click.option(
    "--param", multiple=True, metavar="KEY=VALUE", help="override a trainer param (repeatable)"
)
def pipeline_run(
    auto_promote: bool, param: tuple[str, ...], as_json: bool, runner: str | None, quiet: bool
) -> int:
    from workbench.data.validation import check_config
    from workbench.jobs.observer import JobObserver
    from workbench.pipeline import flow

    project = load_project()
    params = _parse_params(param)
    if params:
        check_config(project.config, "--param", params)
    resolved = _runner(project, runner, as_json)
    with _Progress.of(as_json, quiet) as bar:
        plain = not as_json and not sys.stdout.isatty()

        def on_step(name: str, status: str, detail: str) -> None:
            if plain and status != "running":
                print(f"{name}: {status}: {detail}")
            bar.step(name, status, detail)

        observer = JobObserver(on_progress=bar.progress, on_log=bar.log, on_step=on_step)
        result = flow.run(
            project,
            resolved,
            observer,
            auto_promote=True if auto_promote else None,
            params=params or None,
        )
    if as_json:
        print_json(result.to_dict())
    else:
        gate = result.gate
        print(
            f"{result.model} v{result.version} (run {result.run_id}): gate {gate['decision']}"
            f" — {gate['reason']}; aliases set: {', '.join(result.aliases_set)}"
        )
        if result.request_id:  # [governance]: auto-promote asked instead of moving
            print(f"promotion needs approval: request {result.request_id} (workbench approvals)")
    return 0


@commands.command("runs", "list runs from the runs index (synced from MLflow)", json=True)
@click.option("--sort", help="column or metric name (default: start_time)")
@click.option("--asc", is_flag=True, help="ascending sort")
@click.option("--filter", "filter_", help="text, or KEY=VALUE / METRIC>NUMBER terms")
@click.option("--limit", type=int, default=0)
@click.option("--no-sync", is_flag=True, help="read the index as it is")
def runs(
    sort: str | None, asc: bool, filter_: str | None, limit: int, no_sync: bool, as_json: bool
) -> int:
    from workbench.store import runs_index
    from workbench.store.db import Db

    project = load_project()
    db = Db(project.logs_root)
    if not no_sync:
        runs_index.sync(project, db)
    df = runs_index.runs_frame(db)
    df = runs_index.sort_filter(df, _sort_column(df, sort), not asc, filter_ or "")
    if limit:
        df = df.head(limit)
    if as_json:
        print_json(df.to_dicts())
        return 0
    from workbench.cli.tables import Col, show

    metric_cols = _shown_metrics(df.columns, project.config.metric)
    cols = [Col("run id"), Col("name", cut=10), Col("status"), Col("started")]
    cols += [Col(c[2:], right=True, optional=i > 0) for i, c in enumerate(metric_cols)]
    rows = []
    for row in df.iter_rows(named=True):
        started = row["start_time"].strftime("%Y-%m-%d %H:%M") if row["start_time"] else "-"
        rows.append(
            [
                row["run_id"][:12],
                row["run_name"] or "",
                row["status"] or "",
                started,
                *[fmt(row[c]) for c in metric_cols],
            ]
        )
    show(cols, rows, title=f"{df.height} run(s)")
    return 0


def _shown_metrics(columns: list[str], metric: str) -> list[str]:
    """Four metric columns: the gate's metric on the holdout and validation split first (a
    sweep's trials have only the latter), then other holdout, validation, other metrics;
    never MLflow's system metrics."""
    present = [c for c in columns if c.startswith("m.") and not c.startswith("m.system/")]
    order = [f"m.holdout_{metric}", f"m.valid_{metric}"]
    order += [c for c in present if c.startswith("m.holdout_")]
    order += [c for c in present if c.startswith("m.valid_")] + present
    return [c for c in dict.fromkeys(order) if c in present][:4]


def _sort_column(df: Any, key: str | None) -> str | None:
    if not key:
        return "start_time"
    for candidate in (key, f"m.{key}", f"p.{key}"):
        if candidate in df.columns:
            return candidate
    if df.height == 0:
        return None
    raise UsageError(f"--sort {key}: no such column (try start_time, run_name or a metric name)")


@commands.command("compare", "compare runs side by side", json=True)
@click.argument(
    "run_ids", metavar="RUN...", help="run ids or unique prefixes", nargs=-1, required=True
)
@click.option("--diff", is_flag=True, help="show only what differs")
def compare(run_ids: tuple[str, ...], diff: bool, as_json: bool) -> int:
    from workbench.store import runs_index
    from workbench.store.db import Db

    project = load_project()
    db = Db(project.logs_root)
    runs_index.sync(project, db)
    df = runs_index.runs_frame(db)
    ids = [_expand_run_id(df, r) for r in run_ids]
    rows = runs_index.compare_runs(df, ids, only_diff=diff)
    if as_json:
        print_json(rows)
        return 0
    from workbench.cli.tables import Col, show

    cols = [Col("field", cut=16), *[Col(i[:12], cut=12) for i in ids]]  # numbers fit in 12
    cells = [[row["field"], *[fmt(row[i]) for i in ids]] for row in rows]
    styles = ["bold" if row["differs"] else "dim" for row in rows]
    show(cols, cells, title="only what differs" if diff else None, styles=styles)
    return 0


def _expand_run_id(df: Any, prefix: str) -> str:
    matches = [r for r in df["run_id"].to_list() if r.startswith(prefix)] if df.height else []
    if len(matches) == 1:
        return str(matches[0])
    if not matches:
        raise UsageError(f"no run id starts with {prefix!r}")
    raise UsageError(f"run id prefix {prefix!r} is ambiguous ({len(matches)} runs)")


@commands.command("sync", "sync the runs index from the MLflow store")
def sync() -> int:
    from workbench.store import runs_index

    res = runs_index.sync(load_project())
    print(f"runs index: {res.total} run(s), {res.changed} new or changed")
    return 0
