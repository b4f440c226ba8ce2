"""Reads of the drift log (view `drift`, written by `checks.append`) for a UI or the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.store.db import Db

#: A feature's score history: (check time, score or None, status), oldest first.
History = list[tuple[datetime, float | None, str]]
#: Points per feature `drift_history` returns by default.
HISTORY_POINTS = 120


def drift_history(db: Db, model: str, points: int = HISTORY_POINTS) -> dict[str, History]:
    """Every feature's score over time for `model`: its newest `points` checks, oldest first."""
    rows = db.rows(
        "SELECT feature, ts, score, status FROM drift WHERE model = ? "
        "QUALIFY row_number() OVER (PARTITION BY feature ORDER BY ts DESC) <= ? "
        "ORDER BY feature, ts",
        [model, points],
    )
    out: dict[str, History] = {}
    for row in rows:
        out.setdefault(row["feature"], []).append((row["ts"], row["score"], row["status"]))
    return out
