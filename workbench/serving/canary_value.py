"""The business value the canary rule judges: `[monitoring.value]` per 1,000 labelled
predictions of each variant, read from the prediction log joined with the labels (the server
sees no label itself). Labels arrive late, so the rows are those of the canary's whole life
(since it started being served), not only the rule's latency window; the DuckDB join runs at
most every `every_s` seconds, while the rule is asked about once a second."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from typing import Any

from workbench.config import CanarySection
from workbench.errors import WorkbenchError
from workbench.project import Project
from workbench.serving.canary_rule import WindowStats
from workbench.store.parquet_log import utcnow


class ValueWatch:
    def __init__(self, project: Project, every_s: float = 10.0) -> None:
        self.project = project
        self.every_s = every_s
        self.since: datetime = utcnow()
        self._at = -float("inf")
        self._figures: dict[str, tuple[float | None, int]] = {}

    def reset(self) -> None:
        """A new canary is served: its value counts from now."""
        self.since, self._at, self._figures = utcnow(), -float("inf"), {}

    def apply(
        self, rule: CanarySection, production: WindowStats, canary: WindowStats, version: int
    ) -> tuple[WindowStats, WindowStats]:
        """The windows with each variant's value and labelled count (as they are without
        `min_value_drop_per_1k` or a configured `[monitoring.value]`); `version`: production's."""
        value = self.project.config.monitoring.value
        if rule.min_value_drop_per_1k is None or not value.configured:
            return production, canary
        if time.monotonic() - self._at >= self.every_s:
            self._at = time.monotonic()
            self._figures = self._read(rule, version)
        p, c = (self._figures.get(v, (None, 0)) for v in ("production", "canary"))
        return (
            replace(production, value_per_1k=p[0], labelled=p[1]),
            replace(canary, value_per_1k=c[0], labelled=c[1]),
        )

    def _read(self, rule: CanarySection, version: int) -> dict[str, tuple[float | None, int]]:
        from workbench.serving.predictors import task_of
        from workbench.serving.stats import variant_stats
        from workbench.store.db import Db

        try:
            task = task_of(self.project, version)
            with Db(self.project.logs_root) as db:
                stats: dict[str, Any] = variant_stats(
                    db,
                    rule.window_s,
                    model=self.project.config.model_name,
                    metric_since=self.since,
                    task=task,
                    value=self.project.config.monitoring.value,
                )
        except (WorkbenchError, OSError, ValueError):
            return {}
        return {name: (s.value_per_1k, s.labeled) for name, s in stats.items()}
