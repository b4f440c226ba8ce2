"""The fast read path's interface: what Workbench reads from an MLflow store without
importing mlflow (the runs table, the Models screen, the server's version lookup).

One implementation per kind of store: MLflow's own tables read directly for SQLite and
PostgreSQL (the same schema), MLflow's REST API for an http(s) tracking server. Writes always
go through the MLflow client. `reader_for(project)` (backends.py) picks the implementation from
`[store] tracking_uri`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from workbench.store.mlflow_tables import StoreModelVersion, StoreRun

#: (key, step, value, timestamp_ms) of one logged metric point.
MetricPoint = tuple[str, int, float, int]


class StoreReader(Protocol):
    """Reads of one MLflow store. A store that does not exist yet reads as empty."""

    #: What the user sees as the store's address, credentials left out.
    location: str

    def read_runs(self, since_ms: int | None = None) -> list[StoreRun]:
        """Every run (since_ms None), or at least every run that may have changed at or after
        `since_ms` (started, ended, still running, metrics or tags logged since): a reader may
        return more. The runs index syncs with `since_ms` after its first full read."""
        ...

    def read_metric_history(self, run_ids: list[str]) -> dict[str, list[MetricPoint]]:
        """Per run: every logged metric point, ordered by key, step, timestamp."""
        ...

    def read_model_versions(self, name: str | None = None) -> list[StoreModelVersion]:
        """Registered model versions (newest first) with their aliases and tags."""
        ...

    def read_aliases(self, name: str) -> dict[str, int]:
        """Model `name`'s aliases and the version each points at."""
        ...

    def read_latest_metrics(self, run_ids: list[str]) -> dict[str, dict[str, float]]:
        """Per run in `run_ids`: its latest value of each metric."""
        ...

    def read_version_tags(self, name: str, keys: Iterable[str]) -> list[tuple[int, str, str]]:
        """(version, key, value) of model `name`'s version tags with a key in `keys`."""
        ...

    def running_run_ids(self, tag: str, value: str, run_id: str | None = None) -> list[str]:
        """Runs the store still has as RUNNING: `run_id`, and those tagged `tag` = `value`."""
        ...

    def logged_model_location(self, model_id: str) -> str | None:
        """Where logged model `model_id` (m-...) keeps its artifacts (None: not in the store)."""
        ...

    def run_artifact_uri(self, run_id: str) -> str | None:
        """Run `run_id`'s artifact root (None: not in the store)."""
        ...
