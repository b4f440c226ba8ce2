"""What the reconciler re-reads, and when: only when a file it depends on changed.

The reconciler polls every 0.2 s. Reading the deployment state (a JSON file) and the serving
alias (a SQLite query through the store reader) each time cost the serving process's GIL five
times a second, for a state that changes a few times a day. `StateWatch` stats the files
instead (the state file, the registry's SQLite file and its WAL: ~5 us each) and says to
re-read when one of them changed, and in any case every `REREAD_S` (a change that kept size
and mtime, a clock that stepped back). A registry that is not a local SQLite file (PostgreSQL,
a tracking server) cannot be stat'ed and is read at every poll, as before.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.project import Project

#: Seconds after which everything is re-read even though no file seems to have changed.
REREAD_S = 2.0

Stamp = tuple[tuple[int, int, int] | None, ...]


def registry_files(project: Project) -> list[Path] | None:
    """The local SQLite files the registry lives in (the database and its WAL), or None
    when the registry is not a local SQLite file."""
    uri = project.registry_uri
    if not uri.lower().startswith("sqlite:///"):
        return None
    path = Path(uri[len("sqlite:///") :].split("?", 1)[0])
    if not path.is_absolute():
        path = project.root / path
    return [path, path.with_name(path.name + "-wal")]


def stamp(paths: list[Path]) -> Stamp:
    """(mtime_ns, size, inode) of each path, None for one that does not exist."""
    out: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append(None)
        else:
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


class StateWatch:
    """`due()` is true when the state or the registry must be read again; `read()` records
    that they were."""

    def __init__(self, state_file: Path, registry: list[Path] | None) -> None:
        self.paths = [state_file, *(registry or [])]
        self.remote = registry is None
        self._stamp: Stamp | None = None
        self._read_at = -1e18

    def due(self) -> bool:
        if self.remote or time.monotonic() - self._read_at >= REREAD_S:
            return True
        return stamp(self.paths) != self._stamp

    def read(self) -> None:
        """Call just before reading: a change made while reading is seen next time."""
        self._stamp = stamp(self.paths)
        self._read_at = time.monotonic()

    def forget(self) -> None:
        """Read again at the next poll (a read failed)."""
        self._stamp = None
        self._read_at = -1e18
