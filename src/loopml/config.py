"""Settings, declared once and read at the edge (the CLI or an app factory), then passed down.

Every setting comes from a ``LOOPML_`` environment variable with a default that needs no server:

==========================  =======================================  ==========================
variable                    default                                  meaning
==========================  =======================================  ==========================
``LOOPML_HOME``             ``./.loopml``                            folder for local state
``LOOPML_STORE_URI``        ``sqlite:///<home>/loopml.db``           metadata store (SQLAlchemy)
``LOOPML_ARTIFACT_URI``     ``<home>/artifacts``                     artifact root (path or URL)
``LOOPML_HEARTBEAT_TIMEOUT``  ``120``                                seconds before a silent run
                                                                     counts as failed
==========================  =======================================  ==========================
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from loopml.errors import ConfigError

__all__ = ["STORE_SCHEMES", "Settings"]

# Store URI scheme -> the extra that provides its driver (None: in the core install).
STORE_SCHEMES: dict[str, str | None] = {
    "sqlite": None,
    "postgresql": "postgres",
    "postgresql+psycopg": "postgres",
}
ARTIFACT_SCHEMES: dict[str, str | None] = {"": None, "file": None, "s3": "s3", "memory": None}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Where loopml keeps its state. Build it with :meth:`from_env` or by keyword."""

    home: Path = field(default_factory=lambda: Path(".loopml"))
    store_uri: str | None = None
    artifact_uri: str | None = None
    heartbeat_timeout: float = 120.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home).expanduser())
        if self.store_uri is None:
            path = (self.home / "loopml.db").absolute()
            object.__setattr__(self, "store_uri", f"sqlite:///{path}")
        if self.artifact_uri is None:
            object.__setattr__(self, "artifact_uri", str((self.home / "artifacts").absolute()))
        _check_store_uri(str(self.store_uri))
        _check_artifact_uri(str(self.artifact_uri))
        if not self.heartbeat_timeout > 0:
            raise ConfigError(
                f"LOOPML_HEARTBEAT_TIMEOUT has value {self.heartbeat_timeout!r}; "
                "it must be a positive number of seconds",
                hint="unset it to use the default of 120 seconds",
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``LOOPML_*`` variables (from ``os.environ`` unless a mapping is given)."""
        env = os.environ if environ is None else environ
        home = env.get("LOOPML_HOME") or ".loopml"
        timeout_text = env.get("LOOPML_HEARTBEAT_TIMEOUT", "120")
        try:
            timeout = float(timeout_text)
        except ValueError:
            raise ConfigError(
                f"LOOPML_HEARTBEAT_TIMEOUT has value {timeout_text!r}; not a number of seconds",
                hint="set it to e.g. 120, or unset it",
            ) from None
        return cls(
            home=Path(home),
            store_uri=env.get("LOOPML_STORE_URI") or None,
            artifact_uri=env.get("LOOPML_ARTIFACT_URI") or None,
            heartbeat_timeout=timeout,
        )


def _mask(uri: str) -> str:
    """The URI with any password replaced by ``***`` (for messages)."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", uri)


def _check_store_uri(uri: str) -> None:
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in STORE_SCHEMES:
        valid = ", ".join(f"{s}://" for s in STORE_SCHEMES)
        raise ConfigError(
            f"LOOPML_STORE_URI has value {_mask(uri)!r}; "
            f"scheme {scheme + '://' if scheme else '(none)'} "
            f"is not supported (valid: {valid})",
            hint="e.g. sqlite:///path/to/loopml.db or postgresql+psycopg://user@host/db",
        )
    try:
        _ = urlsplit(uri).port  # parses host and port: a typo there would be a traceback later
    except ValueError as exc:
        raise ConfigError(
            f"LOOPML_STORE_URI has value {_mask(uri)!r}; it is not a valid URL ({exc})",
            hint="e.g. postgresql+psycopg://user:password@host:5432/db",
        ) from None
    if scheme == "sqlite" and not uri.startswith("sqlite:///"):
        raise ConfigError(
            f"LOOPML_STORE_URI has value {uri!r}; a SQLite URI needs three slashes",
            hint="e.g. sqlite:///relative.db or sqlite:////absolute/path.db",
        )


def _check_artifact_uri(uri: str) -> None:
    scheme = urlsplit(uri).scheme if "://" in uri else ""
    if scheme not in ARTIFACT_SCHEMES:
        valid = ", ".join(f"{s}://" for s in ARTIFACT_SCHEMES if s)
        raise ConfigError(
            f"LOOPML_ARTIFACT_URI has value {_mask(uri)!r}; scheme {scheme}:// is not supported "
            f"(valid: a local path, {valid})",
            hint="e.g. ./artifacts or s3://bucket/prefix (with pip install 'loopml[s3]')",
        )
