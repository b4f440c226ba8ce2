"""The Overview's cached snapshot: what the TUI paints first, before the project is loaded.

`workbench` with no command paints the Overview from `<store>/tui/overview.json` (the last
Overview the TUI loaded, and the few config facts the first frame needs), then loads the
project (pydantic), DuckDB, polars and the registry in workers and repaints. The first frame
costs textual and this module only: json, hashlib and a few stat calls.

A snapshot is used only when it is true for this project:
- its key is the sha256 of workbench.toml's bytes and of the variables that move the store
  (WORKBENCH_STORE, WORKBENCH_TRACKING_URI, WORKBENCH_REGISTRY_URI; hashed, a URI may hold a
  password). A toml that changed since is validated before the TUI opens, as always (one line
  and exit 2 for a bad one), so a snapshot never hides a config error;
- it is *fresh* when its sources (MLflow's SQLite store, the runs and audit logs' manifests,
  each by mtime, size and inode; every log append replaces its manifest) are as they were
  when it was read from them. Otherwise, or for a store that cannot be stat'ed (a server,
  PostgreSQL, logs in S3), the Overview says when it was read and that it is refreshing.

The TUI writes it after every Overview load whose data or sources changed (the
fingerprint taken before the read, so a change during the read makes the next start stale).
Never imports pydantic, polars, pyarrow, DuckDB or mlflow.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.project import Project

VERSION = 1
CONFIG_FILE = "workbench.toml"  # workbench.config.CONFIG_FILE, without importing pydantic
STORE_ENV = ("WORKBENCH_STORE", "WORKBENCH_TRACKING_URI", "WORKBENCH_REGISTRY_URI")
#: The audit columns the Overview shows (the snapshot keeps no others).
AUDIT_COLUMNS = ("ts", "action", "alias", "from_version", "to_version", "actor", "reason")

Stat = tuple[int, int, int] | None


@dataclass
class AliasCard:
    alias: str
    version: int | None
    run_id: str | None
    metric: float | None
    champion: tuple[int, float] | None = None  # production's metric on the same holdout


@dataclass
class OverviewData:
    model: str
    metric: str
    cards: list[AliasCard]
    versions: int
    runs: list[dict[str, Any]]
    run_metrics: list[str]
    total_runs: int
    audit: list[dict[str, Any]]


@dataclass(frozen=True)
class ProjectFacts:
    """What the App and the first frame need of the config."""

    root: str
    name: str
    model: str
    keys: dict[str, str] = field(default_factory=dict)
    theme: str | None = None
    read_only: bool = False
    monitor: bool = False


@dataclass(frozen=True)
class Start:
    """A snapshot that holds for this project: paint it, then load the project."""

    root: Path
    facts: ProjectFacts
    overview: OverviewData
    fresh: bool  # its sources are as they were when it was read from them
    read_at: float  # time.time() when it was read from them


def facts_of(project: Project) -> ProjectFacts:
    cfg = project.config
    return ProjectFacts(
        root=str(project.root),
        name=project.name,
        model=cfg.model_name,
        keys=dict(cfg.tui.keys),
        theme=cfg.tui.theme,
        read_only=cfg.tui.read_only,
        monitor=cfg.monitor.enabled,
    )


# --- where, and the key ----------------------------------------------------------------


def find_root(project_dir: str | os.PathLike[str] | None) -> Path | None:
    """The project's folder as Project.load finds it, or None (Project.load then says why)."""
    if project_dir is None:
        here = Path.cwd().resolve()
        return next((p for p in (here, *here.parents) if (p / CONFIG_FILE).is_file()), None)
    p = Path(project_dir).expanduser().resolve()
    root = p.parent if p.is_file() and p.name == CONFIG_FILE else p
    return root if (root / CONFIG_FILE).is_file() else None


def path_for(root: Path) -> Path:
    """`<store>/tui/overview.json` (the store as Project.store has it)."""
    store = os.environ.get("WORKBENCH_STORE")
    return (Path(store) if store else root / ".workbench") / "tui" / "overview.json"


def key_for(root: Path) -> str:
    digest = hashlib.sha256((root / CONFIG_FILE).read_bytes())
    for name in STORE_ENV:
        digest.update(f"\0{name}={os.environ.get(name, '')}".encode())
    return digest.hexdigest()


