"""A sweep's search space, from `--param KEY=...` arguments, and the sweep's spec as the job
gets it (JSON). Pure parsing: no Optuna, no MLflow (the CLI checks arguments with it).

    num_leaves=16..128          an integer range (both ends integers), inclusive
    learning_rate=0.01..0.3     a float range
    learning_rate=0.001..0.3..log   the same on a log scale (ends above 0)
    boosting=gbdt,dart          choices (numbers and true/false are read as such)
    num_iterations=50           a fixed value for every trial
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.errors import UsageError

MAX_TRIALS = 10_000
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_INT = re.compile(r"^[+-]?\d+$")
Scalar = str | int | float | bool


@dataclass(frozen=True)
class Dim:
    """One searched param: `kind` "int" | "float" (low..high, inclusive) or "choice"."""

    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Scalar, ...] = ()

    def ends(self) -> list[Scalar]:
        """The values that bound what a trial can get (checked before the sweep starts)."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]

    def describe(self) -> str:
        if self.kind == "choice":
            return ",".join(str(c) for c in self.choices)
        low, high = self.ends()
        return f"{low}..{high}" + ("..log" if self.log else "")


@dataclass(frozen=True)
class SweepSpec:
    """What the sweep job runs: `trials` trials over `space`, `fixed` params for every trial
    (over the project's [trainer.params]), the parent run's `name`, the sampler's `seed`."""

    trials: int
    space: dict[str, Dim]
    fixed: dict[str, Any] = field(default_factory=dict)
    name: str = "sweep"
    seed: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SweepSpec:
        raw = json.loads(text)
        space = {
            k: Dim(**{**v, "choices": tuple(v.get("choices", ()))}) for k, v in raw["space"].items()
        }
        return cls(
            int(raw["trials"]),
            space,
            dict(raw.get("fixed") or {}),
            str(raw["name"]),
            raw.get("seed"),
        )


def _number(text: str, pair: str) -> int | float:
    text = text.strip()
    if _INT.match(text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"--param {pair}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"--param {pair}: {text!r} is not a finite number")
    return value


def _scalar(text: str) -> Scalar:
    """A value as `workbench train --param` reads it: JSON when it parses, else the text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, Scalar) else text


def _range(value: str, pair: str) -> Dim:
    parts = value.split("..")
    log = len(parts) == 3 and parts[2].strip().lower() == "log"
    if len(parts) != 2 and not log:
        raise UsageError(f"--param {pair}: expected low..high or low..high..log")
    low, high = _number(parts[0], pair), _number(parts[1], pair)
    if not low < high:
        raise UsageError(f"--param {pair}: the low end must be below the high end")
    if log and low <= 0:
        raise UsageError(f"--param {pair}: a log scale needs a low end above 0")
    kind = "int" if isinstance(low, int) and isinstance(high, int) else "float"
    return Dim(kind, float(low), float(high), log)


def _choices(value: str, pair: str) -> Dim:
    items = [item.strip() for item in value.split(",")]
    if any(not item for item in items):
        raise UsageError(f"--param {pair}: an empty choice (expected a,b,c)")
    choices = tuple(_scalar(item) for item in items)
    if len(set(map(repr, choices))) != len(choices):
        raise UsageError(f"--param {pair}: a choice is repeated")
    return Dim("choice", choices=choices)


def parse_params(pairs: tuple[str, ...] | list[str]) -> tuple[dict[str, Dim], dict[str, Any]]:
    """The searched dimensions and the fixed params of `--param` arguments; a bad one is one
    UsageError line naming it."""
    space: dict[str, Dim] = {}
    fixed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise UsageError(f"--param {pair!r}: expected KEY=low..high, KEY=a,b,c or KEY=VALUE")
        if not _KEY.match(key):
            raise UsageError(f"--param {pair!r}: {key!r} is not a param name")
        if key in space or key in fixed:
            raise UsageError(f"--param {pair!r}: {key} is given twice")
        if ".." in value:
            space[key] = _range(value, pair)
        elif "," in value:
            space[key] = _choices(value, pair)
        else:
            fixed[key] = _scalar(value.strip())
    return space, fixed


def check_trials(trials: int) -> int:
    if not 1 <= trials <= MAX_TRIALS:
        raise UsageError(f"--trials {trials}: must be 1 to {MAX_TRIALS}")
    return trials


def corner_params(space: dict[str, Dim], fixed: dict[str, Any]) -> list[dict[str, Any]]:
    """Param sets that hold every end and choice of every dimension at least once (with the
    fixed params): checking them checks every value a trial can get against the trainer's
    rules (ranges there are intervals)."""
    widest = max((len(d.ends()) for d in space.values()), default=0)
    return [
        {**fixed, **{k: d.ends()[min(i, len(d.ends()) - 1)] for k, d in space.items()}}
        for i in range(max(1, widest))
    ]


def command_line(params: dict[str, Any]) -> str:
    """`--param KEY=VALUE ...` for `params`, quoted for a POSIX shell."""
    import shlex

    def shown(v: Any) -> str:
        return v if isinstance(v, str) else json.dumps(v)

    return " ".join(f"--param {shlex.quote(f'{k}={shown(v)}')}" for k, v in params.items())
