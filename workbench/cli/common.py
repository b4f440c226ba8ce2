"""What every command needs: the project, JSON and table output, the shared options, one-line
errors, and `Commands`, the declarative registry each command module fills.

A command is one decorated function in its group's module::

    commands = Commands()

    @commands.command("models", "list registered versions with aliases and metrics", json=True)
    def models(as_json: bool) -> int:
        project = load_project()
        ...

`json=True` adds `--json` (as `as_json`), `runner=True` adds `--runner` and `--quiet`, and every
command takes `--project DIR` (also accepted before the command), read by `load_project()`.
Heavy imports (mlflow, lightgbm, polars, rich) stay inside the functions.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from rich.console import Console

    from workbench.project import Project

Callback = Callable[..., int]

_PROJECT = "workbench.project"  # key in click's context meta, shared by a command and its group
RUNNERS = ("auto", "local", "docker", "ray")
_NO_COMMAND = ("no such command", "missing command")


# --- output ------------------------------------------------------------------------------


def console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def error(msg: str) -> None:
    print(f"workbench: error: {msg}", file=sys.stderr)


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def fmt(value: Any) -> str:
    """A table cell: `-` for nothing, four decimals for a float."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


# --- the project -------------------------------------------------------------------------


def _remember_project(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    # The group's --project is parsed first, the command's after it: the last one given wins.
    if value is not None:
        ctx.meta[_PROJECT] = value


def project_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--project",
        metavar="DIR",
        expose_value=False,
        callback=_remember_project,
        help="project folder (default: nearest workbench.toml at or above cwd)",
    )(f)


