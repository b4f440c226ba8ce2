"""`workbench store migrate --to URI`: copy a project's embedded store (SQLite mlflow.db and
its local artifacts) to a team's MLflow (a PostgreSQL database or a tracking server), then
check that both sides hold the same.

The work is in four modules: migrate_source reads the SQLite store and the audit log,
migrate_target checks and reaches the target, migrate_runs copies experiments, runs and
logged models, migrate_registry the registered models, versions, aliases and alias history;
migrate_verify counts both sides. This module runs them in order, writes the old -> new id
mapping to `.workbench/migrations/<target>.json`, and, with `switch`, points the project's
`[store] tracking_uri` at the target (that one key rewritten, every comment kept).

Nothing is written to the project unless the copy succeeded, and nothing at all on a dry
run (a database target without MLflow's tables is not even given them).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.config import CONFIG_FILE, parse_config
from workbench.errors import ConfigError, UsageError, ValidationFailed
from workbench.project import Project
from workbench.registry import migrate_registry as reg
from workbench.registry import migrate_runs as runs
from workbench.registry import migrate_source as src
from workbench.registry import migrate_target as tgt
from workbench.registry import migrate_verify as verify
from workbench.registry.migrate_runs import Mapping, Options

__all__ = ["Options", "Result", "migrate", "switch_text", "toml_lines"]


@dataclass
class Result:
    target: str  # the password masked
    dry_run: bool
    copy: dict[str, int]  # what was (or, on a dry run, would be) copied now
    counts: list[dict[str, Any]] = field(default_factory=list)  # verify.compare's rows
    mapping_file: str | None = None
    toml: str = ""
    switched: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def differs(self) -> list[str]:
        return verify.differences(self.counts)


def toml_lines(target: str) -> str:
    from workbench.data.toml_text import toml_string

    return f"[store]\ntracking_uri = {toml_string(tgt.without_password(target))}\n"


def migrate(project: Project, opts: Options, switch: bool = False) -> Result:
    """Copy, write the mapping file, verify; `switch` only checks that it can follow (the
    caller switches once it has shown the counts: `switch_config`)."""
    runs.check_options(opts)
    if switch and opts.prefix:
        raise UsageError("--switch keeps the project's names: it cannot go with --name-prefix")
    tgt.probe(opts.target)
    source = src.read(project)
    if opts.dry_run:
        return _dry_run(source, opts)
    client = tgt.client(opts.target)
    maps = Mapping()
    runs.existing(client, source, opts, maps)
    runs.copy_runs(client, source, opts, maps)
    reg.copy_models(client, source, opts, maps)
    mapping = _write_mapping(project, source, opts, maps)
    opts.echo("verifying: counting both sides")
    rows = verify.compare(verify.source_side(source), verify.target_side(client, source, maps))
    result = Result(
        target=tgt.masked(opts.target),
        dry_run=False,
        copy=maps.copied,
        counts=rows,
        mapping_file=str(mapping),
        toml=toml_lines(opts.target),
    )
    return result


def check(result: Result) -> None:
    """A mismatch is a failure (exit 1) naming what differs."""
    if result.differs:
        raise ValidationFailed(
            f"the target differs from the source in: {', '.join(result.differs)} "
            f"(see the table; run the command again to copy what is missing)"
        )


def _dry_run(source: src.Source, opts: Options) -> Result:
    maps = Mapping()
    have: dict[str, set[int]] = {}
    if tgt.has_mlflow_tables(opts.target):
        client = tgt.client(opts.target)
        runs.existing(client, source, opts, maps)
        for model in source.models:
            name = opts.prefix + model.name
            if client.search_registered_models(f"name = '{reg._quoted(name)}'"):
                have[model.name] = set(reg.target_versions(client, name))
    todo = [r for r in source.runs if r.run_id not in maps.runs]
    files = 0
    for location in [r.artifact_uri for r in todo] + [
        m.artifact_location for m in source.logged_models if m.model_id not in maps.logged_models
    ]:
        folder = src.local_dir(location)
        if folder is not None and folder.is_dir():
            files += sum(1 for p in folder.rglob("*") if p.is_file())
    plan = {
        "runs": len(todo),
        "runs already copied": len(source.runs) - len(todo),
        "metric points": sum(len(r.metrics) for r in todo),
        "params": sum(len(r.params) for r in todo),
        "run tags": sum(len(r.tags) for r in todo),
        "inputs": sum(len(r.datasets) + len(r.model_inputs) + len(r.model_outputs) for r in todo),
        "artifact files": files,
        "logged models": sum(
            1 for m in source.logged_models if m.model_id not in maps.logged_models
        ),
        "registered models": sum(1 for m in source.models if m.name not in have),
        "versions": sum(
            1 for m in source.models for v in m.versions if v.version not in have.get(m.name, ())
        ),
        "aliases": sum(len(m.aliases) for m in source.models),
        "audit rows": sum(len(m.audit) for m in source.models),
    }
    return Result(
        target=tgt.masked(opts.target), dry_run=True, copy=plan, toml=toml_lines(opts.target)
    )


def _write_mapping(project: Project, source: src.Source, opts: Options, maps: Mapping) -> Path:
    path = runs.mapping_path(project, opts.target)
    body = {
        "target": tgt.masked(opts.target),
        "source": project.tracking_uri,
        "migrated_at": datetime.now(UTC).isoformat(),
        "name_prefix": opts.prefix,
        "experiments": {
            name: {"name": opts.prefix + name, "id": exp_id}
            for name, exp_id in sorted(maps.experiments.items())
        },
        "runs": dict(sorted(maps.runs.items())),
        "logged_models": dict(sorted(maps.logged_models.items())),
        "models": {
            m.name: {"name": maps.models.get(m.name), "versions": [v.version for v in m.versions]}
            for m in source.models
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


_SECTION = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*tracking_uri\s*=")


def switch_text(text: str, target: str) -> str:
    """workbench.toml's text with `[store] tracking_uri` set to `target` (no password): the
    key's line replaced, or added under `[store]`, or a `[store]` table appended; every
    other line (comments included) kept as it was."""
    from workbench.data.toml_text import toml_string

    line = f"tracking_uri = {toml_string(tgt.without_password(target))}"
    lines = text.splitlines()
    section = None
    store_at = None
    for i, raw in enumerate(lines):
        head = _SECTION.match(raw)
        if head:
            section = head.group(1).strip()
            if section == "store":
                store_at = i
            continue
        if section == "store" and _KEY.match(raw):
            comment = raw.split("#", 1)[1] if "#" in raw.split("=", 1)[1] else None
            lines[i] = line + (f"  #{comment}" if comment else "")
            return "\n".join(lines) + "\n"
    if store_at is not None:
        lines.insert(store_at + 1, line)
        return "\n".join(lines) + "\n"
    tail = "" if not lines or not lines[-1].strip() else "\n"
    return text.rstrip("\n") + "\n" + tail + "[store]\n" + line + "\n"


def switch_config(project: Project, target: str) -> Path:
    path = project.root / CONFIG_FILE
    new = switch_text(path.read_text(encoding="utf-8"), target)
    try:
        parse_config(new, str(path))
    except ConfigError as exc:
        raise ConfigError(
            f"{path}: left unchanged, the new [store] tracking_uri does not load ({exc}); "
            "put the printed lines in by hand"
        ) from None
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)
    return path