def _stat(path: str) -> Stat:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def sources(project: Project) -> dict[str, Stat] | None:
    """The Overview's sources, each with its stat; None when one cannot be stat'ed (a
    tracking server, PostgreSQL, logs in S3): a snapshot of those is never called fresh."""
    if not project.is_embedded_store or project.config.logs.uri:
        return None
    paths = {str(project.mlflow_db)}
    registry = project.registry_uri
    if registry.lower().startswith("sqlite:///"):
        paths.add(registry[len("sqlite:///") :])
    paths |= {p + suffix for p in list(paths) for suffix in ("-wal", "-journal")}
    paths |= {str(project.logs / log / "_manifest.json") for log in ("runs", "audit")}
    return {p: _stat(p) for p in sorted(paths)}


# --- read and write --------------------------------------------------------------------


def _default(value: object) -> object:
    if isinstance(value, datetime | date):
        return {"$dt": value.isoformat()}
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def _hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "$dt" in obj:
        return datetime.fromisoformat(obj["$dt"])
    return obj


def encode(data: OverviewData) -> dict[str, Any]:
    out = asdict(data)
    out["audit"] = [{k: row.get(k) for k in AUDIT_COLUMNS} for row in data.audit]
    return out


def decode(raw: dict[str, Any]) -> OverviewData:
    cards = []
    for c in raw["cards"]:
        champion = c.get("champion")
        cards.append(
            AliasCard(
                alias=str(c["alias"]),
                version=c["version"],
                run_id=c["run_id"],
                metric=c["metric"],
                champion=(int(champion[0]), float(champion[1])) if champion else None,
            )
        )
    return OverviewData(
        model=str(raw["model"]),
        metric=str(raw["metric"]),
        cards=cards,
        versions=int(raw["versions"]),
        runs=list(raw["runs"]),
        run_metrics=[str(m) for m in raw["run_metrics"]],
        total_runs=int(raw["total_runs"]),
        audit=list(raw["audit"]),
    )


def read(project_dir: str | os.PathLike[str] | None) -> Start | None:
    """The snapshot for the project at `project_dir`, if there is one that holds for it."""
    try:
        root = find_root(project_dir)
        if root is None:
            return None
        with open(path_for(root), "rb") as fh:
            raw = json.loads(fh.read(), object_hook=_hook)
        if raw.get("version") != VERSION or raw.get("key") != key_for(root):
            return None
        stats: dict[str, Any] | None = raw["sources"]
        fresh = stats is not None and all(
            _stat(p) == (tuple(s) if s is not None else None) for p, s in stats.items()
        )
        return Start(
            root=root,
            facts=ProjectFacts(**raw["facts"]),
            overview=decode(raw["overview"]),
            fresh=fresh,
            read_at=float(raw["read_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None  # none, unreadable, or from another version: the full start


def write(
    project: Project, data: OverviewData, stats: dict[str, Stat] | None, read_at: float
) -> bool:
    """Save the snapshot (atomically; a failure is ignored: it is a cache). Whether written:
    not in read-only mode, nor when the one there already says the same of the same
    sources."""
    from workbench import readonly
    from workbench.config import load_config

    if readonly.enabled(project):
        return False  # looking without touching: not even a cache
    try:
        root = project.root
        if load_config(root / CONFIG_FILE) != project.config:
            return False  # a project changed in memory (tests): not what the file says
        path = path_for(root)
        if not path.parent.parent.is_dir():
            return False  # no store yet: the TUI does not create one (nor its .gitignore)
        body = {
            "version": VERSION,
            "key": key_for(root),
            "facts": asdict(facts_of(project)),
            "sources": stats,
            "overview": encode(data),
        }
        try:
            with open(path, "rb") as fh:
                old = json.loads(fh.read(), object_hook=_hook)
            if stats is not None and {k: old.get(k) for k in body} == json.loads(
                json.dumps(body, default=_default), object_hook=_hook
            ):
                return False
        except (OSError, ValueError):
            pass
        body["read_at"] = read_at
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(body, default=_default, separators=(",", ":")))
        os.replace(tmp, path)
        return True
    except (OSError, WorkbenchError):
        return False
