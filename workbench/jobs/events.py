"""The line protocol between a job and whoever runs it.

A job prints ordinary log lines, and event lines `@wb {json}` (progress, result). Runners
forward every line; `parse` tells the two apart.
"""

from __future__ import annotations

import json
import sys
from typing import Any

PREFIX = "@wb "

#: The pipeline's steps, in order, as its `on_step` callback names them. Here (a light
#: module) so a UI can lay them out without importing the pipeline.
PIPELINE_STEPS = ("validate", "train", "evaluate", "gate", "register", "alias")


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(PREFIX + json.dumps({"event": event, **fields}, default=str) + "\n")
    sys.stdout.flush()


def parse(line: str) -> dict[str, Any] | None:
    if not line.startswith(PREFIX):
        return None
    try:
        obj = json.loads(line[len(PREFIX) :])
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None
