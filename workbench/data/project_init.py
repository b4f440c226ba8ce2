"""`workbench init DIR --data FILE --target COL`: a project from the user's own data. The data
is read (CSV, Parquet or a glob), its schema and task inferred, the files copied (or linked)
into DIR/data/, and a commented workbench.toml written that validates on that same data."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from workbench.config import CONFIG_FILE, Config, parse_config
from workbench.data.infer import Inference, infer
from workbench.data.snapshot import load_frame, read_data, snapshot_files
from workbench.data.toml_text import config_text
from workbench.data.validation import ValidationReport, validate_frame
from workbench.errors import UsageError
from workbench.tasks import TaskType

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class InitResult:
    root: Path
    config: Config
    inference: Inference
    report: ValidationReport


def project_name(root: Path, name: str | None) -> str:
    if name is not None:
        if not _NAME.match(name):
            raise UsageError(f"--name {name!r}: use letters, digits, '_', '.' and '-' only")
        return name
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", root.name).strip("_.-") or "project"


def _place_data(source: Path, files: list[Path], root: Path, link: bool) -> str:
    """Copy (or symlink) the snapshot's files into root/data/; the path [data].path names."""
    folder = root / "data"
    if all(f.resolve().parent == folder.resolve() for f in files):
        return f"data/{source.name}"  # already in place: nothing to copy
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        dest = folder / f.name
        if dest.is_symlink() or dest.exists():
            dest.unlink()
        if link:
            os.symlink(f.resolve(), dest)
        else:
            shutil.copyfile(f, dest)
    return f"data/{source.name}"


def init_from_data(
    root: Path,
    data: Path,
    *,
    target: str,
    task: TaskType | None = None,
    timestamp: str | None = None,
    id_column: str | None = None,
    name: str | None = None,
    link: bool = False,
    force: bool = False,
    echo: Callable[[str], None] = print,
) -> InitResult:
    """Infer, place the data, write workbench.toml, then validate the data against it."""
    root = root.expanduser().resolve()
    if (root / CONFIG_FILE).exists() and not force:
        raise UsageError(f"{root / CONFIG_FILE} already exists (use --force to overwrite)")
    title = project_name(root, name)
    files = snapshot_files(data)
    read = read_data(data)
    inference = infer(
        read.frame,
        target=target,
        task=task,
        timestamp=timestamp,
        id_column=id_column,
        notes=read.notes,
    )
    echo(f"task: {inference.task} ({inference.task_reason})")
    split = f"time on {inference.timestamp!r}" if inference.timestamp else "random (no timestamp)"
    features = len(inference.columns) - 1 - bool(inference.timestamp) - bool(inference.id_column)
    echo(f"schema: {len(inference.columns)} columns ({features} features); split: {split}")
    for note in inference.notes:
        echo(f"note: {note}")
    root.mkdir(parents=True, exist_ok=True)
    source = str(data if data.is_absolute() else data.resolve())
    data_path = _place_data(data, files, root, link)
    origin = f"{'Symlinks to' if link else 'A copy of'} {source}."
    text = config_text(inference, name=title, data_path=data_path, origin=origin)
    config = parse_config(text, f"{root / CONFIG_FILE} (as inferred)")
    tmp = root / f".{CONFIG_FILE}.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(root / CONFIG_FILE)
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text(".workbench/\n", encoding="utf-8")
    report = validate_frame(load_frame(root / data_path, config.schema_), config)
    return InitResult(root=root, config=config, inference=inference, report=report)
