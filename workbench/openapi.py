"""The OpenAPI 3.1 description of the inference server's endpoints for a model's signature."""

from __future__ import annotations

from typing import Any

from workbench.model_signature import Signature
from workbench.payloads import REQUEST_ID, REQUEST_ID_MAX

_JSON_TYPES: dict[str, dict[str, Any]] = {
    "double": {"type": "number", "format": "double"},
    "float": {"type": "number", "format": "float"},
    "long": {"type": "integer", "format": "int64"},
    "integer": {"type": "integer", "format": "int32"},
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
    "binary": {"type": "string", "contentEncoding": "base64"},
    "array": {"type": "array"},
    "object": {"type": "object"},
    "map": {"type": "object"},
}
_EXAMPLES: dict[str, Any] = {
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


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def record_schema(sig: Signature) -> dict[str, Any]:
    """The JSON Schema of one record of `sig` (plus the reserved request_id)."""
    props: dict[str, Any] = {}
    for f in sig.inputs:
        base = dict(_JSON_TYPES.get(f.type, {}))
        if not f.required and "type" in base:
            base["type"] = [base["type"], "null"]
        base["description"] = f"MLflow type {f.type}" + ("" if f.required else " (optional)")
        props[f.name] = base
    if REQUEST_ID not in props:
        props[REQUEST_ID] = {
            "type": "string",
            "minLength": 1,
            "maxLength": REQUEST_ID_MAX,
            "description": "Optional client request id, echoed back and used to attach labels.",
        }
    return {
        "type": "object",
        "properties": props,
        "required": [f.name for f in sig.inputs if f.required],
        "additionalProperties": False,
        "example": {f.name: _EXAMPLES.get(f.type) for f in sig.inputs},
    }


def openapi_spec(sig: Signature, title: str, version: str) -> dict[str, Any]:
    """An OpenAPI 3.1 description of the inference server's endpoints for this signature."""
    error_422 = {
        "description": "The body is not valid for this model",
        **_json(_ref("ValidationError")),
    }
    unauthorized = {"description": "Missing or wrong bearer token", **_json(_ref("Error"))}
    security = [{"bearer": []}, {}]
    predict_op = {
        "summary": "Score one record or a batch",
        "requestBody": {"required": True, **_json(_ref("PredictRequest"))},
        "responses": {
            "200": {
                "description": "One prediction per record",
                **_json({"oneOf": [_ref("Prediction"), _ref("BatchPrediction")]}),
            },
            "401": unauthorized,
            "422": error_422,
        },
        "security": security,
    }
    model_fields = {
        "model": {"type": "string"},
        "version": {"type": "integer"},
        "variant": {"type": "string"},
    }
    label = {
        "type": "object",
        "properties": {
            "request_id": {"type": "string", "minLength": 1, "maxLength": REQUEST_ID_MAX},
            "label": {"oneOf": [{"type": "number"}, {"type": "boolean"}]},
        },
        "required": ["request_id", "label"],
        "additionalProperties": False,
    }
    records = {"type": "array", "items": _ref("Record"), "minItems": 1}
    schemas: dict[str, Any] = {
        "Record": record_schema(sig),
        "Records": records,
        "DataframeRecords": {
            "type": "object",
            "properties": {"dataframe_records": _ref("Records"), "params": {"type": "object"}},
            "required": ["dataframe_records"],
            "additionalProperties": False,
        },
        "DataframeSplit": {
            "type": "object",
            "properties": {
                "dataframe_split": {
                    "type": "object",
                    "properties": {
                        "columns": {"type": "array", "items": {"type": "string"}},
                        "data": {"type": "array", "items": {"type": "array"}, "minItems": 1},
                        "index": {"type": "array"},
                    },
                    "required": ["columns", "data"],
                    "additionalProperties": False,
                },
                "params": {"type": "object"},
            },
            "required": ["dataframe_split"],
            "additionalProperties": False,
        },
        "Instances": {
            "type": "object",
            "properties": {"instances": _ref("Records"), "params": {"type": "object"}},
            "required": ["instances"],
            "additionalProperties": False,
        },
        "Inputs": {
            "type": "object",
            "properties": {"inputs": _ref("Records"), "params": {"type": "object"}},
            "required": ["inputs"],
            "additionalProperties": False,
        },
        "PredictRequest": {
            "oneOf": [
                _ref("Record"),
                _ref("Records"),
                _ref("DataframeRecords"),
                _ref("DataframeSplit"),
                _ref("Instances"),
                _ref("Inputs"),
            ]
        },
        "Prediction": {
            "type": "object",
            "properties": {
                "request_id": {"type": "string"},
                "prediction": {"type": "number"},
                **model_fields,
            },
            "required": ["request_id", "prediction", "model", "version", "variant"],
        },
        "BatchPrediction": {
            "type": "object",
            "properties": {
                "request_ids": {"type": "array", "items": {"type": "string"}},
                "predictions": {"type": "array", "items": {"type": "number"}},
                **model_fields,
            },
            "required": ["request_ids", "predictions", "model", "version", "variant"],
        },
        "Error": {
            "type": "object",
            "properties": {"error": {"type": "string"}},
            "required": ["error"],
        },
        "ValidationError": {
            "type": "object",
            "properties": {
                "error": {"type": "string", "description": "One line naming the first problem"},
                "detail": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "loc": {
                                "type": "array",
                                "items": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                            },
                            "msg": {"type": "string"},
                            "type": {"type": "string"},
                        },
                        "required": ["loc", "msg", "type"],
                    },
                },
            },
            "required": ["error", "detail"],
        },
        "Label": label,
        "LabelsRequest": {
            "oneOf": [
                _ref("Label"),
                {"type": "array", "items": _ref("Label"), "minItems": 1},
                {
                    "type": "object",
                    "properties": {
                        "labels": {"type": "array", "items": _ref("Label"), "minItems": 1}
                    },
                    "required": ["labels"],
                    "additionalProperties": False,
                },
            ]
        },
    }

    def get(summary: str, schema: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
        return {
            "get": {
                "summary": summary,
                "responses": {"200": {"description": "OK", **_json(schema)}, **(extra or {})},
            }
        }

    paths: dict[str, Any] = {
        "/predict": {"post": {**predict_op, "operationId": "predict"}},
        "/invocations": {
            "post": {
                **predict_op,
                "operationId": "invocations",
                "description": "Same as /predict; accepts `mlflow models serve` bodies.",
            }
        },
        "/labels": {
            "post": {
                "summary": "Attach ground-truth labels to earlier predictions by request id",
                "operationId": "labels",
                "requestBody": {"required": True, **_json(_ref("LabelsRequest"))},
                "responses": {
                    "200": {
                        "description": "Labels stored",
                        **_json(
                            {
                                "type": "object",
                                "properties": {"accepted": {"type": "integer"}},
                                "required": ["accepted"],
                            }
                        ),
                    },
                    "401": unauthorized,
                    "422": error_422,
                },
                "security": security,
            }
        },
        "/health": get(
            "Liveness",
            {
                "type": "object",
                "properties": {"status": {"const": "ok"}},
                "required": ["status"],
            },
        ),
        "/ready": get(
            "Readiness: the model is loaded",
            {
                "type": "object",
                "properties": {"ready": {"type": "boolean"}},
                "required": ["ready"],
            },
            {"503": {"description": "Not ready yet", **_json({"type": "object"})}},
        ),
        "/version": get("The model and version being served", {"type": "object"}),
        "/deployment": get("The deployment: variants, traffic split", {"type": "object"}),
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
