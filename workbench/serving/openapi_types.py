"""The JSON Schema of each MLflow column type, an example value of each, and of a passthrough
field (`workbench.serving.openapi` builds the spec from them)."""

from __future__ import annotations

from typing import Any

from workbench.serving.payloads import PASSTHROUGH_MAX

DOUBLE_MAX = 1.7976931348623157e308
FLOAT_MAX = 3.4028234663852886e38
JSON_TYPES: dict[str, dict[str, Any]] = {
    "double": {
        "type": "number",
        "format": "double",
        "minimum": -DOUBLE_MAX,
        "maximum": DOUBLE_MAX,
    },
    "float": {"type": "number", "format": "float", "minimum": -FLOAT_MAX, "maximum": FLOAT_MAX},
    "long": {"type": "integer", "format": "int64", "minimum": -(2**63), "maximum": 2**63 - 1},
    "integer": {"type": "integer", "format": "int32", "minimum": -(2**31), "maximum": 2**31 - 1},
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
    "binary": {"type": "string", "contentEncoding": "base64"},
    "array": {"type": "array"},
    "object": {"type": "object"},
    "map": {"type": "object"},
}
EXAMPLES: dict[str, Any] = {
    "double": 1.0,
    "float": 1.0,
    "long": 1,
    "integer": 1,
    "string": "a",
    "boolean": False,
    "datetime": "2024-01-01T00:00:00",
    "binary": "",
    "array": [],
    "object": {},
    "map": {},
}

#: A passthrough field's value: logged and returned with the prediction, never fed to the model.
PASSTHROUGH = {
    "type": ["string", "number", "boolean", "null"],
    "maxLength": PASSTHROUGH_MAX,
    "description": "Passthrough: logged and returned with the prediction, not fed to the model",
}
