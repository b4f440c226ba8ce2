"""`[monitoring]`: what is watched beyond drift. Segments and fairness (which logged features
split the traffic, which of them are sensitive, the gaps that alert), performance estimated
before the labels arrive (CBPE), training-serving skew, and `[monitoring.value]`, what each
outcome is worth. `workbench.config` puts it in the whole file; a kernel module (no package of
the core)."""

from __future__ import annotations

from pydantic import Field, model_validator

from workbench.config_sections import Section


class FairnessSection(Section):
    """`[monitoring.fairness]`: when a gap between the groups of a sensitive segment alerts."""

    #: the largest difference of positive rates (or mean predictions) between two groups
    demographic_parity_difference: float = Field(default=0.1, ge=0, le=1)
    #: the smallest ratio of the lowest positive rate to the highest (the four-fifths rule)
    demographic_parity_ratio: float = Field(default=0.8, ge=0, le=1)
    #: the largest difference of true-positive rates between two groups (binary tasks)
    equal_opportunity_difference: float = Field(default=0.1, ge=0, le=1)


class ValueSection(Section):
    """`[monitoring.value]`: what one outcome is worth, in the team's unit (money). Binary
    classification: the four outcomes at the evaluation threshold; regression: a cost per unit
    of absolute error (a cost is a negative value). Unset: no value is computed."""

    true_positive: float = 0.0
    false_positive: float = 0.0
    false_negative: float = 0.0
    true_negative: float = 0.0
    abs_error: float = 0.0  # regression: value per unit of |prediction - label| (e.g. -0.5)
    unit: str = ""  # shown after the figures, e.g. "EUR"

    @property
    def configured(self) -> bool:
        return any(
            (
                self.true_positive,
                self.false_positive,
                self.false_negative,
                self.true_negative,
                self.abs_error,
            )
        )


class MonitoringSection(Section):
    #: logged features that split the traffic (numeric ones bucketed by training quantiles)
    segments: list[str] = Field(default_factory=list)
    #: the segments fairness is measured on (each must be in `segments`)
    sensitive: list[str] = Field(default_factory=list)
    buckets: int = Field(default=4, ge=2, le=20)  # quantile buckets of a numeric segment
    min_count: int = Field(default=100, ge=1)  # a group with fewer rows is suppressed
    bootstrap: int = Field(default=200, ge=0, le=10_000)  # resamples of each interval (0: none)
    confidence: float = Field(default=0.95, gt=0, lt=1)  # of the bootstrap intervals
    window: str = "24h"  # what `workbench segments` reads by default (30m, 24h, 7d)
    #: estimate the model's metric from its probabilities while labels are missing (CBPE)
    estimate: bool = True
    #: training-serving skew (`workbench skew`): the served features' distribution against the
    #: training profile alerts past these (as TFDV: L-infinity distance of the category
    #: frequencies for categorical features, Jensen-Shannon divergence, base 2, of the decile
    #: bins for numeric ones)
    skew_linf: float = Field(default=0.1, gt=0, le=1)
    skew_js: float = Field(default=0.05, gt=0, le=1)
    fairness: FairnessSection = FairnessSection()
    value: ValueSection = ValueSection()

    @model_validator(mode="after")
    def _sensitive_are_segments(self) -> MonitoringSection:
        missing = [s for s in self.sensitive if s not in self.segments]
        if missing:
            raise ValueError(f"sensitive {missing} must also be in segments")
        if len(set(self.segments)) != len(self.segments):
            raise ValueError("segments has a feature twice")
        return self
