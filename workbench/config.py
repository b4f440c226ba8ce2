"""workbench.toml: the project's settings, validated on load.

Every mistake becomes one `ConfigError` line naming the file, the key and what is wrong.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from workbench.config_monitoring import MonitoringSection
from workbench.config_sections import (
    GovernanceSection,
    LogsSection,
    RaySection,
    Section,
    StoreSection,
)
from workbench.errors import ConfigError
from workbench.names import alias_problem
from workbench.tasks import ALL_METRICS, METRICS, TaskType, bare_metric, default_metric

CONFIG_FILE = "workbench.toml"

ColumnType = Literal["int", "float", "str", "category", "bool", "datetime"]
#: Seeds go to polars, numpy and the trainer: an unsigned 32-bit range fits every one of them.
MAX_SEED = 2**32 - 1


def _alias(value: str) -> str:
    problem = alias_problem(value)
    if problem:
        raise ValueError(problem)
    return value


_Section = Section


class ProjectSection(_Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""


class DataSection(_Section):
    path: str = Field(
        min_length=1, description="CSV or Parquet file (or a glob), relative to the project"
    )
    target: str = Field(min_length=1)
    timestamp: str | None = None
    id_column: str | None = None
    split: Literal["time", "random"] = "time"
    holdout_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)
    validation_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)
    seed: int = Field(default=42, ge=0, le=MAX_SEED)
    drop: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _time_split_needs_timestamp(self) -> DataSection:
        if self.split == "time" and not self.timestamp:
            raise ValueError("split = 'time' needs data.timestamp to name the time column")
        return self

    @model_validator(mode="after")
    def _target_is_not_another_role(self) -> DataSection:
        roles = {"timestamp": self.timestamp, "id_column": self.id_column}
        for key, column in roles.items():
            if column is not None and column == self.target:
                raise ValueError(f"target {self.target!r} is also the {key}")
        if self.target in self.drop:
            raise ValueError(f"target {self.target!r} is in drop: the model would have no label")
        return self


class ColumnSpec(_Section):
    type: ColumnType
    min: float | None = None
    max: float | None = None
    allowed: list[str] | None = None
    max_missing: float | None = Field(default=None, ge=0.0, le=1.0)
    max_nonfinite: float | None = Field(default=None, ge=0.0, le=1.0)  # +inf/-inf share
    outliers: bool = True

    @model_validator(mode="after")
    def _min_below_max(self) -> ColumnSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class ValidationSection(_Section):
    max_missing: float = Field(default=0.0, ge=0.0, le=1.0)
    max_nonfinite: float = Field(default=0.0, ge=0.0, le=1.0)  # +inf/-inf, per float column
    outlier_method: Literal["iqr", "zscore"] = "iqr"
    outlier_threshold: float = Field(default=3.0, gt=0.0)
    max_outlier_fraction: float = Field(default=0.01, ge=0.0, le=1.0)
    min_rows: int = Field(default=100, ge=1)
    allow_extra_columns: bool = True
    fail_on_warning: bool = False


class TaskSection(_Section):
    """`[task]`: what the model predicts. `classes` fixes the class order (the last is the
    positive class of a binary task); by default the target's sorted distinct values."""

    type: TaskType = "binary"
    classes: list[str | int | float | bool] | None = None
    positive_class: str | int | float | bool | None = None

    @model_validator(mode="after")
    def _classes_fit(self) -> TaskSection:
        if self.type == "regression" and (self.classes or self.positive_class is not None):
            raise ValueError("a regression task has no classes (remove classes/positive_class)")
        if self.classes is not None:
            if len(set(map(str, self.classes))) != len(self.classes):
                raise ValueError("classes must be distinct")
            if len(self.classes) < 2:
                raise ValueError("classes needs two or more values")
            if self.type == "binary" and len(self.classes) != 2:
                raise ValueError(f"a binary task has two classes (got {len(self.classes)})")
        if self.type != "binary" and self.positive_class is not None:
            raise ValueError("positive_class is for a binary task")
        return self


