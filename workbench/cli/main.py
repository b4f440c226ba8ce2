"""The `workbench` command: assembles the command modules' declarations and runs them.
No command opens the TUI; every TUI action is also a command.

Errors the user can act on print one line (`workbench: error: ...`) and exit non-zero:
2 for bad arguments or config, 1 for failed data, jobs or registry operations.
To add a command, declare it in its group's module (see `workbench.cli.common`); a new
module goes in MODULES.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import ModuleType

import click

from workbench import __version__
from workbench.cli import (
    audit,
    card,
    data,
    governance,
    jobs,
    lineage,
    monitoring,
    monitoring_performance,
    monitoring_segments,
    monitoring_skew,
    registry,
    roles,
    serving,
    setup,
    sql,
    store,
    training,
)
from workbench.cli.common import Group, project_dir, project_option, read_only_option, run
from workbench.cli.tui import open_tui

# In the order `workbench --help` lists them.
MODULES: tuple[ModuleType, ...] = (
    setup,
    data,
    training,
    registry,
    governance,
    roles,
    audit,
    card,
    jobs,
    serving,
    monitoring,
    monitoring_performance,
    monitoring_segments,
    monitoring_skew,
    lineage,
    sql,
    store,
)


@click.group(
    "workbench",
    cls=Group,
    invoke_without_command=True,
    subcommand_metavar="[COMMAND] [ARGS]...",
    help="A terminal MLOps workbench. With no command, opens the TUI.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@project_option
@read_only_option
@click.version_option(__version__, "--version", message="workbench %(version)s")
@click.pass_context
def cli(ctx: click.Context) -> int:
    if ctx.invoked_subcommand is None:
        return open_tui(project_dir())
    return 0


for _module in MODULES:
    for _command in _module.commands.items:
        cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> int:
    return run(cli, argv)


if __name__ == "__main__":
    sys.exit(main())
