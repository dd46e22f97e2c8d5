"""What the server refuses before parsing anything: oversized bodies and wrong content types.

The body is read with a running total, so a client that streams gigabytes without a
``Content-Length`` is cut off at the limit (413) instead of filling memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from loopml.errors import InvalidInputError

__all__ = [
    "BodyTooLargeError",
    "UnsupportedMediaTypeError",
    "media_type",
    "read_body",
    "too_large",
]

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class BodyTooLargeError(InvalidInputError):
    """The request body is larger than the server accepts (HTTP 413)."""

    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaTypeError(InvalidInputError):
    """The request's Content-Type is not one the endpoint reads (HTTP 415)."""

    code = "UNSUPPORTED_MEDIA_TYPE"


class ClientDisconnectedError(Exception):
    """The client went away before sending its whole body."""


async def read_body(receive: Receive, limit: int, content_length: bytes | None) -> bytes:
    """The whole request body, refusing more than ``limit`` bytes."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise InvalidInputError(
                f"Content-Length header is {content_length.decode(errors='replace')!r}, "
                "not a number"
            ) from None
        if declared > limit:
            raise too_large(declared, limit)
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnectedError
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise too_large(len(body), limit)
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnectedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            # Reading stops here, so the real size is unknown: say "more than".
            raise too_large(size, limit, streamed=True)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def media_type(content_type: bytes | None) -> tuple[str, dict[str, str]]:
    """``("application/json", {"charset": "utf-8"})`` from a Content-Type header value."""
    if not content_type:
        return "", {}
    text = content_type.decode("latin-1")
    main, *params = text.split(";")
    parsed = {}
    for param in params:
        key, _, value = param.partition("=")
        parsed[key.strip().lower()] = value.strip().strip('"').lower()
    return main.strip().lower(), parsed


def too_large(size: int, limit: int, *, streamed: bool = False) -> BodyTooLargeError:
    """The 413 error for a body of ``size`` bytes (``streamed``: at least that many)."""
    amount = f"more than {limit}" if streamed else str(size)
    return BodyTooLargeError(
        f"request body is {amount} bytes; this server accepts at most {limit} bytes",
        hint="send fewer rows per request, or raise the limit with --max-body-size",
    )
