"""Setting up: `init` (a project from your data, or from a sample) and `demo` (a sample
project, trained, served)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from workbench.cli.common import Commands, console
from workbench.cli.tui import _need_terminal, open_tui
from workbench.errors import UsageError

commands = Commands()

_INIT_HELP = """Create a project in DIR: from your data (--data FILE --target COLUMN), or from a
sample with generated data (--sample NAME, the default: fraud_detection).

From your data, the task (unless --task), the [schema], the id and timestamp columns (when
obvious) and the split are inferred and printed; the data is copied (or with --link
symlinked) into DIR/data/, and a commented workbench.toml is written and validated."""


@commands.command("init", "create a project from your data or a sample", epilog=None)
@click.argument("dir", metavar="DIR")
@click.option("--data", "data", metavar="FILE", help="your CSV or Parquet file (or a glob)")
@click.option("--target", metavar="COLUMN", help="the column to predict (with --data)")
@click.option(
    "--task",
    type=click.Choice(["binary", "multiclass", "regression"]),
    help="the task (default: inferred from the target)",
)
@click.option("--timestamp", metavar="COLUMN", help="the time column (default: guessed)")
@click.option("--id", "id_column", metavar="COLUMN", help="the id column (default: guessed)")
@click.option("--name", metavar="NAME", help="project name (default: DIR's name)")
@click.option("--link", is_flag=True, help="symlink the data into DIR/data/ instead of copying")
@click.option("--sample", help="sample name (default: fraud_detection, without --data)")
@click.option("--rows", type=int, default=50_000, help="rows of sample data to generate (>= 500)")
@click.option("--seed", type=int, default=7)
@click.option("--force", is_flag=True, help="overwrite an existing workbench.toml")
def init(
    dir: str,
    data: str | None,
    target: str | None,
    task: str | None,
    timestamp: str | None,
    id_column: str | None,
    name: str | None,
    link: bool,
    sample: str | None,
    rows: int,
    seed: int,
    force: bool,
) -> int:
    if data is None:
        given = [f"--{k}" for k, v in (("target", target), ("task", task)) if v]
        given += ["--link"] if link else []
        if given:
            raise UsageError(f"{' and '.join(given)} need --data FILE")
        return _init_sample(dir, sample or "fraud_detection", rows, seed, force)
    if sample is not None:
        raise UsageError("--sample and --data: choose one (a sample, or your data)")
    if not target:
        raise UsageError("--data needs --target COLUMN (the column to predict)")
    return _init_data(dir, data, target, task, timestamp, id_column, name, link, force)


init.help = _INIT_HELP


def _init_sample(dir: str, sample: str, rows: int, seed: int, force: bool) -> int:
    from workbench.demo import samples

    root = samples.init(Path(dir), sample, rows=rows, seed=seed, force=force)
    print(f"created project {sample!r} in {root}")
    print(f"next: cd {root} && workbench pipeline run")
    return 0


def _init_data(
    dir: str,
    data: str,
    target: str,
    task: str | None,
    timestamp: str | None,
    id_column: str | None,
    name: str | None,
    link: bool,
    force: bool,
) -> int:
    from workbench.data.project_init import init_from_data
    from workbench.data.validation import render_report

    result = init_from_data(
        Path(dir),
        Path(data).expanduser(),
        target=target,
        task=task,  # type: ignore[arg-type]  # click.Choice: one of the task types
        timestamp=timestamp,
        id_column=id_column,
        name=name,
        link=link,
        force=force,
    )
    report = result.report
    print(f"wrote {result.root / 'workbench.toml'} (data in {result.root / 'data'})")
    if not report.passed:
        console().print(render_report(report, show_passed=False))
        print(f"validate: FAILED ({len(report.failures)} failure(s)); fix the data or the config")
        return 1
    warned = f", {len(report.warnings)} warning(s)" if report.warnings else ""
    print(f"validate: passed ({report.rows:,} rows{warned})")
    print(f"next: cd {result.root} && workbench pipeline run")
    return 0


@commands.command("demo", "create a sample project, train a first model, open the TUI", json=True)
@click.argument(
    "dir", metavar="DIR", help="where to create it (default: a temp dir)", required=False
)
@click.option(
    "--sample",
    default="fraud_detection",
    help="sample to create (default: fraud_detection; an existing project in DIR is reused)",
)
@click.option("--headless", is_flag=True, help="run the same steps, print a summary")
@click.option(
    "--first-act-only",
    is_flag=True,
    help="stop after training (no server, drifted traffic, retraining or canary)",
)
def demo(dir: str | None, sample: str, headless: bool, first_act_only: bool, as_json: bool) -> int:
    from workbench.demo import acts

    def echo(line: str) -> None:  # with --json, stdout carries only the JSON
        print(line, file=sys.stderr if as_json else sys.stdout, flush=True)

    if not headless:
        _need_terminal("the demo's TUI", "run `workbench demo --headless` for the demo without it")
    root = acts.prepare(Path(dir) if dir else None, echo=echo, sample=sample)
    act2 = None if first_act_only else acts.second_act(root, echo=echo)
    code = acts.summary(root, as_json=as_json) if headless else open_tui(str(root))
    if act2:
        echo(f"the demo's server still runs at {act2['url']}: workbench stop {act2['job']}")
    return code
