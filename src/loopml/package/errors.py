"""Errors raised while packaging a model.

    LoopMLError
    └── PackagingError                 a model cannot become a served artifact
        └── ParityError                its ONNX form disagrees with the native model
    InvalidInputError(ValueError)
    └── InvalidFeedError               request data does not fit a model's signature

Both packaging errors fail registration: a version that cannot be served faithfully must not
reach the registry. ``InvalidFeedError`` is what the server turns into a 4xx answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.errors import InvalidInputError, LoopMLError

if TYPE_CHECKING:
    from loopml.package.parity import ParityReport

__all__ = ["InvalidFeedError", "PackagingError", "ParityError"]


class PackagingError(LoopMLError):
    """A model, or one step of its pipeline, cannot be exported to ONNX."""

    code = "PACKAGING_FAILED"

    def __init__(self, message: str, *, hint: str | None = None, step: str | None = None) -> None:
        super().__init__(message, hint=hint)
        #: the pipeline path of the offending step (``"features/num/log"``), when known
        self.step = step


class ParityError(PackagingError):
    """ONNX Runtime and the native model give different answers on the same rows."""

    code = "PARITY_FAILED"

    def __init__(self, message: str, *, report: ParityReport, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report


class InvalidFeedError(InvalidInputError):
    """Request data does not match the model signature; ``field`` names the input at fault."""

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field

    def to_dict(self) -> dict[str, str]:
        body = super().to_dict()
        if self.field is not None:
            body["field"] = self.field
        return body
