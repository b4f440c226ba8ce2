"""User-facing errors. The CLI prints these as one line and exits with their code; no traceback."""

from __future__ import annotations


class WorkbenchError(Exception):
    """An error the user can act on. `exit_code` is what the CLI exits with."""

    exit_code = 1


class UsageError(WorkbenchError):
    """Bad CLI arguments or config: exit code 2, as argparse does."""

    exit_code = 2


class ConfigError(UsageError):
    """workbench.toml is missing, malformed or invalid."""


class DataError(WorkbenchError):
    """The data snapshot cannot be read or does not match what the config says."""


class ValidationFailed(WorkbenchError):
    """Data validation found failures; the pipeline stops."""


class RegistryError(WorkbenchError):
    """A model registry operation cannot be done (unknown version, nothing to roll back to)."""


class JobFailed(WorkbenchError):
    """A job (training, serving) ended badly; the message says why."""


class ReadOnly(WorkbenchError):
    """A change was asked for in read-only mode (`--read-only`, WORKBENCH_READ_ONLY,
    `[tui] read_only`); nothing was changed."""
