"""Import optional heavy dependencies only where they are used, with an install hint."""

from __future__ import annotations

import importlib
from types import ModuleType

from loopml.errors import MissingDependencyError


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install.

    >>> require("json", extra="core", purpose="reading JSON")  # doctest: +ELLIPSIS
    <module 'json' ...>
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the optional package {module!r}, which is not installed",
            hint=f"pip install 'loopml[{extra}]'",
        ) from exc