def project_dir() -> str | None:
    """The --project given before or after the command, or None (the nearest project)."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(_PROJECT) if ctx is not None else None


def load_project() -> Project:
    from workbench.project import Project

    return Project.load(project_dir())


def _read_only(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        from workbench import readonly

        readonly.force(True)


def read_only_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--read-only",
        is_flag=True,
        expose_value=False,
        callback=_read_only,
        help="refuse every command and TUI key that changes the project (also "
        "WORKBENCH_READ_ONLY=1)",
    )(f)


# --- declaring commands --------------------------------------------------------------------


def _json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")(f)


def _runner_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--quiet",
        "-q",
        is_flag=True,
        help="do not stream the job's log (on stderr, or above the progress bar)",
    )(f)
    return click.option(
        "--runner",
        type=click.Choice(RUNNERS),
        help="where jobs run (default: [runner].default, auto = docker if an engine answers)",
    )(f)


_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


def _looks_positional(arg: str) -> bool:
    """As argparse reads it: a negative number, or text with a space (`sql "-- note ..."`)."""
    return bool(_NUMBER.match(arg)) or any(c.isspace() for c in arg)


class Guarded(click.Command):
    """Refuses a mutating command in read-only mode, just before it runs (after its arguments
    parsed, so `--help` and usage errors come first): the one place the CLI checks, by the
    classification in `workbench.cli.mutating`. A group is checked only when it runs alone."""

    def invoke(self, ctx: click.Context) -> Any:
        alone = not (getattr(ctx, "_protected_args", None) or ctx.args)
        if not isinstance(self, click.Group) or (alone and self.invoke_without_command):
            from workbench.cli.mutating import check, command_path

            check(command_path(ctx))
        return super().invoke(ctx)


class Command(Guarded):
    """A click command that reads an argument starting with `-` as argparse did: a negative
    number or text with a space in it is a positional argument, not an unknown option."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self._positionals_last(ctx, args))

    def _positionals_last(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {
            name
            for p in self.get_params(ctx)
            if isinstance(p, click.Option) and not p.is_flag and not p.count
            for name in p.opts
        }
        options: list[str] = []
        positionals: list[str] = []
        value_next = False
        for i, arg in enumerate(args):
            if value_next:
                options.append(arg)
                value_next = False
            elif arg == "--":
                positionals += args[i + 1 :]
                break
            elif arg.startswith("-") and len(arg) > 1 and not _looks_positional(arg):
                options.append(arg)
                value_next = arg in takes_value
            else:
                positionals.append(arg)
        if not any(a.startswith("-") and len(a) > 1 for a in positionals):
            return args  # nothing click would misread
        return [*options, "--", *positionals]


def make_command(
    f: Callback, name: str, help_: str, *, json: bool, runner: bool, epilog: str | None
) -> click.Command:
    """A click command with the shared options first: --project, --json, --runner, --quiet."""
    if runner:
        f = _runner_options(f)
    if json:
        f = _json_option(f)
    f = project_option(f)
    decorate = click.command(name, cls=Command, help=help_, short_help=help_, epilog=epilog)
    return decorate(f)


Decorator = Callable[[Callback], click.Command]


class Group(Guarded, click.Group):
    """A command group that lists its commands in the order they were declared."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def action(
        self, name: str, help_: str, *, json: bool = False, runner: bool = False
    ) -> Decorator:
        """Declare a command of this group (`workbench canary status`)."""

        def decorate(f: Callback) -> click.Command:
            cmd = make_command(f, name, help_, json=json, runner=runner, epilog=None)
            self.add_command(cmd)
            return cmd

        return decorate


class Commands:
    """One module's commands and groups, in the order declared; main.py adds every module's."""

    def __init__(self) -> None:
        self.items: list[click.Command] = []

    def command(
        self,
        name: str,
        help_: str,
        *,
        json: bool = False,
        runner: bool = False,
        epilog: str | None = None,
    ) -> Decorator:
        def decorate(f: Callback) -> click.Command:
            cmd = make_command(f, name, help_, json=json, runner=runner, epilog=epilog)
            self.items.append(cmd)
            return cmd

        return decorate

    def group(self, name: str, help_: str) -> Group:
        """A group of actions (`workbench canary ACTION`); `workbench canary` alone is an error."""
        group = Group(
            name,
            help=help_,
            short_help=help_,
            no_args_is_help=False,
            subcommand_metavar="ACTION [ARGS]...",
        )
        self.items.append(group)
        return group


# --- running -----------------------------------------------------------------------------


def _usage_line(exc: click.UsageError) -> str:
    """Click's usage error as one line: `workbench promote: missing option '--reason'`."""
    lines = [line.strip() for line in exc.format_message().splitlines() if line.strip()]
    msg = " ".join(lines).removesuffix(".") or "bad arguments"
    if msg[:1].isupper() and not msg[1:2].isupper():
        msg = msg[0].lower() + msg[1:]
    ctx = exc.ctx
    if ctx is not None and isinstance(ctx.command, click.Group) and msg.startswith(_NO_COMMAND):
        # `workbench bogus`, `workbench canary`: say what there is
        msg += f" (choose from {', '.join(ctx.command.list_commands(ctx))})"
    if ctx is not None and ctx.parent is not None:
        msg = f"{ctx.command_path}: {msg}"
    return msg


def run(cli: click.Command, argv: Sequence[str] | None) -> int:
    """Parse and run; every error is one line on stderr and an exit code, never a traceback:
    2 for bad arguments or config, 1 for a failed operation, 130 on Ctrl-C."""
    from workbench import readonly

    args = list(sys.argv[1:] if argv is None else argv)
    was_read_only = readonly.force(False)  # only this run's --read-only counts
    try:
        with cli.make_context("workbench", args) as ctx:
            return int(cli.invoke(ctx) or 0)
    except click.exceptions.Exit as exc:  # --help, --version
        return int(exc.exit_code)
    except click.UsageError as exc:
        error(_usage_line(exc))
        return 2
    except click.ClickException as exc:
        error(exc.format_message())
        return exc.exit_code
    except WorkbenchError as exc:
        error(str(exc))
        return exc.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        error("interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: one line, and the traceback kept for the report
        if os.environ.get("WORKBENCH_DEBUG"):
            raise
        error(f"unexpected {type(exc).__name__}: {_first_line(exc)} ({_keep_traceback()})")
        return 1
    finally:
        readonly.force(was_read_only)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or ["(no message)"])[0][:300]


def _keep_traceback() -> str:
    """Write the current exception's traceback to a temp file; say where (or how to see it)."""
    import tempfile
    import traceback

    try:
        fd, path = tempfile.mkstemp(prefix="workbench-traceback-", suffix=".txt")
        with os.fdopen(fd, "w") as fh:
            fh.write(traceback.format_exc())
    except OSError:
        return "run with WORKBENCH_DEBUG=1 to see the traceback"
    return f"a bug; the traceback is in {path}, please report it"
