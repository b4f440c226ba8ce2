"""What a user chose on the Experiments screen, kept in the project's store across visits and
restarts: the runs table's columns and the pinned baseline run.

The file is `.workbench/tui/experiments.json`. It is the TUI's state, not configuration: an
unreadable or malformed file reads as "nothing chosen" (the defaults), and a write replaces it
atomically."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from workbench.project import Project

#: In the store folder.
PREFS_FILE = "tui/experiments.json"


@dataclass
class ExperimentsPrefs:
    """`columns`: the runs table's columns after the run's own (None: the default ones);
    `baseline`: the pinned run's id."""

    columns: list[str] | None = None
    baseline: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def prefs_path(project: Project) -> Path:
    return project.store / PREFS_FILE


def load(project: Project) -> ExperimentsPrefs:
    try:
        raw = json.loads(prefs_path(project).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ExperimentsPrefs()
    if not isinstance(raw, dict):
        return ExperimentsPrefs()
    columns = raw.get("columns")
    if not (isinstance(columns, list) and all(isinstance(c, str) for c in columns)):
        columns = None
    baseline = raw.get("baseline")
    extra = {k: v for k, v in raw.items() if k not in ("columns", "baseline")}
    return ExperimentsPrefs(columns, baseline if isinstance(baseline, str) else None, extra)


def save(project: Project, prefs: ExperimentsPrefs) -> None:
    path = prefs_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    body = {**prefs.extra, "columns": prefs.columns, "baseline": prefs.baseline}
    try:
        tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
