"""FeatureTable: the Drift screen's features, one row each (status, deciding test, score, PSI,
missing values), the status coloured from the theme (drift.tcss)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.widgets import DataTable
from workbench_tui.drift_format import STATUS_LABEL, TEST_LABEL, fmt_num, status_level

if TYPE_CHECKING:
    from workbench.drift.evaluate import FeatureDrift

#: The feature column's width when the table is narrow (longer names end in "…").
NARROW_FEATURE_W = 18
OTHER_COLUMNS_W = 6 + 4 + 7 + 7 + 4 + 2 * 6 + 1


class FeatureTable(DataTable[Any]):
    """The features, one row each, the status coloured from the theme."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "feature-table--alert",
        "feature-table--warn",
        "feature-table--ok",
        "feature-table--muted",
    }

    def style_of(self, level: str) -> Any:
        return self.get_component_rich_style(f"feature-table--{level}", partial=True)

    def set_columns(self, feature_width: int | None) -> None:
        """(Re)create the columns: the feature column as wide as the names, when it fits."""
        self.clear(columns=True)
        for name, width in (
            ("feature", feature_width),
            ("status", 6),
            ("test", 4),
            ("score", 7),
            ("psi", 7),
            ("miss", 4),
        ):
            self.add_column(name, key=name, width=width)

    def fill(self, features: Sequence[FeatureDrift]) -> None:
        """One row per feature (keyed by its name), the columns made again to fit the names."""
        style = self.style_of
        longest = max((len(fd.feature) for fd in features), default=7)
        # the other columns and every column's padding take OTHER_COLUMNS_W
        fits = self.size.width >= longest + OTHER_COLUMNS_W
        width = longest if fits else min(longest, NARROW_FEATURE_W)
        self.set_columns(max(7, width))
        for fd in features:
            level = status_level(fd.status)
            missing = fd.missing + fd.nonfinite
            name = fd.feature if len(fd.feature) <= width else fd.feature[: width - 1] + "…"
            self.add_row(
                Text(name),
                Text(STATUS_LABEL.get(fd.status, fd.status), style=style(level)),
                Text(TEST_LABEL.get(fd.test, fd.test)),
                Text(fmt_num(fd.score), justify="right", style=style(level)),
                Text(fmt_num(fd.stats.get("psi")), justify="right"),
                Text(f"{missing:,}" if missing else "0", justify="right"),
                key=fd.feature,
            )
