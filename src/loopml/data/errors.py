"""Errors raised by :mod:`loopml.data`, each a subclass of the :mod:`loopml.errors` tree.

    InvalidInputError
    ├── SourceFormatError         a source exists but cannot be read as data (empty, ragged,
    │                             mis-encoded, unparseable)
    ├── SchemaChangeError         columns appeared, vanished or changed type against the contract
    │                             or the previous version
    ├── ContractViolationError    rows break the contract and cleaning is off
    └── ExportUnsupportedError    a feature transform has no ONNX form
    NotFoundError
    └── SourceNotFoundError       a file, glob or table named by a source does not exist
    BackendUnavailableError
    └── SourceUnavailableError    a database or HTTP API named by a source cannot be reached

Every message names the source (or dataset), the problem, and the way out (``hint``).
"""

from __future__ import annotations

from typing import Any

from loopml.errors import BackendUnavailableError, InvalidInputError, NotFoundError

__all__ = [
    "ContractViolationError",
    "ExportUnsupportedError",
    "SchemaChangeError",
    "SourceFormatError",
    "SourceNotFoundError",
    "SourceUnavailableError",
]


class SourceFormatError(InvalidInputError):
    code = "SOURCE_FORMAT"


class SourceNotFoundError(NotFoundError):
    code = "SOURCE_NOT_FOUND"


class SourceUnavailableError(BackendUnavailableError):
    code = "SOURCE_UNAVAILABLE"


class SchemaChangeError(InvalidInputError):
    code = "SCHEMA_CHANGE"


class ContractViolationError(InvalidInputError):
    """Rows violate the contract; ``report`` holds the per-rule results."""

    code = "CONTRACT_VIOLATION"

    def __init__(self, message: str, *, hint: str | None = None, report: Any = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report


class ExportUnsupportedError(InvalidInputError):
    code = "EXPORT_UNSUPPORTED"
