"""The `workbench` command: assembles the command modules' declarations and runs them.
No command opens the TUI; every TUI action is also a command.

Errors the user can act on print one line (`workbench: error: ...`) and exit non-zero:
2 for bad arguments or config, 1 for failed data, jobs or registry operations.
To add a command, declare it in its group's module (see `workbench.cli.common`); a new
module goes in MODULES.

Start path: `main` opens the TUI for `workbench [--project DIR] [--read-only]` without
importing click or any command module (`workbench.cli.tui.start`); `cli` and `MODULES` are
built on first use (module `__getattr__`), so `from workbench.cli.main import cli` works
as before.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import click


@cache
def _modules() -> tuple[ModuleType, ...]:
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

    # In the order `workbench --help` lists them.
    return (
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


@cache
def _cli() -> click.Group:
    import click

    from workbench import __version__
    from workbench.cli.common import Group, project_dir, project_option, read_only_option
    from workbench.cli.tui import open_tui

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

    for module in _modules():
        for command in module.commands.items:
            cli.add_command(command)
    return cli


def __getattr__(name: str) -> Any:
    if name == "cli":
        return _cli()
    if name == "MODULES":
        return _modules()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from workbench.cli import tui

    code = tui.start(args)
    if code is not None:
        return code
    from workbench.cli.common import run

    return run(_cli(), args)


if __name__ == "__main__":
    sys.exit(main())