class TrainerSection(_Section):
    plugin: str = "lightgbm"
    params: dict[str, Any] = Field(default_factory=dict)
    # the sklearn trainer: the estimator's import path
    estimator: str | None = Field(default=None, min_length=1)
    # the script trainer: your own training command, run as the job
    command: list[str] | None = Field(default=None, min_length=1)


class EvaluationSection(_Section):
    metric: str | None = None  # default: the task's first metric (auc, macro_f1, rmse)
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)


class GateSection(_Section):
    min_improvement: float = 0.0
    auto_promote: bool = False
    max_regression: dict[str, float] = Field(default_factory=dict)
    #: compare `[monitoring.value]` per 1,000 holdout predictions instead of the metric
    #: (min_improvement is then in value per 1,000; max_regression still guards the metrics)
    by_value: bool = False

    @field_validator("max_regression")
    @classmethod
    def _known_metrics(cls, value: dict[str, float]) -> dict[str, float]:
        for name in value:
            if bare_metric(name) not in ALL_METRICS:  # a typo the gate would skip silently
                known = ", ".join(f"holdout_{m}" for m in ALL_METRICS)
                raise ValueError(f"unknown metric {name!r} (use one of {known})")
        return value


class RegistrySection(_Section):
    model_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    candidate_alias: str = "staging"
    production_alias: str = "production"

    _aliases = field_validator("candidate_alias", "production_alias")(_alias)

    @model_validator(mode="after")
    def _two_aliases(self) -> RegistrySection:
        if self.candidate_alias == self.production_alias:
            raise ValueError(
                f"candidate_alias and production_alias are both {self.production_alias!r}"
            )
        return self


class RunnerSection(_Section):
    default: Literal["auto", "local", "docker", "ray"] = "auto"


