"""The OpenAPI 3.1 description of the inference server's endpoints for a model's signature.

The body schemas are exactly as strict as `workbench.serving.payloads` wherever JSON Schema can say
it: number ranges (a double is finite, a float fits 32 bits, a long 64), the request id rule
(`workbench.serving.client_strings`), batch sizes, column names, no unknown keys; every field may be
null (a missing value the model handles). Two cross-field rules cannot be written in JSON
Schema and are stated in `description`s: each `dataframe_split` row has one value per column
and of that column's type, and columnar arrays are of equal length. The server answers them
with a 422 naming the row. Lone surrogates (not Unicode text) are refused with a 422 too.

The responses and labels follow the model's task (`workbench.serving.responses`): a binary
model's `prediction` is a probability and its `label` one of the two classes; a multiclass
model's `prediction` is one of its classes (an enum) with `probabilities` per class; a
regression model's `prediction` is a number. Labels name a class (classification) or are
numbers (regression).
"""

from __future__ import annotations

from typing import Any

from workbench.serving.client_strings import REQUEST_ID_MAX, REQUEST_ID_PATTERN
from workbench.serving.openapi_types import DOUBLE_MAX as _DOUBLE_MAX
from workbench.serving.openapi_types import EXAMPLES as _EXAMPLES
from workbench.serving.openapi_types import JSON_TYPES as _JSON_TYPES
from workbench.serving.openapi_types import PASSTHROUGH
from workbench.serving.payloads import MAX_LABELS, REQUEST_ID
from workbench.serving.responses import class_key
from workbench.serving.signature import Signature
from workbench.tasks import ModelTask


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def request_id_schema(nullable: bool) -> dict[str, Any]:
    """A request id: 1 to 128 printable characters (no control character, CR, LF or NUL)."""
    return {
        "type": ["string", "null"] if nullable else "string",
        "minLength": 1,
        "maxLength": REQUEST_ID_MAX,
        "pattern": REQUEST_ID_PATTERN,
    }


def field_schema(f: Any) -> dict[str, Any]:
    """One field's values. Null is a value of every field (the model sees a missing value);
    `required` says only that the key must be there."""
    base = dict(_JSON_TYPES.get(f.type, {}))
    if "type" in base:
        base["type"] = [base["type"], "null"]
    base["description"] = f"MLflow type {f.type}" + ("" if f.required else " (optional)")
    return base


