"""loopml's own form: ``POST /predict`` and ``POST /models/{name}/predict``.

Request: ``{"instances": [[1.0], [2.0]]}`` (rows, or records ``[{"x": 1.0}]``) or
``{"inputs": {"x": [1.0, 2.0]}}`` (columns; a nested list for single-input models).
Reply: ``{"predictions": [...], "model": NAME, "version": V, "request_id": ID}``; the request
id is also in the ``X-Request-ID`` header and is what ``POST /feedback`` refers to.
Errors: ``{"error": message, "code": CODE, "hint": ..., "request_id": ID}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loopml.errors import InvalidInputError, LoopMLError
from loopml.package.feed import Feed, FeedBuilder
from loopml.serve.protocols.body import check_json, json_reply, load_json
from loopml.serve.state import Call, Reply, ServerState, infer

__all__ = ["FAST_ROUTES", "error_body", "predict"]

_FORMS = ("instances", "inputs")


async def predict(call: Call, state: ServerState) -> Reply:
    """Answer one ``/predict`` request."""
    check_json(call)
    build = request_builder(load_json(call.body))
    name = call.params.get("name", state.default_model)
    result = await infer(state, call, name, build, protocol="predict")
    model = result.model
    return json_reply(
        {
            "predictions": model.predictions(result.outputs),
            "model": model.name,
            "version": int(model.version) if model.version.isdigit() else model.version,
            "request_id": call.request_id,
        }
    )


def request_builder(document: Any) -> Callable[[FeedBuilder], Feed]:
    """Check the document's shape and return how to build its feed for any model."""
    if type(document) is dict and len(document) == 1 and "instances" in document:
        return tf_serving_builder("instances", document["instances"])  # the common request
    if not isinstance(document, dict):
        raise InvalidInputError(
            f"request body must be a JSON object with 'instances' or 'inputs', "
            f"got {'a list' if isinstance(document, list) else type(document).__name__}",
            hint='e.g. {"instances": [[1.0], [2.0]]} or {"inputs": {"x": [1.0, 2.0]}}',
        )
    forms = [key for key in _FORMS if key in document]
    extra = sorted(set(document) - set(_FORMS))
    if len(forms) != 1 or extra:
        problem = (
            f"unexpected field(s) {extra}"
            if extra and forms
            else "both 'instances' and 'inputs'"
            if len(forms) == 2
            else "neither 'instances' nor 'inputs'" + (f" (it has {extra})" if extra else "")
        )
        raise InvalidInputError(
            f"request body has {problem}; it needs exactly one of 'instances' or 'inputs'",
            hint='e.g. {"instances": [[1.0], [2.0]]} or {"inputs": {"x": [1.0, 2.0]}}',
        )
    form = forms[0]
    value = document[form]
    if form == "inputs" and not isinstance(value, dict | list):
        raise InvalidInputError(
            f"'inputs' must be an object of columns or a list, got {type(value).__name__}",
            hint='e.g. {"inputs": {"x": [1.0, 2.0]}}',
        )
    return tf_serving_builder(form, value)


def tf_serving_builder(form: str, value: Any) -> Callable[[FeedBuilder], Feed]:
    """TF-Serving's two request forms, which /predict and MLflow's /invocations both accept.

    ``instances``: rows (lists or records), or a flat list of scalars for a one-input model;
    ``inputs``: ``{column: values}``, or a tensor (nested list).
    """
    if form == "instances":
        if isinstance(value, list) and value and not isinstance(value[0], list | dict):
            return lambda feeds: feeds.tensor(value, "instances")
        return lambda feeds: feeds.rows(value, "instances")
    if isinstance(value, dict):
        return lambda feeds: feeds.columns(value, "inputs")
    return lambda feeds: feeds.tensor(value, "inputs")


def error_body(exc: LoopMLError, status: int, call: Call | None) -> dict[str, Any]:
    body: dict[str, Any] = exc.to_dict()
    if call is not None:
        body["request_id"] = call.request_id
    return body


FAST_ROUTES = [("/predict", predict), ("/models/{name}/predict", predict)]
