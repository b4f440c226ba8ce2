"""CurvesPlot: the per-step curves of several runs overlaid on real axes (textual-plotext),
the pinned baseline drawn distinctly (white dots), and the legend that goes with it.

The screen hands it `Curve`s with `show()`; drawing is plotext building a string from the
points, a few milliseconds for a handful of runs of a few thousand steps each (the points are
thinned to the plot's width first), so it happens on the event loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

#: Colours of the runs' curves, in the order the runs are added (plotext's names, which are
#: the terminal's 16 colours, so the legend can use the same with rich).
PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "red")
BASELINE_COLOUR = "white"
#: Points drawn per curve at most (a longer history is thinned evenly, the last point kept):
#: twice the braille dots across a plot of 80 columns.
MAX_POINTS = 160


@dataclass
class Curve:
    """One run's curve: its label, points, and how it is drawn."""

    run_id: str
    label: str
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    baseline: bool = False
    running: bool = False
    colour: str = ""


def thin(
    steps: list[int], values: list[float], most: int = MAX_POINTS
) -> tuple[list[int], list[float]]:
    """At most `most` points, evenly spaced, the first and last kept."""
    n = len(values)
    if n <= most:
        return steps, values
    pick = [round(i * (n - 1) / (most - 1)) for i in range(most)]
    return [steps[i] for i in pick], [values[i] for i in pick]


def assign_colours(curves: list[Curve]) -> None:
    """Baseline white, the others the palette's colours in order."""
    k = 0
    for curve in curves:
        if curve.baseline:
            curve.colour = BASELINE_COLOUR
        else:
            curve.colour = PALETTE[k % len(PALETTE)]
            k += 1


def _num(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.4g}"


def legend(curves: list[Curve], key: str | None, lower_is_better: bool) -> Text:
    """A header (the metric, `last` and `best`), then one line per curve: its
    mark in its colour (◆ the baseline), its name, its last and best value."""
    text = Text()
    if not key:
        text.append("no per-step metrics logged", style="dim")
        return text
    text.append(f"{key[:16]:<16}", style="bold")
    text.append(f"{'last':>7}{'best':>7}\n", style="dim")
    for curve in curves:
        text.append("◆ " if curve.baseline else "━ ", style=f"bold {curve.colour}")
        name = curve.label[:13] + "▶" if curve.running else curve.label[:14]
        text.append(f"{name:<14}", style="bold" if curve.baseline else "")
        if curve.values:
            best = min(curve.values) if lower_is_better else max(curve.values)
            text.append(f"{_num(curve.values[-1]):>7}")
            text.append(f"{_num(best):>7}", style="dim")
        else:
            text.append("  no points", style="dim")
        text.append("\n")
    text.rstrip()
    return text


def int_ticks(lo: int, hi: int, most: int = 5) -> list[int]:
    """Up to `most` whole-number ticks from `lo` to `hi` (steps are whole numbers)."""
    if hi <= lo:
        return [lo]
    span = hi - lo
    step = max(1, -(-span // (most - 1)))
    return list(range(lo, hi + 1, step))


class CurvesPlot(PlotextPlot):
    """Curves of runs on one metric: x is the step, y the value."""

    DEFAULT_CSS = """
    CurvesPlot {
        width: 1fr;
        height: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.curves: list[Curve] = []
        self.key: str | None = None
        self.builds = 0  # how many times plotext built the plot (for tests)
        self._version = 0
        self._built: tuple[Any, RenderResult] | None = None

    def show(self, curves: list[Curve], key: str | None) -> None:
        """Draw `curves` (colours already assigned) of metric `key`, the baseline first so
        the runs' curves draw over it. The same curves again (a live read that found nothing
        new) draw nothing."""
        if curves == self.curves and key == self.key and self._version:
            return
        self._version += 1
        self.curves = curves
        self.key = key
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.xlabel("step")
        drawn = [c for c in curves if c.values]
        if drawn:
            lo = min(c.steps[0] for c in drawn)
            hi = max(c.steps[-1] for c in drawn)
            ticks = int_ticks(lo, hi)
            plt.xticks([float(t) for t in ticks], [str(t) for t in ticks])
        for curve in sorted(drawn, key=lambda c: not c.baseline):
            steps, values = thin(curve.steps, curve.values)
            marker = "dot" if curve.baseline else "braille"
            if len(values) == 1:  # plotext draws no line through one point
                steps, values = steps * 2, values * 2
            plt.plot(steps, values, color=curve.colour, marker=marker)
        if not drawn:
            plt.title("no curve: mark runs with space" if key else "no per-step metrics")
        self.refresh()

    def render(self) -> RenderResult:
        # plotext builds the whole plot in Python (~30 us a point): once per change of the
        # curves, the size or the theme, not on every repaint
        stamp = (self._version, self.size, self.app.theme, self.theme)
        if self._built is None or self._built[0] != stamp:
            self._built = (stamp, super().render())
            self.builds += 1
        return self._built[1]

    @property
    def points(self) -> dict[str, int]:
        """run id -> points drawn (for tests and the legend)."""
        return {c.run_id: len(c.values) for c in self.curves}
