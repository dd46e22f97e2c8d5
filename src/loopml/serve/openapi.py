"""The OpenAPI description behind ``/openapi.json`` and ``/docs``.

Written out by hand rather than derived from handlers, because the hot routes bypass
Starlette and the wire formats (V2 tensors, MLflow frames) are richer than a generator
would infer. The served models' names appear as enums, so tools such as schemathesis
exercise real models as well as unknown ones.
"""

from __future__ import annotations

from typing import Any

from loopml._version import __version__

__all__ = ["DOCS_HTML", "openapi_spec"]

DOCS_HTML = """<!doctype html>
<html><head><title>loopml serve</title><meta charset="utf-8">
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head><body><div id="ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
<noscript>The API description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body></html>"""

_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_MLFLOW_ERROR = {
    "type": "object",
    "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
    "required": ["error_code", "message"],
}
_VALUE = {"oneOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}, {"type": "null"}]}
_ROW = {
    "oneOf": [
        {"type": "array", "items": _VALUE},
        {"type": "object", "additionalProperties": _VALUE},
    ]
}
_ROWS = {"type": "array", "items": {"oneOf": [_ROW, _VALUE]}, "minItems": 1}
_COLUMNS = {
    "oneOf": [
        {
            "type": "object",
            "additionalProperties": {"type": "array", "items": _VALUE},
            "minProperties": 1,
        },
        _ROWS,
    ]
}


def _exactly_one(forms: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An object holding exactly one of ``forms`` (plus the optional ``extra`` properties)."""
    return {
        "oneOf": [
            {
                "type": "object",
                "properties": {key: schema, **extra},
                "required": [key],
                "additionalProperties": False,
            }
            for key, schema in forms.items()
        ]
    }


_PREDICT_REQUEST = {
    **_exactly_one({"instances": _ROWS, "inputs": _COLUMNS}),
    "description": "Exactly one of instances (rows) or inputs (columns).",
    "example": {"instances": [[1.0], [2.0], [3.0]]},
}
_PREDICT_REPLY = {
    "type": "object",
    "properties": {
        "predictions": {"type": "array"},
        "model": {"type": "string"},
        "version": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
        "request_id": {"type": "string"},
    },
    "required": ["predictions", "model", "version", "request_id"],
}
_DATATYPE = {
    "type": "string",
    "enum": [
        "BOOL",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "FP16",
        "FP32",
        "FP64",
        "BYTES",
    ],
}
_SHAPE = {"type": "array", "items": {"type": "integer", "minimum": 0}}
_PARAMETERS = {
    "type": "object",
    "additionalProperties": {
        "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]
    },
}
_INPUT_TENSOR = {
    "type": "object",
    "description": "Row-major data, flat or nested to match the shape.",
    "properties": {
        "name": {"type": "string"},
        "shape": _SHAPE,
        "datatype": _DATATYPE,
        "parameters": _PARAMETERS,
        "data": {"type": "array"},
    },
    "required": ["name", "shape", "datatype", "data"],
}
_OUTPUT_TENSOR = {
    "type": "object",
    "description": "With parameters.binary_data_size instead of data when sent as binary.",
    "properties": {
        "name": {"type": "string"},
        "shape": _SHAPE,
        "datatype": _DATATYPE,
        "parameters": {"type": "object"},
        "data": {"type": "array"},
    },
    "required": ["name", "shape", "datatype"],
}
_INFER_REQUEST = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "parameters": _PARAMETERS,
        "inputs": {"type": "array", "items": _INPUT_TENSOR, "minItems": 1},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "parameters": _PARAMETERS},
                "required": ["name"],
            },
        },
    },
    "required": ["inputs"],
}
_INFER_REPLY = {
    "type": "object",
    "properties": {
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "outputs": {"type": "array", "items": _OUTPUT_TENSOR},
    },
    "required": ["model_name", "outputs"],
}
_SPLIT = {
    "type": "object",
    "description": "pandas orient='split'",
    "properties": {
        "columns": {"type": "array", "items": {"type": "string"}},
        "data": {"type": "array", "items": {"type": "array", "items": _VALUE}, "minItems": 1},
        "index": {"type": "array"},
    },
    "required": ["data"],
    "additionalProperties": False,
}
_RECORDS = {
    "type": "array",
    "items": {"type": "object", "additionalProperties": _VALUE},
    "minItems": 1,
}
_INVOCATIONS_REQUEST = _exactly_one(
    {
        "dataframe_split": _SPLIT,
        "dataframe_records": _RECORDS,
        "instances": _ROWS,
        "inputs": _COLUMNS,
    },
    params={"type": "object", "description": "accepted and ignored: ONNX models take none"},
)
_STATUS = {
    "live": {"type": "object", "properties": {"live": {"type": "boolean"}}, "required": ["live"]},
    "ready": {
        "type": "object",
        "properties": {"ready": {"type": "boolean"}},
        "required": ["ready"],
    },
}
_SERVER_METADATA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string"},
        "extensions": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "version", "extensions"],
}
_META_TENSOR = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "datatype": _DATATYPE,
        "shape": {"type": "array", "items": {"type": "integer", "minimum": -1}},
    },
    "required": ["name", "datatype", "shape"],
    "description": "-1 marks a dimension of any size",
}
_MODEL_METADATA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "versions": {"type": "array", "items": {"type": "string"}},
        "platform": {"type": "string"},
        "inputs": {"type": "array", "items": _META_TENSOR},
        "outputs": {"type": "array", "items": _META_TENSOR},
    },
    "required": ["name", "platform", "inputs", "outputs"],
}
_MODEL_READY = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
    "required": ["name", "ready"],
}


def openapi_spec(state: Any) -> dict[str, Any]:
    """The OpenAPI 3.0 document for this server (model names filled in)."""
    names = state.table.names()
    versions = sorted({m.version for m in state.table.loaded()})
    name_param = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": names},
    }
    version_param = {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": versions},
    }

    def json_body(schema: dict[str, Any]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    def answers(ok: dict[str, Any], error: dict[str, Any], *codes: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "200": {"description": "OK", "content": {"application/json": {"schema": ok}}}
        }
        for code in codes:
            out[code] = {
                "description": _REASONS[code],
                "content": {"application/json": {"schema": error}},
            }
        return out

    def get(
        summary: str,
        schema: dict[str, Any] | None = None,
        params: list[Any] | None = None,
        *codes: str,
    ) -> dict[str, Any]:
        op: dict[str, Any] = {
            "summary": summary,
            "responses": answers(schema or {"type": "object"}, _ERROR, *codes),
        }
        if params:
            op["parameters"] = params
        return {"get": op}

    predict_codes = ("400", "404", "413", "415")
    infer = {
        "post": {
            "summary": "Open Inference Protocol inference (JSON, or binary tensors)",
            "description": "Triton's binary tensor extension: the body is the JSON header "
            "followed by raw tensor bytes, the Inference-Header-Content-Length header gives the "
            "JSON's length and each binary input has parameters.binary_data_size. Bodies may be "
            "gzip or deflate compressed (Content-Encoding).",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _INFER_REQUEST},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                },
            },
            "responses": answers(_INFER_REPLY, _ERROR, *predict_codes),
        }
    }
    paths: dict[str, Any] = {
        "/predict": {
            "post": {
                "summary": "Predict with the default model",
                "requestBody": json_body(_PREDICT_REQUEST),
                "responses": answers(_PREDICT_REPLY, _ERROR, *predict_codes),
            }
        },
        "/models/{name}/predict": {
            "post": {
                "summary": "Predict with a named model (its traffic policy applies)",
                "parameters": [name_param],
                "requestBody": json_body(_PREDICT_REQUEST),
                "responses": answers(_PREDICT_REPLY, _ERROR, *predict_codes),
            }
        },
        "/invocations": {
            "post": {
                "summary": "MLflow scoring format",
                "description": "MLflow 2's JSON forms and CSV (header row optional; RFC 4180's "
                "header=present|absent is honoured). MLflow 1.x's content types are understood "
                "too, and answered as MLflow 1.x did: a bare list of predictions.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _INVOCATIONS_REQUEST},
                        "text/csv": {"schema": {"type": "string"}},
                        "application/json; format=pandas-split": {"schema": _SPLIT},
                        "application/json; format=pandas-records": {"schema": _RECORDS},
                    },
                },
                "responses": answers(
                    {
                        "oneOf": [
                            {
                                "type": "object",
                                "properties": {"predictions": {"type": "array"}},
                                "required": ["predictions"],
                            },
                            {"type": "array", "description": "for MLflow 1.x content types"},
                        ]
                    },
                    _MLFLOW_ERROR,
                    *predict_codes,
                ),
            }
        },
        "/feedback": {
            "post": {
                "summary": "Record ground truth for earlier predictions",
                "requestBody": json_body(
                    {
                        "oneOf": [
                            {"$ref": "#/components/schemas/Feedback"},
                            {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/Feedback"},
                                "minItems": 1,
                            },
                            {
                                "type": "object",
                                "properties": {
                                    "feedback": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Feedback"},
                                        "minItems": 1,
                                    }
                                },
                                "required": ["feedback"],
                            },
                        ]
                    }
                ),
                "responses": answers(
                    {"type": "object", "properties": {"accepted": {"type": "integer"}}},
                    _ERROR,
                    "400",
                    "404",
                    "413",
                    "415",
                ),
            }
        },
        "/v2": get("Server metadata", _SERVER_METADATA),
        "/v2/health/live": get("Server is live", _STATUS["live"]),
        "/v2/health/ready": get("Server is ready", _STATUS["ready"], None, "503"),
        "/v2/models/{name}": get("Model metadata", _MODEL_METADATA, [name_param], "404"),
        "/v2/models/{name}/ready": get("Model is ready", _MODEL_READY, [name_param], "404"),
        "/v2/models/{name}/versions/{version}": get(
            "Model version metadata", _MODEL_METADATA, [name_param, version_param], "404"
        ),
        "/v2/models/{name}/versions/{version}/ready": get(
            "Model version is ready", _MODEL_READY, [name_param, version_param], "404"
        ),
        "/v2/models/{name}/infer": {"post": {**infer["post"], "parameters": [name_param]}},
        "/v2/models/{name}/versions/{version}/infer": {
            "post": {**infer["post"], "parameters": [name_param, version_param]}
        },
        "/ping": {
            "get": {
                "summary": "MLflow health check",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/health": {
            "get": {
                "summary": "MLflow health check",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/version": {
            "get": {
                "summary": "Server version",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/admin/models": get("Served targets and versions", None, None, "401"),
        "/admin/traffic": get("Traffic policies", None, None, "401"),
        "/admin/traffic/{name}": {
            "put": {
                "summary": "Set a model's traffic policy",
                "parameters": [name_param],
                "requestBody": json_body(
                    {
                        "type": "object",
                        "properties": {
                            "weights": {
                                "type": "object",
                                "additionalProperties": {"type": "number"},
                            },
                            "shadow": {"type": "array", "items": {"type": "string"}},
                            "spec": {"type": "string"},
                        },
                        "example": {"weights": {"champion": 90, "challenger": 10}},
                    }
                ),
                "responses": answers({"type": "object"}, _ERROR, "400", "401", "404", "413", "415"),
            }
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "loopml serve", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": {
                "Feedback": {
                    "type": "object",
                    "properties": {
                        "request_id": {"type": "string"},
                        "label": {
                            "oneOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}]
                        },
                        "row": {"type": "integer", "minimum": 0},
                    },
                    "required": ["request_id", "label"],
                }
            }
        },
    }


_REASONS = {
    "400": "Invalid input (the message names the field)",
    "401": "Admin token missing or wrong",
    "404": "Unknown model, version or request id",
    "413": "Body over the size limit",
    "415": "Unsupported Content-Type",
    "503": "Not ready",
}
