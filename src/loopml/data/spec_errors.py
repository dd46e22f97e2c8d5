"""Turning pydantic's validation errors into one readable clause for loopml's messages."""

from __future__ import annotations

__all__ = ["describe_validation_error"]


def describe_validation_error(exc: Exception) -> str:
    """``"columns.x.type: Input should be 'integer', ..."`` for the first problem found."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        found = errors()
        if found:
            first = found[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            message = str(first.get("msg", "")).removeprefix("Value error, ")
            return f"{where}: {message}" if where else message
    return str(exc).splitlines()[0]