class DockerSection(_Section):
    """How jobs run in containers (the docker runner)."""

    base_image: str = "python:3.11-slim"
    image: str | None = None  # a prebuilt job image: use it, build nothing
    dockerfile: str | None = None  # the project's own Dockerfile (default: ./Dockerfile if any)
    requirements: str | None = None  # extra pip requirements (default: ./requirements.txt if any)
    ca_bundle: str | None = None  # a CA bundle (PEM) trusted during builds, for proxies
    index_url: str | None = None
    extra_index_urls: list[str] = Field(default_factory=list)
    host_pip: bool = True  # carry the host's pip settings and CA bundle into builds
    build_network: str = "host"
    cpus: float | None = Field(default=None, gt=0)
    memory: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?[bkmgBKMG]?$")
    gpus: int | Literal["all"] = 0
    user: str = "auto"  # "auto": the host user's uid:gid, so files in the store stay yours

    @field_validator("gpus")
    @classmethod
    def _gpu_count(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("must be a number of GPUs (0 or more) or 'all'")
        return value


class ResourcesSection(_Section):
    """`[resources]`: what a job may use, whatever runs it. `gpus` > 0: trainers that can
    use a GPU do (xgboost trains on CUDA) and the Docker runner requests the devices."""

    gpus: int | Literal["all"] | None = None  # None: [docker] gpus
    cpus: float | None = Field(default=None, gt=0)  # the ray runner: entrypoint_num_cpus
    memory: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?[bkmgBKMG]?$")

    @field_validator("gpus")
    @classmethod
    def _gpu_count(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value < 0:
            raise ValueError("must be a number of GPUs (0 or more) or 'all'")
        return value


class CanarySection(_Section):
    """The automatic-rollback rule: the server judges the canary against production over a
    sliding window and rolls it back on its own (audited) when it is worse by a margin."""

    auto_rollback: bool = True
    window_s: float = Field(default=60.0, gt=0)
    min_requests: int = Field(default=50, ge=1)  # per variant in the window before judging
    max_error_rate_increase: float = Field(default=0.02, ge=0, le=1)  # canary - production
    max_p99_increase_ms: float = Field(default=25.0, ge=0)  # canary p99 - production p99
    #: roll back when the canary's `[monitoring.value]` per 1,000 labelled predictions is below
    #: production's by more than this (both need min_requests labelled rows; None: not judged)
    min_value_drop_per_1k: float | None = Field(default=None, ge=0)


class ServingSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    alias: str = "production"  # what `workbench serve` serves by default
    token_env: str = "WORKBENCH_SERVE_TOKEN"  # bearer token read from this variable, if set
    max_batch: int = Field(default=10_000, ge=1)  # records per request
    log_max_rows: int = Field(default=5_000, ge=1)  # prediction log: rows per file at most
    log_interval_s: float = Field(default=1.0, gt=0)  # and a file at least this often
    workers: int | None = Field(default=None, ge=1, le=64)  # processes (None: 1 per core, <= 8)
    #: request fields logged with the prediction and returned with it, never fed to the model
    #: (the project's `[data] id_column` always is, when a request carries it)
    passthrough: list[str] = Field(default_factory=list)
    canary: CanarySection = CanarySection()

    _serving_alias = field_validator("alias")(_alias)


DriftTest = Literal["psi", "kl", "js", "wasserstein", "ks", "chi2"]


class DriftFeatureRule(_Section):
    """`[drift.features.<column>]`: the test that decides this feature's status, and its
    warn/alert thresholds (p-values for ks and chi2: drift when p is below them)."""

    test: DriftTest | None = None
    warn: float | None = Field(default=None, ge=0.0)
    alert: float | None = Field(default=None, ge=0.0)


class DriftSection(_Section):
    psi_warn: float = Field(default=0.1, ge=0.0)
    psi_alert: float = Field(default=0.25, ge=0.0)
    p_value: float = Field(default=0.05, gt=0.0, lt=1.0)
    numeric_test: Literal["psi", "kl", "js", "wasserstein", "ks"] = "psi"
    categorical_test: Literal["psi", "chi2", "js"] = "psi"
    window: str = Field(default="24h", pattern=r"^[0-9]+(\.[0-9]+)?[smhd]$")  # e.g. 30m, 24h, 7d
    last_n: int | None = Field(default=None, ge=1)  # check the last N predictions instead
    min_rows: int = Field(default=100, ge=1)  # fewer current rows: nothing is judged
    features: dict[str, DriftFeatureRule] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _warn_below_alert(self) -> DriftSection:
        if self.psi_warn > self.psi_alert:
            raise ValueError("psi_warn must not exceed psi_alert")
        return self


class MonitorSection(_Section):
    """`workbench monitor` and the TUI's monitor: when to retrain on drift or decay."""

    enabled: bool = False  # the TUI runs the monitor in the background when true
    interval_s: float = Field(default=300.0, gt=0)
    min_rows: int = Field(default=500, ge=1)  # predictions needed in the window to judge
    alert_features: int = Field(default=2, ge=1)  # retrain when this many features alert
    metric_drop: float = Field(default=0.05, gt=0)  # or the metric got this much worse (its units)
    metric_drop_relative: float | None = Field(default=None, gt=0)  # or this share of holdout
    #: or the CBPE estimate of the metric (binary) fell this much below the holdout's: acts
    #: before the labels arrive (None: off)
    estimated_metric_drop: float | None = Field(default=None, gt=0)
    cooldown_s: float = Field(default=3600.0, ge=0)  # between two retrainings
    canary_traffic: float = Field(default=10.0, ge=0, le=100)  # start the candidate as a
    # canary at this share when a server runs (0: register it only)


class TuiSection(_Section):
    theme: str | None = None
    #: Every mutating key does nothing but say so (also `workbench --read-only`).
    read_only: bool = False
    keys: dict[str, str] = Field(default_factory=dict, description="binding id -> key")


class Config(_Section):
    project: ProjectSection
    data: DataSection
    schema_: dict[str, ColumnSpec] = Field(default_factory=dict, alias="schema")
    task: TaskSection = TaskSection()
    validation: ValidationSection = ValidationSection()
    trainer: TrainerSection = TrainerSection()
    evaluation: EvaluationSection = EvaluationSection()
    gate: GateSection = GateSection()
    registry: RegistrySection = RegistrySection()
    runner: RunnerSection = RunnerSection()
    docker: DockerSection = DockerSection()
    resources: ResourcesSection = ResourcesSection()
    ray: RaySection = RaySection()
    serving: ServingSection = ServingSection()
    drift: DriftSection = DriftSection()
    monitor: MonitorSection = MonitorSection()
    store: StoreSection = StoreSection()
    tui: TuiSection = TuiSection()
    logs: LogsSection = LogsSection()
    governance: GovernanceSection = GovernanceSection()
    monitoring: MonitoringSection = MonitoringSection()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("schema_")
    @classmethod
    def _schema_names(cls, value: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        for name in value:
            if not name.strip():
                raise ValueError("column names must not be empty")
        return value

    @model_validator(mode="after")
    def _metrics_fit_the_task(self) -> Config:
        kind, metrics = self.task.type, METRICS[self.task.type]
        named = self.evaluation.metric
        if named is not None and named not in metrics:
            raise ValueError(
                f"[evaluation].metric {named!r} is not a {kind} metric (use one of "
                f"{', '.join(metrics)}; set [task].type for another task)"
            )
        for name in self.gate.max_regression:
            if bare_metric(name) not in metrics:
                raise ValueError(
                    f"[gate.max_regression].{name} is not a {kind} metric "
                    f"(use one of {', '.join(metrics)})"
                )
        return self

    @model_validator(mode="after")
    def _by_value_is_priced(self) -> Config:
        if self.gate.by_value and not self.monitoring.value.configured:
            raise ValueError(
                "[gate].by_value needs [monitoring.value] (true_positive, false_positive, ... or "
                "abs_error)"
            )
        if self.gate.by_value and self.task.type == "multiclass":
            raise ValueError("[gate].by_value: value is not defined for a multiclass task")
        return self

    @model_validator(mode="after")
    def _segments_are_features(self) -> Config:
        if not self.schema_:
            return self
        features = self.features
        for name in self.monitoring.segments:
            if name not in features:
                raise ValueError(
                    f"[monitoring].segments: {name!r} is not a feature (features: "
                    f"{', '.join(features[:8])}{', ...' if len(features) > 8 else ''})"
                )
        return self

    @property
    def metric(self) -> str:
        """The metric the gate compares (bare name: `auc`, `macro_f1`, `rmse`)."""
        return self.evaluation.metric or default_metric(self.task.type)

    @property
    def gpus(self) -> int | str:
        """GPUs a job may use: `[resources] gpus`, else `[docker] gpus` (0, a count, "all")."""
        return self.resources.gpus if self.resources.gpus is not None else self.docker.gpus

    @property
    def model_name(self) -> str:
        return self.registry.model_name or self.project.name

    @property
    def features(self) -> list[str]:
        """Model inputs: the schema's columns less the target, timestamp, id and dropped ones."""
        skip = {self.data.target, self.data.timestamp, self.data.id_column, *self.data.drop}
        return [name for name in self.schema_ if name not in skip]


def _format_loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("schema_", "schema"):
        # [schema.amount].min, as the TOML file spells the table
        parts = [f"schema.{parts[1]}", *parts[2:]] if len(parts) > 1 else ["schema"]
    if not parts:
        return "(top level)"
    head, rest = parts[0], parts[1:]
    return f"[{head}]" + ("." + ".".join(rest) if rest else "")


def _describe(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid value"))
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see the config reference in the README)"
    if kind == "missing":
        return "required key is missing"
    msg = msg.removeprefix("Value error, ")
    if "input" in err and kind not in ("model_type", "dict_type"):
        value = err["input"]
        if not isinstance(value, dict | list):
            shown = repr(value)
            msg += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
    return msg


def parse_config(text: str, source: str = CONFIG_FILE) -> Config:
    """Parse and validate TOML text; raise ConfigError with one line naming source and key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid TOML: arrays or tables nested too deeply") from None
    except Exception as exc:  # the parser failed in a way it does not document: still one line
        raise ConfigError(f"{source}: not valid TOML: {type(exc).__name__}: {exc}") from None
    try:
        return Config.model_validate(raw)
    except RecursionError:
        raise ConfigError(f"{source}: values nested too deeply to check") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        more = exc.error_count() - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        where = f"{_format_loc(tuple(first['loc']))}: " if first["loc"] else ""
        raise ConfigError(f"{source}: {where}{_describe(dict(first))}{suffix}") from None


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_config(text, str(path))
