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
_PREDICT_REQUEST = {
    "type": "object",
    "description": "Exactly one of instances (rows) or inputs (columns).",
    "properties": {
        "instances": {"type": "array", "items": {"oneOf": [_ROW, _VALUE]}},
        "inputs": {
            "oneOf": [
                {"type": "object", "additionalProperties": {"type": "array", "items": _VALUE}},
                {"type": "array", "items": {"oneOf": [_ROW, _VALUE]}},
            ]
        },
    },
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
_TENSOR = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "datatype": {
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
        },
        "parameters": {"type": "object"},
        "data": {"type": "array"},
    },
    "required": ["name", "shape", "datatype"],
}
_INFER_REQUEST = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object"},
        "inputs": {"type": "array", "items": _TENSOR, "minItems": 1},
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
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
        "outputs": {"type": "array", "items": _TENSOR},
    },
    "required": ["model_name", "outputs"],
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
            "requestBody": json_body(_INFER_REQUEST),
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
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "dataframe_split": {
                                        "type": "object",
                                        "properties": {
                                            "columns": {
                                                "type": "array",
                                                "items": {"type": "string"},
                                            },
                                            "data": {
                                                "type": "array",
                                                "items": {"type": "array", "items": _VALUE},
                                            },
                                        },
                                    },
                                    "dataframe_records": {
                                        "type": "array",
                                        "items": {"type": "object", "additionalProperties": _VALUE},
                                    },
                                    "instances": {"type": "array"},
                                    "inputs": {"oneOf": [{"type": "object"}, {"type": "array"}]},
                                    "params": {"type": "object"},
                                },
                            }
                        },
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                "responses": answers(
                    {
                        "type": "object",
                        "properties": {"predictions": {"type": "array"}},
                        "required": ["predictions"],
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
                            {"type": "array", "items": {"$ref": "#/components/schemas/Feedback"}},
                            {
                                "type": "object",
                                "properties": {
                                    "feedback": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Feedback"},
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
        "/v2": get("Server metadata"),
        "/v2/health/live": get("Server is live"),
        "/v2/health/ready": get("Server is ready", None, None, "503"),
        "/v2/models/{name}": get("Model metadata", None, [name_param], "404"),
        "/v2/models/{name}/ready": get("Model is ready", None, [name_param], "404"),
        "/v2/models/{name}/versions/{version}": get(
            "Model version metadata", None, [name_param, version_param], "404"
        ),
        "/v2/models/{name}/versions/{version}/ready": get(
            "Model version is ready", None, [name_param, version_param], "404"
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
