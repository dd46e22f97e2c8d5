"""Parsing model references: ``NAME@ALIAS``, ``NAME:VERSION``, ``NAME`` and ``models:/`` URIs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from loopml.errors import InvalidInputError

__all__ = ["ModelRef", "check_alias", "check_model_name", "parse_ref"]

_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]{0,255}$")
_ALIAS = re.compile(r"^[A-Za-z_][\w\-]{0,255}$")
RESERVED_ALIASES = frozenset({"latest"})


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed reference: exactly one of ``version`` / ``alias`` set, or neither (latest)."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        return f"{self.name}@{self.alias or 'latest'}"


def check_model_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInputError(
            f"model name {name!r} is not valid",
            hint="use letters, digits, '_', '-' and '.', starting with a letter or digit",
        )
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias) or alias in RESERVED_ALIASES:
        raise InvalidInputError(
            f"alias {alias!r} is not valid",
            hint="use letters, digits, '_' and '-', starting with a letter (e.g. champion); "
            "'latest' is reserved",
        )
    return alias


def parse_ref(ref: str) -> ModelRef:
    """Parse ``NAME@ALIAS``, ``NAME:VERSION``, ``NAME`` (latest) or ``models:/NAME/V``."""
    text = ref.strip() if isinstance(ref, str) else ""
    if text.startswith("models:/"):
        body = text[len("models:/") :]
        if "@" in body:
            text = body
        elif "/" in body:
            name, _, version = body.rpartition("/")
            text = f"{name}:{version}" if version != "latest" else name
        else:
            text = body
    if "@" in text:
        name, _, alias = text.partition("@")
        check_model_name(name)
        if alias == "latest":
            return ModelRef(name)
        return ModelRef(name, alias=check_alias(alias))
    if ":" in text:
        name, _, version = text.rpartition(":")
        check_model_name(name)
        if not version.isdigit() or int(version) < 1:
            raise InvalidInputError(
                f"model reference {ref!r} has version {version!r}, not a positive integer",
                hint="write NAME:3 for version 3, or NAME@champion for an alias",
            )
        return ModelRef(name, version=int(version))
    if not text:
        raise InvalidInputError(
            f"model reference {ref!r} is empty",
            hint="write NAME@ALIAS (e.g. churn@champion), NAME:VERSION or NAME",
        )
    return ModelRef(check_model_name(text))
