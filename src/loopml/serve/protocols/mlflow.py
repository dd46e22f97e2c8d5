"""MLflow's scoring format, so MLflow clients switch without a change: ``POST /invocations``.

JSON bodies hold exactly one of ``dataframe_split``, ``dataframe_records``, ``instances`` or
``inputs``, and optionally ``params`` (an object, accepted and ignored: ONNX models take
none). Replies are ``{"predictions": [...]}``; errors are MLflow's
``{"error_code": "BAD_REQUEST", "message": ...}``. ``GET /ping``, ``/health``, ``/version``.

As in MLflow, a Content-Type other than JSON or CSV, a charset other than UTF-8 or an unknown
parameter is refused with 415 (a missing Content-Type too), and a top-level JSON list with
400. Two things MLflow 2 refuses are understood, because clients still send them:

- MLflow 1.x's content types ``application/json; format=pandas-split`` (a bare
  ``{"columns", "data"}`` frame), ``application/json; format=pandas-records`` (a bare list of
  records) and ``application/json-numpy-split``. Those clients read a bare list of
  predictions, so that is what they get back.
- ``text/csv`` without a header row. CSV takes the header row from RFC 4180's
  ``header=present|absent`` parameter when given; otherwise the first line is data only when
  it names none of the model's columns, is not pandas' default header (``0,1,2...``) and
  every field reads as a value of its column, at least one of them numeric (so an all-text
  first line is always a header, as in MLflow).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from loopml._version import __version__
from loopml.errors import InvalidInputError, LoopMLError
from loopml.package.feed import Feed, FeedBuilder
from loopml.package.signature import TensorSpec
from loopml.serve.limits import UnsupportedMediaTypeError, media_type
from loopml.serve.protocols.body import json_reply, load_json
from loopml.serve.protocols.predict import tf_serving_builder
from loopml.serve.state import Call, Reply, ServerState, infer

__all__ = ["FAST_ROUTES", "error_body", "invocations", "routes"]

_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
# MLflow 1.x's JSON content types (media type, format parameter) -> frame orientation.
_LEGACY = {
    ("application/json", "pandas-split"): "split",
    ("application/json", "pandas-records"): "records",
    ("application/json-numpy-split", None): "split",
}
_BOOLS = {"true": True, "1": True, "false": False, "0": False}
_ERROR_CODES = {404: "RESOURCE_DOES_NOT_EXIST", 413: "BAD_REQUEST", 415: "BAD_REQUEST"}


async def invocations(call: Call, state: ServerState) -> Reply:
    """Answer one ``/invocations`` request."""
    kind, params = media_type(call.header(b"content-type"))
    legacy = _LEGACY.get((kind, params.get("format")))
    allowed = {"charset"}
    if legacy is not None and "format" in params:
        allowed.add("format")
    if kind == "text/csv":
        allowed.add("header")
    extra = sorted(set(params) - allowed)
    if (kind not in ("application/json", "text/csv") and legacy is None) or extra:
        raise UnsupportedMediaTypeError(
            f"Content-Type {kind or '(none)'!r}"
            + (f" with parameter(s) {extra}" if extra else "")
            + " is not supported; use application/json or text/csv",
            hint="send the header Content-Type: application/json"
            + (
                " (MLflow 1.x's format=pandas-split and format=pandas-records are understood too)"
                if "format" in extra
                else ""
            ),
        )
    if params.get("charset", "utf-8") not in ("utf-8", "utf8"):
        raise UnsupportedMediaTypeError(
            f"charset {params['charset']!r} is not supported; bodies must be UTF-8"
        )
    if kind == "text/csv":
        build = _csv_builder(call.body, _csv_header(params.get("header")))
    elif legacy is not None:
        build = _legacy_builder(load_json(call.body), legacy)
    else:
        build = _json_builder(load_json(call.body))
    result = await infer(state, call, state.default_model, build, protocol="mlflow")
    predictions = result.model.predictions(result.outputs)
    if legacy is not None:
        return json_reply(predictions)  # MLflow 1.x answered the bare list
    return json_reply({"predictions": predictions})


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
    if "params" in document and not isinstance(document["params"], dict | None):
        raise InvalidInputError(
            f"params must be an object of parameter values, got {_kind(document['params'])}",
            hint='e.g. "params": {"threshold": 0.5}',
        )
    form = found[0]
    value = document[form]
    if form == "dataframe_split":
        return _split_builder(value, "dataframe_split")
    if form == "dataframe_records":
        if isinstance(value, list) and value and not all(isinstance(r, dict) for r in value):
            raise InvalidInputError("dataframe_records must be a list of {column: value} records")
        return lambda feeds: feeds.rows(value, "dataframe_records")
    return tf_serving_builder(form, value)


def _split_builder(value: Any, where: str) -> Callable[[FeedBuilder], Feed]:
    if not isinstance(value, dict) or "data" not in value:
        raise InvalidInputError(
            f"{where} must be an object with 'columns' and 'data' (pandas orient='split')",
            hint='e.g. {"columns": ["x"], "data": [[1.0], [2.0]]}',
        )
    unknown = sorted(set(value) - {"columns", "data", "index"})
    if unknown:
        raise InvalidInputError(f"{where} has unexpected field(s) {unknown}")
    return lambda feeds: feeds.split(value.get("columns"), value["data"], where)


def _legacy_builder(document: Any, orient: str) -> Callable[[FeedBuilder], Feed]:
    """MLflow 1.x bodies: a bare split-oriented frame, or a bare list of records."""
    if isinstance(document, dict) and any(key in document for key in _FORMATS):
        raise InvalidInputError(
            f"this body is in MLflow 2's format, but the Content-Type asks for MLflow 1.x's "
            f"pandas-{orient}",
            hint="send it with Content-Type: application/json",
        )
    if orient == "split":
        return _split_builder(document, "pandas-split body")
    if not isinstance(document, list) or not all(isinstance(r, dict) for r in document):
        raise InvalidInputError(
            "a pandas-records body must be a list of {column: value} records",
            hint='e.g. [{"x": 1.0}, {"x": 2.0}]',
        )
    return lambda feeds: feeds.rows(document, "pandas-records body")


def _csv_header(value: str | None) -> bool | None:
    if value is None:
        return None
    if value not in ("present", "absent"):
        raise UnsupportedMediaTypeError(
            f"text/csv parameter header={value!r} is not supported",
            hint="use header=present or header=absent (RFC 4180), or leave it out",
        )
    return value == "present"


def _csv_builder(body: bytes, header: bool | None) -> Callable[[FeedBuilder], Feed]:
    try:
        text = body.decode("utf-8-sig")  # a byte-order mark (spreadsheet exports) is not data
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"CSV body is not UTF-8 (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text))
    lines: list[tuple[int, list[str]]] = []
    try:
        for row in reader:
            if row:
                lines.append((reader.line_num, row))
    except csv.Error as exc:
        raise InvalidInputError(f"CSV body cannot be parsed: {exc}") from None
    if not lines:
        raise InvalidInputError("CSV body is empty; expected a header line and data lines")
    width = len(lines[0][1])
    for number, row in lines[1:]:
        if len(row) != width:
            raise InvalidInputError(
                f"CSV line {number} has {len(row)} fields; line {lines[0][0]} has {width}"
            )

    def build(feeds: FeedBuilder) -> Feed:
        first = lines[0][1]
        names = feeds.signature.columns or None
        has_header = header if header is not None else _looks_like_header(first, feeds, names)
        data = lines[1:] if has_header else lines
        if has_header and names is not None:
            return _named_columns(first, data, feeds)
        # Positional: no header, or a header the model has no names to check against.
        specs = [
            feeds.column_spec(names[j]) if names and j < len(names) else feeds.signature.inputs[0]
            for j in range(width)
        ]
        labels = list(names) if names and len(names) == width else [str(j) for j in range(width)]
        rows = [
            [_cell(row[j], specs[j], labels[j], number) for j in range(width)]
            for number, row in data
        ]
        return feeds.rows(rows, "CSV")

    return build


def _named_columns(
    header: list[str], data: list[tuple[int, list[str]]], feeds: FeedBuilder
) -> Feed:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InvalidInputError(f"CSV header names column {name!r} twice")
        seen.add(name)
    columns = {
        name: [_cell(row[j], feeds.column_spec(name), name, number) for number, row in data]
        for j, name in enumerate(header)
    }
    return feeds.columns(columns, "CSV")


def _looks_like_header(first: list[str], feeds: FeedBuilder, names: tuple[str, ...] | None) -> bool:
    if first == [str(j) for j in range(len(first))]:
        return True  # pandas' default column names: df.to_csv() of an unnamed frame
    if names is not None:
        if any(field in names for field in first) or len(first) != len(names):
            return True
        specs = [feeds.column_spec(name) for name in names]
    else:
        specs = [feeds.signature.inputs[0]] * len(first)
    if not any(spec is not None and spec.np_dtype.kind in "fiub" for spec in specs):
        return True  # an all-text first line cannot be told from a header: MLflow's reading
    return not all(_reads_as(field, spec) for field, spec in zip(first, specs, strict=True))


def _reads_as(text: str, spec: TensorSpec | None) -> bool:
    try:
        _cell(text, spec, "", 0)
    except InvalidInputError:
        return False
    return text != "" or spec is None or spec.np_dtype.kind in "OUS"


def _cell(text: str, spec: TensorSpec | None, column: str, line: int) -> Any:
    """A CSV field typed by the model's input: numbers for numeric inputs, else text."""
    if spec is None or spec.np_dtype.kind in "OUS":
        return text
    if text == "":
        return None
    kind = spec.np_dtype.kind
    if kind == "b":
        flag = _BOOLS.get(text.strip().lower())
        if flag is None:
            raise InvalidInputError(
                f"CSV line {line} column {column!r} is {text!r:.40}; expected true or false"
            )
        return flag
    try:
        if kind in "iu":
            try:
                return int(text)
            except ValueError:
                number = float(text)
                return int(number) if number.is_integer() else number
        return float(text)
    except ValueError:
        raise InvalidInputError(
            f"CSV line {line} column {column!r} is {text!r:.40}; expected a number ({spec.dtype})"
        ) from None


def _kind(value: Any) -> str:
    return "a list" if isinstance(value, list) else f"{type(value).__name__} {value!r:.40}"


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
