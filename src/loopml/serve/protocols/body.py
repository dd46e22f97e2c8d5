"""Parsing JSON request bodies and writing JSON replies, shared by every protocol."""

from __future__ import annotations

import json
import zlib
from typing import Any

import orjson

from loopml.errors import InvalidInputError
from loopml.serve.limits import UnsupportedMediaTypeError, media_type, too_large
from loopml.serve.state import Call, Reply

__all__ = ["check_json", "decoded_body", "json_reply", "load_json"]

_BOM = b"\xef\xbb\xbf"
# zlib's window-bits: 32 + 15 reads a zlib or a gzip stream (told apart by its header), -15 a
# raw deflate stream (what some clients send as "deflate", against the RFC).
_WBITS = {"gzip": 32 + 15, "x-gzip": 32 + 15, "deflate": 32 + 15}

_DUMP = orjson.OPT_SERIALIZE_NUMPY


def load_json(body: bytes, where: str = "request body") -> Any:
    """Parse ``body``; a clear error for empty bodies, bad JSON and NaN/Infinity literals.

    A leading UTF-8 byte-order mark (some Windows clients write one) is skipped.
    """
    if not body:
        raise InvalidInputError(f"{where} is empty; expected a JSON document")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        detail = str(exc)
    if body.startswith(_BOM):  # checked only on failure: the common case pays nothing
        return load_json(body[len(_BOM) :], where)
    raise _explain(body, detail, where)


def _explain(body: bytes, detail: str, where: str) -> InvalidInputError:
    """Why orjson refused ``body``, in the client's terms."""
    if detail.startswith("depth limit"):
        return InvalidInputError(
            f"{where} nests arrays or objects more than 1024 levels deep",
            hint="send rows as lists of values; no request needs that much nesting",
        )
    try:  # the stdlib is laxer; what it accepts and orjson does not tells what went wrong
        json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return InvalidInputError(
            f"{where} is not valid JSON: {detail}",
            hint="check the JSON syntax, e.g. with `python -m json.tool`",
        )
    if b"NaN" in body or b"Infinity" in body:
        return InvalidInputError(
            f"{where} contains NaN or Infinity, which are not JSON values",
            hint="send missing values as null, and only if the model accepts them",
        )
    if "number" in detail:
        return InvalidInputError(
            f"{where} holds a number out of range ({detail})",
            hint="send numbers that fit in a 64-bit float",
        )
    return InvalidInputError(f"{where} cannot be read: {detail}")


def decoded_body(call: Call, limit: int) -> bytes:
    """The body with its ``Content-Encoding`` (gzip or deflate) undone.

    Triton's client compresses requests when asked to. The decompressed size is held to
    ``limit`` as the raw body is, so a small compressed bomb is a 413, not a full memory.
    """
    raw = call.header(b"content-encoding")
    if raw is None:
        return call.body
    coding = raw.decode("latin-1").strip().lower()
    if coding in ("", "identity"):
        return call.body
    wbits = _WBITS.get(coding)
    if wbits is None:
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {coding!r} is not supported",
            hint="send the body uncompressed, or compressed with gzip or deflate",
        )
    try:
        return _inflate(call.body, wbits, limit)
    except zlib.error:
        if coding != "deflate":
            raise InvalidInputError(
                f"request body is not valid {coding} data", hint="check the Content-Encoding"
            ) from None
    try:
        return _inflate(call.body, -15, limit)
    except zlib.error:
        raise InvalidInputError(
            "request body is not valid deflate data", hint="check the Content-Encoding"
        ) from None


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit:
        raise too_large(limit + 1, limit, streamed=True)
    out += inflater.flush()
    if not inflater.eof:
        raise zlib.error("truncated stream")
    if len(out) > limit:
        raise too_large(len(out), limit, streamed=True)
    return out


def check_json(call: Call, *, allow_missing: bool = True) -> None:
    """Refuse a Content-Type other than JSON (415); a missing one is read as JSON."""
    raw = call.header(b"content-type")
    if raw == b"application/json":
        return
    kind, params = media_type(raw)
    if not kind and allow_missing:
        return
    if kind != "application/json" and not (
        kind.startswith("application/") and kind.endswith("+json")
    ):
        raise UnsupportedMediaTypeError(
            f"Content-Type {kind or '(none)'!r} is not supported here; expected application/json",
            hint="send the header Content-Type: application/json",
        )
    charset = params.get("charset")
    if charset not in (None, "utf-8", "utf8"):
        raise UnsupportedMediaTypeError(
            f"charset {charset!r} is not supported; JSON bodies must be UTF-8"
        )


def json_reply(
    document: Any, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None
) -> Reply:
    """A JSON reply; numpy arrays serialise natively, object arrays via ``tolist``."""
    try:
        body = orjson.dumps(document, option=_DUMP)
    except TypeError:
        body = orjson.dumps(_plain(document), option=_DUMP)
    return Reply(status, body, b"application/json", headers or [])


def _plain(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
