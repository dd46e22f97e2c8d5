"""The Open Inference Protocol (KServe V2) over REST, with Triton's binary tensor extension.

Endpoints: ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``,
``/v2/models/{name}[/versions/{version}]``, ``.../ready`` and ``POST .../infer``. Without a
version, ``infer`` follows the model's traffic policy; with one, that version answers.
Errors are ``{"error": message}`` as the specification asks.

Clients differ in what they send, and all of these work: JSON with or without a
Content-Type, tensors with flat or nested ``data``, and Triton's binary form, where the
``Inference-Header-Content-Length`` header says how much of the body is JSON and each input's
``parameters.binary_data_size`` how many raw bytes of the rest it takes, and bodies compressed
with gzip or deflate (``Content-Encoding``, which Triton's client sends when asked). Outputs
come back as binary when an output asks for ``binary_data: true`` or the request sets
``binary_data_output``.

Outputs that are not tensors in ONNX, such as the ``{class: probability}`` maps of a
scikit-learn classifier converted with a ZipMap, are answered as a ``[rows, classes]`` FP32
tensor (classes in the map's order), since the protocol has no map type.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import orjson

from loopml._version import __version__
from loopml.errors import InvalidInputError, LoopMLError
from loopml.package.signature import V2_DATATYPES, TensorSpec
from loopml.serve.limits import UnsupportedMediaTypeError, media_type
from loopml.serve.models import LoadedModel
from loopml.serve.protocols.body import json_reply, load_json
from loopml.serve.state import Call, Reply, ServerState, infer

__all__ = ["FAST_ROUTES", "error_body", "model_metadata", "server_metadata"]

DTYPES: dict[str, np.dtype[Any]] = {
    v2: np.dtype(name) for name, v2 in V2_DATATYPES.items() if v2 != "BYTES"
}
_ACCEPTED = (
    "",
    "application/json",
    "application/octet-stream",
    "application/vnd.sagemaker-triton.binary+json",
)
_HEADER_LENGTH = b"inference-header-content-length"
EXTENSIONS = ["binary_tensor_data"]
_TEXT = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


async def model_infer(call: Call, state: ServerState) -> Reply:
    """``POST /v2/models/{name}[/versions/{version}]/infer``."""
    kind, params = media_type(call.header(b"content-type"))
    if kind not in _ACCEPTED and not kind.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"Content-Type {kind!r} is not supported for inference; expected application/json "
            "(or application/octet-stream with the binary tensor extension)"
        )
    header_length = call.header(_HEADER_LENGTH) or params.get("json-header-size", "").encode()
    document, binary = _split_body(call.body, header_length)  # decoded by the app
    request = _check_request(document)
    name = call.params["name"]
    version = call.params.get("version")
    arrays = _input_arrays(request["inputs"], binary)
    result = await infer(
        state,
        call,
        name,
        lambda feeds: feeds.arrays(arrays, "inputs"),
        protocol="v2",
        version=version,
    )
    return _reply(request, result.model, result.outputs)


def server_metadata() -> dict[str, Any]:
    return {"name": "loopml", "version": __version__, "extensions": EXTENSIONS}


def model_metadata(model: LoadedModel, versions: list[str]) -> dict[str, Any]:
    schema = model.schema
    return {
        "name": model.name,
        "versions": versions,
        "platform": "onnx_onnxv1",
        "inputs": [_tensor_metadata(spec) for spec in schema.inputs],
        "outputs": [_tensor_metadata(spec) for spec in schema.outputs],
    }


def _tensor_metadata(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "datatype": spec.v2_datatype, "shape": list(spec.shape)}


def error_body(exc: LoopMLError, status: int, call: Call | None) -> dict[str, Any]:
    message = exc.message if not exc.hint else f"{exc.message} (hint: {exc.hint})"
    return {"error": message}


# ---- request ------------------------------------------------------------------------------


def _split_body(body: bytes, header_length: bytes | None) -> tuple[Any, bytes]:
    if not header_length:
        return load_json(body), b""
    try:
        size = int(header_length)
    except ValueError:
        raise InvalidInputError(
            f"Inference-Header-Content-Length is {header_length.decode(errors='replace')!r}, "
            "not a number"
        ) from None
    if not 0 <= size <= len(body):
        raise InvalidInputError(
            f"Inference-Header-Content-Length is {size} but the body has {len(body)} bytes"
        )
    return load_json(body[:size], "inference request header"), body[size:]


def _check_request(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise InvalidInputError(
            "inference request must be a JSON object with an 'inputs' list",
            hint='e.g. {"inputs": [{"name": "X", "shape": [1, 1], "datatype": "FP32", '
            '"data": [1.0]}]}',
        )
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInputError(
            "inference request needs a non-empty 'inputs' list",
            hint='each input: {"name", "shape", "datatype", "data"}',
        )
    outputs = document.get("outputs")
    if outputs is not None and (
        not isinstance(outputs, list)
        or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs)
    ):
        raise InvalidInputError("'outputs' must be a list of objects with a 'name'")
    for key in ("parameters",):
        if key in document and not isinstance(document[key], dict):
            raise InvalidInputError(f"'{key}' must be an object")
    if "id" in document and not isinstance(document["id"], str):
        raise InvalidInputError("'id' must be a string")
    return document


def _input_arrays(inputs: list[Any], binary: bytes) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for i, tensor in enumerate(inputs):
        where = f"inputs[{i}]"
        if not isinstance(tensor, dict):
            raise InvalidInputError(f"{where} must be an object with name, shape, datatype, data")
        name = tensor.get("name")
        if not isinstance(name, str):
            raise InvalidInputError(f"{where}.name must be a string")
        where = f"inputs[{i}] ({name!r})"
        if name in arrays:
            raise InvalidInputError(f"{where} appears twice")
        shape = tensor.get("shape")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise InvalidInputError(
                f"{where}.shape must be a list of non-negative integers, got {shape!r:.60}"
            )
        datatype = tensor.get("datatype")
        if not isinstance(datatype, str) or (datatype not in DTYPES and datatype != "BYTES"):
            raise InvalidInputError(
                f"{where}.datatype {datatype!r:.40} is not an Open Inference Protocol datatype",
                hint=f"one of {', '.join([*DTYPES, 'BYTES'])}",
            )
        parameters = tensor.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise InvalidInputError(f"{where}.parameters must be an object")
        count = math.prod(shape)
        size = parameters.get("binary_data_size")
        if size is not None:
            if type(size) is not int or size < 0 or offset + size > len(binary):
                raise InvalidInputError(
                    f"{where}.parameters.binary_data_size is {size!r}, but only "
                    f"{len(binary) - offset} binary bytes remain"
                )
            array = _from_binary(binary[offset : offset + size], datatype, count, where)
            offset += size
        else:
            if "data" not in tensor:
                raise InvalidInputError(f"{where} has no 'data' (and no binary_data_size)")
            array = _from_json(tensor["data"], datatype, count, where)
        arrays[name] = array.reshape(shape)
    if offset != len(binary):
        raise InvalidInputError(
            f"the body has {len(binary) - offset} bytes after the JSON header that no input claims",
            hint="each binary input needs parameters.binary_data_size, and "
            "Inference-Header-Content-Length must be the JSON header's length",
        )
    return arrays


def _from_json(data: Any, datatype: str, count: int, where: str) -> np.ndarray:
    # Out-of-range values become inf and are refused by the feed's finite check: a 400.
    with np.errstate(all="ignore"):
        return _from_json_values(data, datatype, count, where)


def _from_json_values(data: Any, datatype: str, count: int, where: str) -> np.ndarray:
    if not isinstance(data, list):
        data = [data]
    try:
        array = np.array(data)
        if array.dtype == object:
            raise ValueError("mixed values")
        flat = array.reshape(-1)
    except (ValueError, TypeError):
        # Ragged, mixed, or nested deeper than numpy's 64 dimensions: the data is row-major
        # whatever its nesting, so flatten it by hand; the count is checked against the shape.
        leaves = _flatten(data)
        try:
            flat = np.array(leaves)
        except (ValueError, TypeError):
            flat = np.array(leaves, dtype=object)
        if flat.ndim != 1:
            flat = np.array(leaves, dtype=object)
    if flat.size != count:
        raise InvalidInputError(
            f"{where}.data has {flat.size} values but shape asks for {count}",
        )
    kind = flat.dtype.kind
    if datatype == "BYTES":
        if kind in "US" or (kind == "O" and all(isinstance(v, str) for v in flat.tolist())):
            return flat.astype(object)
    elif datatype == "BOOL":
        if kind == "b":
            return flat
    elif DTYPES[datatype].kind == "f":
        if kind in "fiu":
            return flat.astype(DTYPES[datatype])
        if kind == "O" and all(v is None or type(v) in (int, float) for v in flat.tolist()):
            return np.array([np.nan if v is None else v for v in flat.tolist()], DTYPES[datatype])
    elif kind in "iu" or (
        kind == "f" and np.isfinite(flat).all() and (flat == np.floor(flat)).all()
    ):
        return flat.astype(DTYPES[datatype])
    bad = next((v for v in flat.tolist() if not _fits(v, datatype)), flat[0] if flat.size else None)
    raise InvalidInputError(f"{where}.data holds {bad!r:.60}, which is not {datatype}")


def _from_binary(raw: bytes, datatype: str, count: int, where: str) -> np.ndarray:
    if datatype == "BYTES":
        values, pos = [], 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise InvalidInputError(f"{where}: binary BYTES data ends inside a length prefix")
            (length,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            if pos + length > len(raw):
                raise InvalidInputError(f"{where}: binary BYTES element overruns the data")
            try:
                values.append(raw[pos : pos + length].decode())
            except UnicodeDecodeError:
                raise InvalidInputError(
                    f"{where}: binary BYTES element is not UTF-8 text"
                ) from None
            pos += length
        array = np.array(values, dtype=object)
    else:
        dtype = DTYPES[datatype].newbyteorder("<")
        if len(raw) != count * dtype.itemsize:
            raise InvalidInputError(
                f"{where}: {len(raw)} binary bytes, but shape and {datatype} need "
                f"{count * dtype.itemsize}"
            )
        array = np.frombuffer(raw, dtype=dtype).astype(DTYPES[datatype])
    if array.size != count:
        raise InvalidInputError(f"{where}: {array.size} values, but shape asks for {count}")
    return array


def _flatten(data: list[Any]) -> list[Any]:
    """The leaves of nested lists in order, without recursion (nesting depth is the client's)."""
    leaves: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            leaves.append(item)
        else:
            stack.pop()
    return leaves


def _fits(value: Any, datatype: str) -> bool:
    if datatype == "BYTES":
        return isinstance(value, str)
    if datatype == "BOOL":
        return type(value) is bool
    if DTYPES[datatype].kind == "f":
        return type(value) in (int, float)
    return type(value) is int


# ---- reply --------------------------------------------------------------------------------


def _reply(request: dict[str, Any], model: LoadedModel, outputs: list[Any]) -> Reply:
    specs = model.schema.outputs
    by_name = {spec.name: i for i, spec in enumerate(specs)}
    wanted = request.get("outputs")
    parameters = request.get("parameters") or {}
    binary_default = _flag(parameters, "binary_data_output", False, "parameters")
    selected: list[tuple[int, bool]] = []
    if wanted:
        for i, item in enumerate(wanted):
            if item["name"] not in by_name:
                raise InvalidInputError(
                    f"output {item['name']!r} does not exist",
                    hint=f"model outputs: {', '.join(by_name)}",
                )
            item_params = item.get("parameters") or {}
            where = f"outputs[{i}].parameters"
            if not isinstance(item_params, dict):
                raise InvalidInputError(f"{where} must be an object")
            if "classification" in item_params:
                raise InvalidInputError(
                    f"{where}.classification: the classification extension is not supported",
                    hint="ask for the model's label or probabilities output instead",
                )
            binary = _flag(item_params, "binary_data", binary_default, where)
            selected.append((by_name[item["name"]], binary))
    else:
        selected = [(i, binary_default) for i in range(len(specs))]
    tensors, chunks = [], []
    for index, binary in selected:
        array = _output_array(outputs[index])
        spec = specs[index]
        datatype = V2_DATATYPES.get(array.dtype.name, "BYTES") if array.dtype != object else "BYTES"
        tensor: dict[str, Any] = {
            "name": spec.name,
            "datatype": datatype,
            "shape": list(array.shape),
        }
        if binary:
            raw = _to_binary(array, datatype)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            flat = array.reshape(-1)
            tensor["data"] = flat.tolist() if flat.dtype == object else flat
        tensors.append(tensor)
    document: dict[str, Any] = {"model_name": model.name, "model_version": model.version}
    if "id" in request:
        document["id"] = request["id"]
    document["outputs"] = tensors
    reply = json_reply(document)
    if chunks:
        header = reply.body
        reply.body = header + b"".join(chunks)
        reply.content_type = b"application/octet-stream"
        reply.headers.append((b"inference-header-content-length", str(len(header)).encode()))
    return reply


def _flag(parameters: dict[str, Any], key: str, default: bool, where: str) -> bool:
    value = parameters.get(key, default)
    if type(value) is not bool:
        raise InvalidInputError(f"{where}.{key} must be true or false, got {value!r:.40}")
    return value


def _output_array(value: Any) -> np.ndarray:
    """An output as a tensor; a list of ``{class: probability}`` maps becomes a matrix."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
        keys = list(value[0])
        if all(list(row) == keys for row in value):
            try:
                return np.array([[row[k] for k in keys] for row in value], dtype=np.float32)
            except (TypeError, ValueError):
                pass
    array = np.array(value, dtype=object)
    flat = array.reshape(-1)
    for i, item in enumerate(flat.tolist()):
        if not isinstance(item, str | bytes):
            # Anything else (maps, sequences) travels as its JSON text in a BYTES tensor.
            flat[i] = orjson.dumps(item, option=_TEXT).decode()
    return flat.reshape(array.shape)


def _to_binary(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for value in array.reshape(-1).tolist():
            data = value if isinstance(value, bytes) else str(value).encode()
            parts.append(struct.pack("<I", len(data)) + data)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


FAST_ROUTES = [
    ("/v2/models/{name}/infer", model_infer),
    ("/v2/models/{name}/versions/{version}/infer", model_infer),
]


def routes(state: ServerState) -> list[Any]:
    """The GET endpoints, as Starlette routes (errors go through the app's one table)."""
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    def respond(document: Any, status: int = 200) -> Response:
        reply = json_reply(document, status)
        return Response(reply.body, status, media_type="application/json")

    async def live(request: Request) -> Response:
        return respond({"live": True})

    async def ready(request: Request) -> Response:
        # Models load before the server binds its port, so a server that answers is ready.
        ok = bool(state.table.names())
        return respond({"ready": ok}, 200 if ok else 503)

    async def metadata(request: Request) -> Response:
        return respond(server_metadata())

    def pick(request: Request) -> tuple[LoadedModel, list[str]]:
        name = request.path_params["name"]
        version = request.path_params.get("version")
        targets = state.table.targets(name)
        versions = sorted({t.model.version for t in targets.values()}, key=_version_key)
        if version is None:
            return next(iter(targets.values())).model, versions
        return state.table.version(name, version), versions

    async def model(request: Request) -> Response:
        loaded, versions = pick(request)
        return respond(model_metadata(loaded, versions))

    async def model_ready(request: Request) -> Response:
        loaded, _ = pick(request)
        return respond({"name": loaded.name, "ready": True})

    return [
        Route("/v2", metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2/models/{name}", model, methods=["GET"]),
        Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}", model, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/ready", model_ready, methods=["GET"]),
    ]


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 62, version)
