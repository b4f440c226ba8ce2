"""Names that users and clients give (aliases, job ids, run names, samples) checked once.

Anything that becomes part of a path or an MLflow key is checked against a safe pattern here,
and paths built from such names are checked to stay inside the folder they belong to. Every
check raises `UsageError` with one line naming what was wrong and where it came from.
"""

from __future__ import annotations

import re
from pathlib import Path

from workbench.errors import UsageError

#: Job ids, run names, sample names: letters, digits, `_`, `-`, `.` (not leading), <= 128.
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
#: MLflow's own alias rule (mlflow.utils.validation): word characters and `-`, <= 255,
#: and neither `latest` (any case) nor a version-like `v<digits>`, which MLflow reserves.
_ALIAS = re.compile(r"^[\w\-]{1,255}$", re.ASCII)
_VERSION_LIKE = re.compile(r"^[vV]\d+$")


def alias_problem(alias: str) -> str | None:
    """Why `alias` cannot be a registry alias, or None when it can."""
    if not isinstance(alias, str) or not alias:
        return "an alias must not be empty"
    if not _ALIAS.match(alias):
        return (
            f"alias {alias!r} may hold only letters, digits, '_' and '-' (at most 255 characters)"
        )
    if alias.lower() == "latest":
        return "alias 'latest' is reserved by MLflow (it always means the newest version)"
    if _VERSION_LIKE.match(alias):
        return f"alias {alias!r} looks like a version number, which MLflow reserves"
    return None


def check_alias(alias: str, where: str = "--alias") -> str:
    """`alias` if MLflow will take it, else UsageError naming `where`."""
    problem = alias_problem(alias)
    if problem:
        raise UsageError(f"{where}: {problem}")
    return alias


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a job id, run name or sample name, or None when it can."""
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        shown = repr(name)[:80]
        return (
            f"{shown} is not a safe name (letters, digits, '_', '-' and '.', "
            "not starting with '.' or '-', at most 128 characters)"
        )
    return None


def check_name(name: str, where: str) -> str:
    """`name` if it is safe to put in a path, else UsageError naming `where`."""
    problem = name_problem(name)
    if problem:
        raise UsageError(f"{where}: {problem}")
    return name


def inside(base: Path, *parts: str, where: str = "path") -> Path:
    """`base / parts...`, resolved, or UsageError when it would leave `base`."""
    root = base.resolve()
    path = root.joinpath(*parts).resolve()
    if path != root and root not in path.parents:
        raise UsageError(f"{where}: {'/'.join(parts)!r} resolves outside {root}")
    return path


def check_label(text: str, where: str, limit: int = 250) -> str:
    """A free-text label (a run name): printable characters only, at most `limit` long."""
    if not text or len(text) > limit or not text.isprintable():
        raise UsageError(
            f"{where}: {repr(text)[:80]} must be 1 to {limit} printable characters "
            "(no control characters or line breaks)"
        )
    return text
