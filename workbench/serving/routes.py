"""What the inference server routes to: the served variants (production, and a canary with
its share of traffic) as one immutable value the reconciler swaps in one assignment."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from typing import Any

from workbench.serving.responses import Shaper
from workbench.tasks import ModelTask


@dataclass(frozen=True)
class Variant:
    name: str  # "production" | "canary"
    version: int
    predictor: Any  # workbench.serving.predictors.Predictor
    shaper: Shaper = field(init=False, compare=False)  # responses per the model's task

    def __post_init__(self) -> None:
        object.__setattr__(self, "shaper", Shaper(getattr(self.predictor, "task", ModelTask())))


@dataclass(frozen=True)
class Routes:
    production: Variant
    canary: Variant | None = None
    traffic: float = 0.0
    sticky_key: str | None = None
    generation: int = 0

    def pick(self, record: dict[str, Any] | None = None) -> Variant:
        canary = self.canary
        if canary is None:
            return self.production
        if self.sticky_key is not None and record is not None:
            key = str(record.get(self.sticky_key)).encode("utf-8", "surrogatepass")
            return canary if zlib.crc32(key) % 10_000 < self.traffic * 10_000 else self.production
        return canary if random.random() < self.traffic else self.production

    def describe(self) -> dict[str, Any]:
        canary = self.canary
        return {
            "generation": self.generation,
            "production": {"version": self.production.version},
            "canary": None
            if canary is None
            else {
                "version": canary.version,
                "traffic": self.traffic,
                "sticky_key": self.sticky_key,
            },
        }
