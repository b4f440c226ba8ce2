"""The team's sections of workbench.toml: `[store]` (where MLflow keeps runs and models),
`[logs]` (where the shared logs live) and `[ray]` (the cluster the ray runner submits to), and
the base every section model shares. `workbench.config` builds the whole file from these."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Section(BaseModel):
    """A config section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


#: URI schemes `[store] tracking_uri` / `registry_uri` accept (what MLflow accepts for a store).
STORE_SCHEMES = (
    "sqlite",
    "postgresql",
    "postgresql+psycopg2",
    "postgresql+psycopg",
    "http",
    "https",
)
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def store_uri_problem(uri: str) -> str | None:
    """Why `uri` cannot be a tracking/registry store (None: it can). Never quotes the URI:
    it may hold a password."""
    from urllib.parse import urlsplit

    scheme, sep, _ = uri.partition("://")
    if not sep or scheme.lower() not in STORE_SCHEMES:
        return f"must start with one of {', '.join(s + '://' for s in STORE_SCHEMES)}"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (a port that is no number raises here)
    except ValueError as exc:
        return f"not a valid URI ({exc})"
    if parts.password is not None:
        where = (
            "set MLFLOW_TRACKING_PASSWORD, or name the variable that holds it"
            if scheme.lower().startswith("http")
            else "name the environment variable that holds it"
        )
        return f"holds a password (user:password@): refused in workbench.toml; {where} in " + (
            "[store] password_env"
        )
    if scheme.lower() == "sqlite" and not uri.startswith("sqlite:///"):
        return "a SQLite store is sqlite:///relative/path.db or sqlite:////absolute/path.db"
    return None


class StoreSection(Section):
    """`[store]`: where MLflow keeps runs and models. Default: the embedded SQLite store
    (`.workbench/mlflow.db`); a team points it at PostgreSQL or a tracking server. Credentials
    never live here: `*_env` name the variables that hold them."""

    tracking_uri: str | None = None
    registry_uri: str | None = None  # default: tracking_uri
    username_env: str | None = Field(default=None, pattern=_ENV_NAME)
    password_env: str | None = Field(default=None, pattern=_ENV_NAME)
    token_env: str | None = Field(default=None, pattern=_ENV_NAME)

    @model_validator(mode="before")
    @classmethod
    def _uris(cls, raw: Any) -> Any:
        # Before field checks, and reported against the section (not the value): a refused
        # URI is never echoed back, since it may hold a password.
        if isinstance(raw, dict):
            for key in ("tracking_uri", "registry_uri"):
                value = raw.get(key)
                if isinstance(value, str):
                    problem = store_uri_problem(value)
                    if problem:
                        raise ValueError(f"{key} {problem}")
        return raw


class RaySection(Section):
    """`[ray]`: the ray runner submits jobs to this cluster's Jobs API."""

    address: str | None = Field(default=None, pattern=r"^https?://.+")  # http://HOST:8265
    python: str = Field(default="python", min_length=1)  # the cluster's Python (entrypoint)
    #: "upload": the project folder goes with each job (runtime_env working_dir, without
    #: .workbench/); "shared": the cluster sees the project at the same path (no upload)
    project: Literal["upload", "shared"] = "upload"
    upload_max_mb: float = Field(default=100.0, gt=0)  # a bigger upload: use "shared"
    excludes: list[str] = Field(default_factory=list)  # more paths left out of the upload
    pending_timeout_s: float = Field(default=120.0, gt=0)  # pending so long, no node fits: stop
    trial_cpus: float = Field(default=1.0, gt=0)  # a sweep trial's Ray task
    #: environment variables handed to the job when set here (a team store's credentials)
    pass_env: list[str] = Field(
        default_factory=lambda: [
            "MLFLOW_TRACKING_URI",
            "MLFLOW_TRACKING_USERNAME",
            "MLFLOW_TRACKING_PASSWORD",
            "MLFLOW_TRACKING_TOKEN",
            "MLFLOW_S3_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
        ]
    )


class LogsSection(Section):
    """`[logs]`: where the shared logs (predictions, labels, drift, jobs, audit) live. No
    `uri`: under the project's store on local disk (the default). `uri = "s3://bucket/prefix"`:
    in S3-compatible object storage, shared by every server, monitor and Workbench."""

    uri: str | None = Field(default=None, description="s3://bucket/prefix")
    endpoint_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="env var holding the S3 endpoint (default AWS_ENDPOINT_URL, then "
        "MLFLOW_S3_ENDPOINT_URL)",
    )
    refresh_s: float = Field(
        default=2.0,
        ge=0,
        le=12,  # s3_log.MAX_REFRESH_S: a tenth of the grace period retired files are kept
        description="seconds a process reuses its listing of an S3 log before listing it "
        "again (its own writes show at once; other writers' within this window)",
    )

    @field_validator("uri")
    @classmethod
    def _s3_uri(cls, value: str | None) -> str | None:
        if value is None:
            return None
        bucket = value.removeprefix("s3://").split("/", 1)[0]
        if not value.startswith("s3://") or not bucket:
            raise ValueError("must be an s3://bucket/prefix URI")
        return value.rstrip("/")


def _user_names(value: list[str]) -> list[str]:
    for name in value:
        if not name.strip() or name != name.strip():
            raise ValueError(f"user names must be non-empty, without spaces around (got {name!r})")
    return value


class AliasGovernance(Section):
    """`[governance.aliases.<alias>]`: who may move one alias of the model, and how."""

    approvers: list[str] = Field(default_factory=list)  # who may approve (required 0: move)
    required_approvals: int = Field(default=0, ge=0)  # 0: approvers move it directly
    requesters: list[str] = Field(default_factory=list)  # who may request/move (empty: anyone)
    rollback: list[str] = Field(default_factory=list)  # who may roll back (empty: anyone)

    _names = field_validator("approvers", "requesters", "rollback")(_user_names)

    @model_validator(mode="after")
    def _enough_approvers(self) -> AliasGovernance:
        have = len(set(self.approvers))
        if self.required_approvals > have:
            raise ValueError(
                f"required_approvals = {self.required_approvals} needs at least that many "
                f"approvers (approvers lists {have})"
            )
        return self


class GovernanceSection(Section):
    """`[governance]`: approvals for alias moves. No `[governance.aliases.X]`: X moves as it
    always did (anyone may promote and roll back)."""

    request_ttl_h: float = Field(default=72.0, gt=0)  # a pending request expires after this
    aliases: dict[str, AliasGovernance] = Field(default_factory=dict)

    @field_validator("aliases")
    @classmethod
    def _alias_names(cls, value: dict[str, AliasGovernance]) -> dict[str, AliasGovernance]:
        from workbench.names import alias_problem

        for alias in value:
            problem = alias_problem(alias)
            if problem:
                raise ValueError(f"{alias!r}: {problem}")
        return value
