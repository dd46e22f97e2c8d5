"""The model card: what a packaged model is, where it came from, and how it was checked.

Stored as ``model_card.json`` next to ``model.onnx``. It is plain JSON (no NaN: non-finite
metric values become ``null``) so any tool can read it; :meth:`ModelCard.from_json` reads it
back and refuses cards it does not understand.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loopml.errors import InvalidInputError
from loopml.package.parity import ParityReport
from loopml.package.signature import Signature

__all__ = ["CARD_SCHEMA_VERSION", "ModelCard"]

CARD_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ModelCard:
    """Everything a reader (or a server) needs to trust and use ``model.onnx``."""

    signature: Signature
    onnx_sha256: str
    onnx_opset: dict[str, int]
    converter: str
    loopml_version: str
    onnxruntime_version: str
    parity: ParityReport | None
    name: str | None = None
    version: str | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    created_at: str = field(default_factory=lambda: _now())
    schema_version: int = CARD_SCHEMA_VERSION

    @property
    def task(self) -> str:
        return self.signature.task

    @property
    def has_pickle(self) -> bool:
        return "model.pkl" in self.files

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "name": self.name,
            "version": self.version,
            "task": self.task,
            "created_at": self.created_at,
            "loopml_version": self.loopml_version,
            "signature": self.signature.to_dict(),
            "metrics": {key: _json_number(value) for key, value in self.metrics.items()},
            "lineage": _jsonable(self.lineage),
            "onnx": {
                "sha256": self.onnx_sha256,
                "opset": dict(self.onnx_opset),
                "converter": self.converter,
            },
            "onnxruntime_version": self.onnxruntime_version,
            "parity": self.parity.to_dict() if self.parity is not None else None,
            "files": dict(self.files),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        if not isinstance(data, Mapping):
            raise InvalidInputError(
                f"a model card must be a JSON object, got {type(data).__name__}"
            )
        schema = data.get("schema_version")
        if schema != CARD_SCHEMA_VERSION:
            raise InvalidInputError(
                f"model card schema_version {schema!r} is not supported "
                f"(this loopml reads version {CARD_SCHEMA_VERSION})",
                hint="upgrade loopml to read cards written by a newer version",
            )
        try:
            onnx_info = data["onnx"]
            parity = data.get("parity")
            return cls(
                name=data.get("name"),
                version=data.get("version"),
                signature=Signature.from_dict(data["signature"]),
                onnx_sha256=str(onnx_info["sha256"]),
                onnx_opset={str(k): int(v) for k, v in onnx_info["opset"].items()},
                converter=str(onnx_info.get("converter", "")),
                loopml_version=str(data["loopml_version"]),
                onnxruntime_version=str(data.get("onnxruntime_version", "")),
                parity=ParityReport.from_dict(parity) if parity else None,
                metrics=dict(data.get("metrics") or {}),
                lineage=dict(data.get("lineage") or {}),
                files=dict(data.get("files") or {}),
                created_at=str(data["created_at"]),
                schema_version=int(schema),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"model card is malformed: {type(exc).__name__}: {exc}",
                hint="model cards are written by loopml.package.package_model",
            ) from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelCard:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInputError(f"model card is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_number(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    number = float(value)
    if not math.isfinite(number):
        return None
    return int(number) if isinstance(value, int) else number


def _jsonable(value: Any) -> Any:
    """NumPy scalars, tuples and paths made JSON-safe (lineage comes from many places)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | bool) or value is None:
        return value
    if isinstance(value, int | float):
        return _json_number(value)
    if hasattr(value, "item"):  # numpy scalar
        return _jsonable(value.item())
    return str(value)
