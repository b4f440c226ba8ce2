"""Setting up: `init` (a project from a sample) and `demo` (a sample project, trained, served)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from workbench.cli.common import Commands
from workbench.cli.tui import _need_terminal, open_tui

commands = Commands()


@commands.command("init", "create a project from a sample, with generated data")
@click.argument("dir", metavar="DIR")
@click.option("--sample", default="fraud_detection", help="sample name (default: fraud_detection)")
@click.option("--rows", type=int, default=50_000, help="rows of data to generate (>= 500)")
@click.option("--seed", type=int, default=7)
@click.option("--force", is_flag=True, help="overwrite an existing workbench.toml")
def init(dir: str, sample: str, rows: int, seed: int, force: bool) -> int:
    from workbench.demo import samples

    root = samples.init(Path(dir), sample, rows=rows, seed=seed, force=force)
    print(f"created project {sample!r} in {root}")
    print(f"next: cd {root} && workbench pipeline run")
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
