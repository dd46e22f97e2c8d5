"""The one exception tree every loopml layer raises.

    LoopMLError
    ├── NotFoundError(LookupError)            something named does not exist
    ├── AlreadyExistsError                    a name or key is taken
    ├── InvalidInputError(ValueError)         the caller passed something wrong
    │   └── ConfigError                       a setting or project file is malformed
    ├── ConflictError                         the request clashes with stored state
    ├── NotFittedError(ValueError, AttributeError)
    ├── IntegrityError                        stored bytes do not match their checksum
    ├── BackendUnavailableError(ConnectionError)  a database, bucket or API cannot be reached
    └── MissingDependencyError(ImportError)   an optional extra is not installed

Each error carries a stable ``code`` (for JSON bodies and scripts) and an optional ``hint``
telling the user what to do. The HTTP layer maps error *types* to status codes in one table;
the CLI prints ``message`` and ``hint`` on one line each and exits non-zero.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "BackendUnavailableError",
    "ConfigError",
    "ConflictError",
    "IntegrityError",
    "InvalidInputError",
    "LoopMLError",
    "MissingDependencyError",
    "NotFittedError",
    "NotFoundError",
]


class LoopMLError(Exception):
    """Root of every error loopml raises on purpose."""

    code = "LOOPML_ERROR"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} (hint: {self.hint})"
        return self.message

    def to_dict(self) -> dict[str, str]:
        """The JSON form used by the CLI's ``--json`` mode and the HTTP servers."""
        body = {"error": self.message, "code": self.code}
        if self.hint:
            body["hint"] = self.hint
        return body


class NotFoundError(LoopMLError, LookupError):
    code = "NOT_FOUND"


class AlreadyExistsError(LoopMLError):
    code = "ALREADY_EXISTS"


class InvalidInputError(LoopMLError, ValueError):
    code = "INVALID_INPUT"


class ConfigError(InvalidInputError):
    code = "INVALID_CONFIG"


class ConflictError(LoopMLError):
    code = "CONFLICT"


class NotFittedError(LoopMLError, ValueError, AttributeError):
    code = "NOT_FITTED"


class IntegrityError(LoopMLError):
    code = "INTEGRITY_ERROR"


class BackendUnavailableError(LoopMLError, ConnectionError):
    code = "BACKEND_UNAVAILABLE"


class MissingDependencyError(LoopMLError, ImportError):
    code = "MISSING_DEPENDENCY"
