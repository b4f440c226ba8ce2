"""A project: a folder holding workbench.toml, and its store under `.workbench/`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from workbench.config import CONFIG_FILE, Config, load_config
from workbench.errors import ConfigError

STORE_DIR = ".workbench"
#: Override `[store] tracking_uri` / `registry_uri` (a CI job pointing at a team server).
TRACKING_URI_ENV = "WORKBENCH_TRACKING_URI"
REGISTRY_URI_ENV = "WORKBENCH_REGISTRY_URI"


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: cwd) holding workbench.toml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise ConfigError(
        f"no {CONFIG_FILE} found in {here} or any folder above it "
        "(pass --project DIR, or create one with `workbench init DIR --sample fraud_detection`)"
    )


@dataclass(frozen=True)
class LogsRoot:
    """Where a project's logs live: `local` (the store's logs/ folder) and, with `[logs] uri`,
    the s3:// URI of the shared ones (see workbench/store/parquet_log.py SHARED_LOGS)."""

    local: Path
    uri: str | None = None
    endpoint_env: str | None = None
    refresh_s: float = 2.0  # [logs] refresh_s: how long a listing of an S3 log is reused


@dataclass(frozen=True)
class Project:
    root: Path
    config: Config = field(repr=False)

    @classmethod
    def load(cls, path: Path | str | None = None) -> Project:
        """Load the project at `path` (a folder or a workbench.toml), or the nearest one."""
        if path is None:
            root = find_project_root()
        else:
            p = Path(path).expanduser().resolve()
            if p.is_file() and p.name == CONFIG_FILE:
                root = p.parent
            elif p.is_dir():
                root = p
            else:
                raise ConfigError(f"--project {path}: no such folder")
            if not (root / CONFIG_FILE).is_file():
                raise ConfigError(f"--project {path}: no {CONFIG_FILE} in {root}")
        return cls(root=root, config=load_config(root / CONFIG_FILE))

    # Paths inside the store -------------------------------------------------------------
    @property
    def store(self) -> Path:
        """`.workbench/` in the project, or WORKBENCH_STORE (a job in a container is given
        the host's store, bind-mounted at the same absolute path, so MLflow's URIs hold)."""
        override = os.environ.get("WORKBENCH_STORE")
        return Path(override) if override else self.root / STORE_DIR

    @property
    def _store_uri(self) -> str | None:
        """`WORKBENCH_TRACKING_URI` (a CI job's override), else `[store] tracking_uri`."""
        return os.environ.get(TRACKING_URI_ENV) or self.config.store.tracking_uri

    @property
    def mlflow_db(self) -> Path:
        """The SQLite store: `.workbench/mlflow.db`, or the file a sqlite:/// URI names
        (relative to the project)."""
        uri = self._store_uri
        if uri and uri.lower().startswith("sqlite:///"):
            path = Path(uri[len("sqlite:///") :])
            return path if path.is_absolute() else self.root / path
        return self.store / "mlflow.db"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking store as configured (never with a password: one only joins it
        at connection time, see workbench.store.backends)."""
        uri = self._store_uri
        if uri is None or uri.lower().startswith("sqlite:"):
            return f"sqlite:///{self.mlflow_db}"
        return uri

    @property
    def registry_uri(self) -> str:
        """The model registry's store: `WORKBENCH_REGISTRY_URI`, `[store] registry_uri`, or
        the tracking store."""
        uri = os.environ.get(REGISTRY_URI_ENV) or self.config.store.registry_uri
        if uri is None:
            return self.tracking_uri
        if uri.lower().startswith("sqlite:"):
            path = Path(uri[len("sqlite:///") :])
            return f"sqlite:///{path if path.is_absolute() else self.root / path}"
        return uri

    @property
    def is_embedded_store(self) -> bool:
        """Whether runs and models live in a local SQLite file (the default)."""
        return self.tracking_uri.startswith("sqlite:") and self.registry_uri.startswith("sqlite:")

    @property
    def artifacts(self) -> Path:
        return self.store / "artifacts"

    @property
    def logs(self) -> Path:
        return self.store / "logs"

    @property
    def logs_root(self) -> LogsRoot:
        """The logs as Db and ParquetLog take them: local, or shared in S3 (`[logs] uri`)."""
        cfg = self.config.logs
        return LogsRoot(self.logs, cfg.uri, cfg.endpoint_env, cfg.refresh_s)

    @property
    def jobs_dir(self) -> Path:
        return self.store / "jobs"

    @cached_property
    def data_path(self) -> Path:
        return (self.root / self.config.data.path).resolve()

    @property
    def name(self) -> str:
        return self.config.project.name

    @property
    def experiment_name(self) -> str:
        return self.config.project.name

    def ensure_store(self) -> None:
        for folder in (self.store, self.artifacts, self.logs, self.jobs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        ignore = self.store / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")
