"""No command: open the TUI, found through the `workbench.ui` entry point (the core never
imports screens/). Without a terminal it says so in one line instead of drawing escape codes.

`start` is the TUI's start path from `workbench.cli.main.main`: no click, no command module,
no config parsing here (the TUI paints first, then loads the project)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any

from workbench.errors import UsageError, WorkbenchError

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


def ui_entry() -> Callable[[str | None], Any]:
    """The TUI's `run_tui`, through the `workbench.ui:tui` entry point. It takes the project's
    folder (None: the nearest project) and loads the project itself, after its first frame
    when it can (workbench_tui.overview_cache).

    The entry point's value is cached (`_entry_cache()`) while every folder on sys.path has
    the mtime it had: installing or removing a distribution adds or removes a `.dist-info`
    folder in one of them. importlib.metadata and the scan of every distribution cost the
    first frame 20-50 ms here."""
    cache = _entry_cache()
    stamp = _path_stamp()
    try:
        with open(cache) as fh:
            cached = json.load(fh)
        if cached["stamp"] == stamp:
            module, _, attr = str(cached["value"]).partition(":")
            run_tui: Callable[[str | None], Any] = getattr(import_module(module), attr)
            return run_tui
    except (OSError, ValueError, KeyError, TypeError, ImportError, AttributeError):
        pass
    from importlib.metadata import entry_points

    eps = [ep for ep in entry_points(group="workbench.ui") if ep.name == "tui"]
    if not eps:
        raise WorkbenchError("the TUI is not installed (entry point workbench.ui:tui is missing)")
    run_tui = eps[0].load()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"stamp": stamp, "value": eps[0].value}))
        os.replace(tmp, cache)
    except OSError:
        pass  # a cache: the next start looks the entry point up again
    return run_tui


def _entry_cache() -> Path:
    """Per interpreter and sys.path, in the user's cache folder."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.sha256("\0".join([sys.executable, *sys.path]).encode()).hexdigest()[:16]
    return Path(base) / "workbench" / f"ui-entry-{key}.json"


def _path_stamp() -> list[int | None]:
    stamp: list[int | None] = []
    for folder in sys.path:
        try:
            stamp.append(os.stat(folder or ".").st_mtime_ns)
        except OSError:
            stamp.append(None)
    return stamp


def open_tui(project_dir: str | None) -> int:
    """Open the TUI on the project at `project_dir` (None: the nearest one). A bad project or
    workbench.toml is a WorkbenchError before the TUI draws anything."""
    _need_terminal(
        "the TUI", f"the same steps run headless as commands: {HEADLESS} (workbench --help)"
    )
    return int(ui_entry()(project_dir) or 0)


def start(args: Sequence[str]) -> int | None:
    """`workbench [--project DIR] [--read-only]`: open the TUI without click and the command
    modules (they cost the first frame ~0.15 s); None when `args` ask for anything else.
    Errors as `workbench.cli.common.run` gives them: one line, 2 for usage and config, 1 for a
    failure, 130 on Ctrl-C."""
    project_dir: str | None = None
    read_only = False
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--read-only":
            read_only = True
        elif arg == "--project" and rest and rest[0] and not rest[0].startswith("-"):
            project_dir = rest.pop(0)
        elif arg.startswith("--project=") and len(arg) > len("--project="):
            project_dir = arg[len("--project=") :]
        else:
            return None  # a command, --help, --version, a typo: click says what it is
    from workbench import readonly

    was_read_only = readonly.force(read_only)
    try:
        return open_tui(project_dir)
    except WorkbenchError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as exc:  # a bug: one line, and the traceback kept, as for any command
        if os.environ.get("WORKBENCH_DEBUG"):
            raise
        from workbench.cli import common

        _error(
            f"unexpected {type(exc).__name__}: {common._first_line(exc)} "
            f"({common._keep_traceback()})"
        )
        return 1
    finally:
        readonly.force(was_read_only)


def _error(msg: str) -> None:
    print(f"workbench: error: {msg}", file=sys.stderr)