def record_schema(sig: Signature, passthrough: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON Schema of one record of `sig` (plus the reserved request_id, passthrough)."""
    props: dict[str, Any] = {f.name: field_schema(f) for f in sig.inputs}
    props.update({name: PASSTHROUGH for name in passthrough if name not in props})
    if REQUEST_ID not in props:
        props[REQUEST_ID] = {
            **request_id_schema(nullable=True),
            "description": "Optional client request id, echoed back and used to attach labels.",
        }
    return {
        "type": "object",
        "properties": props,
        "required": [f.name for f in sig.inputs if f.required],
        "additionalProperties": False,
        "example": {f.name: _EXAMPLES.get(f.type) for f in sig.inputs},
    }


def split_schema(sig: Signature, max_batch: int, passthrough: tuple[str, ...] = ()) -> Any:
    """`{"dataframe_split": {"columns": [...], "data": [[...], ...]}}` (pandas' split
    orient): known, unique column names including every required field; rows of as many
    values as there are columns."""
    names = [f.name for f in sig.inputs]
    if REQUEST_ID not in names:
        names.append(REQUEST_ID)
    extra = [name for name in passthrough if name not in names]
    names += extra
    required = [f.name for f in sig.inputs if f.required]
    columns: dict[str, Any] = {
        "type": "array",
        "items": {"enum": names},
        "uniqueItems": True,
        "maxItems": len(names),
    }
    if required:
        columns["allOf"] = [{"contains": {"const": name}} for name in required]
    values = [_bare(field_schema(f)) for f in sig.inputs]
    if REQUEST_ID not in sig.names:
        values.append(request_id_schema(nullable=True))
    values += [_bare(PASSTHROUGH)] if extra else []
    row = {
        "type": "array",
        "items": {"anyOf": values},
        "minItems": max(1, len(required)),
        "maxItems": len(names),
    }
    return {
        "type": "object",
        "properties": {
            "columns": columns,
            "data": {"type": "array", "items": row, "minItems": 1, "maxItems": max_batch},
            "index": {"type": "array", "description": "Accepted and ignored"},
        },
        "required": ["columns", "data"],
        "additionalProperties": False,
        "description": "Each row holds one value per column, of that column's type (a row "
        "that does not gets a 422 naming it).",
    }


def _bare(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "description"}


def columns_schema(sig: Signature, max_batch: int, passthrough: tuple[str, ...] = ()) -> Any:
    """TF-serving's columnar form: `{"inputs": {"amount": [1.0, 2.0], ...}}`."""
    props: dict[str, Any] = {}
    items = [(f.name, _bare(field_schema(f))) for f in sig.inputs]
    for name, item in items + [(name, _bare(PASSTHROUGH)) for name in passthrough]:
        props.setdefault(
            name, {"type": "array", "items": item, "minItems": 1, "maxItems": max_batch}
        )
    if REQUEST_ID not in props:
        item = request_id_schema(nullable=True)
        props[REQUEST_ID] = {"type": "array", "items": item, "minItems": 1, "maxItems": max_batch}
    return {
        "type": "object",
        "properties": props,
        "required": [f.name for f in sig.inputs if f.required],
        "minProperties": 1,
        "additionalProperties": False,
        "description": "One array per field, all of the same length (else a 422).",
    }


_PROBABILITY = {"type": "number", "minimum": 0, "maximum": 1}


def _classes(task: ModelTask) -> dict[str, Any]:
    return {"enum": list(task.classes)}


def prediction_fields(task: ModelTask) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task's fields of a single response and of a batch response (name -> schema)."""
    if task.type == "regression":
        return {"prediction": {"type": "number"}}, {
            "predictions": {"type": "array", "items": {"type": "number"}}
        }
    classes = _classes(task)
    if task.type == "binary":
        one = {
            "prediction": {**_PROBABILITY, "description": "The positive-class probability"},
            "label": {**classes, "description": f"The class at threshold {task.threshold:g}"},
        }
        batch = {
            "predictions": {"type": "array", "items": _PROBABILITY},
            "labels": {"type": "array", "items": classes},
        }
        return one, batch
    keys = [class_key(c) for c in task.classes]
    probabilities = {
        "type": "object",
        "properties": {k: _PROBABILITY for k in keys},
        "required": keys,
        "additionalProperties": False,
        "description": "Each class's probability",
    }
    one = {
        "prediction": {**classes, "description": "The most likely class"},
        "probabilities": probabilities,
    }
    batch = {
        "predictions": {"type": "array", "items": classes},
        "probabilities": {"type": "array", "items": probabilities},
    }
    return one, batch


def label_value_schema(task: ModelTask | None) -> dict[str, Any]:
    """What a label may be: one of the classes (booleans too for classes 0/1), or a number."""
    number = {"type": "number", "minimum": -_DOUBLE_MAX, "maximum": _DOUBLE_MAX}
    if task is None:
        return {"oneOf": [number, {"type": "boolean"}]}
    if task.type == "regression":
        return number
    values = list(task.classes)
    values += [
        b for b in (False, True) if task.index_of(b) is not None and not any(c is b for c in values)
    ]
    return {"enum": values}


def openapi_spec(
    sig: Signature,
    title: str,
    version: str,
    max_batch: int = 10_000,
    task: ModelTask | None = None,
    passthrough: tuple[str, ...] = (),
) -> dict[str, Any]:
    """An OpenAPI 3.1 description of the inference server's endpoints for this signature and
    task (default: a binary model of classes 0 and 1), with the `passthrough` fields."""
    one, batch = prediction_fields(task or ModelTask())
    error_422 = {
        "description": "The body is not valid for this model",
        **_json(_ref("ValidationError")),
    }
    unauthorized = {"description": "Missing or wrong bearer token", **_json(_ref("Error"))}
    too_large = {"description": "The body is larger than 64 MiB", **_json(_ref("Error"))}
    unavailable = {
        "description": "Not ready (the model is loading), or the prediction log takes no "
        "more rows (its writer stopped, or is behind): retry later",
        **_json(_ref("Error")),
    }
    security: list[dict[str, list[str]]] = [{"bearer": []}, {}]
    predict_op = {
        "summary": "Score one record or a batch",
        "requestBody": {"required": True, **_json(_ref("PredictRequest"))},
        "responses": {
            "200": {
                "description": "One prediction per record",
                **_json({"oneOf": [_ref("Prediction"), _ref("BatchPrediction")]}),
            },
            "401": unauthorized,
            "413": too_large,
            "422": error_422,
            "500": {"description": "The model failed on this batch", **_json(_ref("Error"))},
            "503": unavailable,
        },
        "security": security,
    }
    carried = {"type": "object", "description": "The passthrough fields the record carried"}
    model_fields = {
        "model": {"type": "string"},
        "version": {"type": "integer"},
        "variant": {"type": "string"},
    }
    label = {
        "type": "object",
        "properties": {
            "request_id": request_id_schema(nullable=False),
            "label": label_value_schema(task),
        },
        "required": ["request_id", "label"],
        "additionalProperties": False,
    }
    records = {"type": "array", "items": _ref("Record"), "minItems": 1, "maxItems": max_batch}
    params = {"type": ["object", "null"], "description": "MLflow's inference params: ignored"}
    schemas: dict[str, Any] = {
        "Record": record_schema(sig, passthrough),
        "Records": records,
        "Columns": columns_schema(sig, max_batch, passthrough),
        "DataframeRecords": {
            "type": "object",
            "properties": {"dataframe_records": _ref("Records"), "params": params},
            "required": ["dataframe_records"],
            "additionalProperties": False,
        },
        "DataframeSplit": {
            "type": "object",
            "properties": {
                "dataframe_split": split_schema(sig, max_batch, passthrough),
                "params": params,
            },
            "required": ["dataframe_split"],
            "additionalProperties": False,
        },
        "Instances": {
            "type": "object",
            "properties": {
                "instances": {"oneOf": [_ref("Records"), _ref("Columns")]},
                "params": params,
            },
            "required": ["instances"],
            "additionalProperties": False,
        },
        "Inputs": {
            "type": "object",
            "properties": {
                "inputs": {"oneOf": [_ref("Records"), _ref("Columns")]},
                "params": params,
            },
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
                **one,
                "passthrough": carried,
                **model_fields,
            },
            "required": ["request_id", *one, "model", "version", "variant"],
        },
        "BatchPrediction": {
            "type": "object",
            "properties": {
                "request_ids": {"type": "array", "items": {"type": "string"}},
                **batch,
                "passthrough": {"type": "array", "items": {"oneOf": [carried, {"type": "null"}]}},
                **model_fields,
            },
            "required": ["request_ids", *batch, "model", "version", "variant"],
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
                {"type": "array", "items": _ref("Label"), "minItems": 1, "maxItems": MAX_LABELS},
                {
                    "type": "object",
                    "properties": {
                        "labels": {
                            "type": "array",
                            "items": _ref("Label"),
                            "minItems": 1,
                            "maxItems": MAX_LABELS,
                        }
                    },
                    "required": ["labels"],
                    "additionalProperties": False,
                },
            ]
        },
    }

    auth = {"401": unauthorized}

    def get(summary: str, schema: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
        op: dict[str, Any] = {
            "summary": summary,
            "responses": {"200": {"description": "OK", **_json(schema)}, **(extra or {})},
        }
        if extra is auth:
            op["security"] = security
        return {"get": op}

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
                    "413": too_large,
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
            {
                "503": {
                    "description": "Not ready: the model is loading, or the prediction log "
                    "takes no rows (its writer stopped, or is full)",
                    **_json(
                        {
                            "type": "object",
                            "properties": {
                                "ready": {"const": False},
                                "reason": {"type": "string"},
                            },
                            "required": ["ready", "reason"],
                        }
                    ),
                }
            },
        ),
        "/version": get("The model and version being served", {"type": "object"}, auth),
        "/deployment": get("The deployment: variants, traffic split", {"type": "object"}, auth),
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "401": unauthorized,
                },
                "security": security,
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
