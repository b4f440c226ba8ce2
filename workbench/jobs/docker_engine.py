"""Connecting to a Docker engine: DOCKER_HOST (ssh:// included) honoured, errors in one line."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    import docker

#: Every container and image Workbench makes carries this label (tests clean up by it).
LABEL = "workbench"
PING_TIMEOUT_S = 3


class EngineUnavailable(WorkbenchError):
    """No Docker engine answers."""


def where() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect(timeout: int = 120) -> docker.DockerClient:
    """A client for DOCKER_HOST (ssh:// goes through the ssh binary), or EngineUnavailable."""
    import docker

    try:
        client = docker.from_env(timeout=timeout, use_ssh_client=where().startswith("ssh://"))
        client.ping()
    except Exception as exc:  # DockerException, requests errors, ssh errors
        raise EngineUnavailable(
            f"cannot reach the Docker engine at {where()}: {_first_line(exc)}"
        ) from None
    return client


def available() -> bool:
    try:
        connect(timeout=PING_TIMEOUT_S).close()
    except EngineUnavailable:
        return False
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    line = text.splitlines()[0]
    explanation = getattr(exc, "explanation", None)
    if explanation:
        line = str(explanation).splitlines()[0]
    return line[:300]


def describe(exc: BaseException) -> str:
    """One line for any docker-py error."""
    return _first_line(exc)


def labels(**extra: Any) -> dict[str, str]:
    return {LABEL: "1", **{f"{LABEL}.{k}": str(v) for k, v in extra.items() if v is not None}}
