"""MLflow's scoring format, so MLflow clients switch without a change: ``POST /invocations``.

JSON bodies hold exactly one of ``dataframe_split``, ``dataframe_records``, ``instances`` or
``inputs`` (an optional ``params`` is accepted and ignored: ONNX models take none); ``text/csv``
bodies have a header row. As in MLflow, a Content-Type other than JSON or CSV, a charset other
than UTF-8 or an unknown parameter is refused with 415 (a missing Content-Type too), and a
top-level list with 400. Replies are ``{"predictions": [...]}``; errors are MLflow's
``{"error_code": "BAD_REQUEST", "message": ...}``. ``GET /ping``, ``/health``, ``/version``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from loopml._version import __version__
from loopml.errors import InvalidInputError, LoopMLError
from loopml.serve.feed import Feed, FeedBuilder
from loopml.serve.limits import UnsupportedMediaTypeError, media_type
from loopml.serve.protocols.body import json_reply, load_json
from loopml.serve.protocols.predict import tf_serving_builder
from loopml.serve.state import Call, Reply, ServerState, infer

__all__ = ["FAST_ROUTES", "error_body", "invocations", "routes"]

_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_ERROR_CODES = {404: "RESOURCE_DOES_NOT_EXIST", 413: "BAD_REQUEST", 415: "BAD_REQUEST"}


async def invocations(call: Call, state: ServerState) -> Reply:
    """Answer one ``/invocations`` request."""
    kind, params = media_type(call.header(b"content-type"))
    extra = sorted(set(params) - {"charset"})
    if kind not in ("application/json", "text/csv") or extra:
        raise UnsupportedMediaTypeError(
            f"Content-Type {kind or '(none)'!r}"
            + (f" with parameter(s) {extra}" if extra else "")
            + " is not supported; use application/json or text/csv",
            hint="send the header Content-Type: application/json",
        )
    if params.get("charset", "utf-8") not in ("utf-8", "utf8"):
        raise UnsupportedMediaTypeError(
            f"charset {params['charset']!r} is not supported; bodies must be UTF-8"
        )
    build = _csv_builder(call.body) if kind == "text/csv" else _json_builder(load_json(call.body))
    result = await infer(state, call, state.default_model, build, protocol="mlflow")
    return json_reply({"predictions": result.model.predictions(result.outputs)})


def _json_builder(document: Any) -> Callable[[FeedBuilder], Feed]:
    if isinstance(document, list):
        raise InvalidInputError(
            "a top-level JSON list is not accepted; wrap it in one of " + ", ".join(_FORMATS),
            hint='e.g. {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}',
        )
    if not isinstance(document, dict):
        raise InvalidInputError(f"request body must be a JSON object with one of {list(_FORMATS)}")
    found = [key for key in _FORMATS if key in document]
    extra = sorted(set(document) - set(_FORMATS) - {"params"})
    if len(found) != 1 or extra:
        raise InvalidInputError(
            f"request body must have exactly one of {list(_FORMATS)}; it has "
            f"{found or 'none'}" + (f" and unexpected field(s) {extra}" if extra else ""),
            hint='e.g. {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}',
        )
    form = found[0]
    value = document[form]
    if form == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise InvalidInputError(
                "dataframe_split must be an object with 'columns' and 'data' "
                "(pandas orient='split')"
            )
        unknown = sorted(set(value) - {"columns", "data", "index"})
        if unknown:
            raise InvalidInputError(f"dataframe_split has unexpected field(s) {unknown}")
        return lambda feeds: feeds.split(value.get("columns"), value["data"], "dataframe_split")
    if form == "dataframe_records":
        if isinstance(value, list) and value and not all(isinstance(r, dict) for r in value):
            raise InvalidInputError("dataframe_records must be a list of {column: value} records")
        return lambda feeds: feeds.rows(value, "dataframe_records")
    return tf_serving_builder(form, value)


def _csv_builder(body: bytes) -> Callable[[FeedBuilder], Feed]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"CSV body is not UTF-8 (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text))
    try:
        rows = [row for row in reader if row]
    except csv.Error as exc:
        raise InvalidInputError(f"CSV body cannot be parsed: {exc}") from None
    if not rows:
        raise InvalidInputError("CSV body is empty; expected a header row and data rows")
    header, data = rows[0], rows[1:]
    for i, row in enumerate(data):
        if len(row) != len(header):
            raise InvalidInputError(
                f"CSV row {i + 1} has {len(row)} fields; the header has {len(header)}"
            )

    def build(feeds: FeedBuilder) -> Feed:
        columns = {
            name: [_cell(row[j], feeds, name, i) for i, row in enumerate(data)]
            for j, name in enumerate(header)
        }
        if not data:
            return feeds.columns({name: [] for name in header}, "CSV")
        return feeds.columns(columns, "CSV")

    return build


def _cell(text: str, feeds: FeedBuilder, column: str, row: int) -> Any:
    """A CSV field typed by the model's input: numbers for numeric inputs, else text."""
    spec = feeds.column_spec(column)
    if spec is None or spec.dtype.kind in "OUS":
        return text
    if text == "":
        return None
    try:
        return int(text) if spec.dtype.kind in "iu" else float(text)
    except ValueError:
        raise InvalidInputError(
            f"CSV row {row + 1} column {column!r} is {text!r:.40}; expected a number "
            f"({spec.dtype.name})"
        ) from None


def error_body(exc: LoopMLError, status: int, call: Call | None) -> dict[str, Any]:
    message = exc.message if not exc.hint else f"{exc.message} (hint: {exc.hint})"
    return {
        "error_code": _ERROR_CODES.get(status, "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"),
        "message": message,
    }


def routes(state: ServerState) -> list[Any]:
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    async def ping(request: Request) -> Response:
        return PlainTextResponse("\n")

    async def version(request: Request) -> Response:
        return PlainTextResponse(__version__)

    return [
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
    ]


FAST_ROUTES = [("/invocations", invocations)]
