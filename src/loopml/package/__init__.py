"""Packaging: a fitted model becomes a framework-free, checked, documented artifact.

    export_onnx / export_torch_onnx   model (+ feature transform) -> ONNX bytes + Signature
    check_parity                      onnxruntime vs the native model on held-out rows
    package_model                     export + parity + ModelCard (+ pickle only on opt-in)
    log_packaged_model                store the files as run artifacts under ``model/``
    Signature, FeedBuilder, to_feed   what a model takes, and request data -> its feed
    load_onnx_session                 an onnxruntime session configured for serving

Importing this package is cheap; skl2onnx, onnxruntime and torch load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._lazy import lazy_exports

if TYPE_CHECKING:
    from loopml.package.bundle import (
        LoggedModel,
        PackagedModel,
        load_packaged_model,
        log_packaged_model,
        package_model,
    )
    from loopml.package.card import ModelCard
    from loopml.package.errors import InvalidFeedError, PackagingError, ParityError
    from loopml.package.export import OnnxExport, export_onnx
    from loopml.package.feed import Feed, FeedBuilder, frame_to_feed, to_feed
    from loopml.package.parity import OutputParity, ParityReport, check_parity
    from loopml.package.predictor import OnnxPredictor, load_predictor
    from loopml.package.session import load_onnx_session
    from loopml.package.signature import Signature, TensorSpec
    from loopml.package.torch_export import export_torch_onnx

_LAZY: dict[str, str] = {
    "Feed": "loopml.package.feed",
    "FeedBuilder": "loopml.package.feed",
    "InvalidFeedError": "loopml.package.errors",
    "LoggedModel": "loopml.package.bundle",
    "ModelCard": "loopml.package.card",
    "OnnxExport": "loopml.package.export",
    "OnnxPredictor": "loopml.package.predictor",
    "OutputParity": "loopml.package.parity",
    "PackagedModel": "loopml.package.bundle",
    "PackagingError": "loopml.package.errors",
    "ParityError": "loopml.package.errors",
    "ParityReport": "loopml.package.parity",
    "Signature": "loopml.package.signature",
    "TensorSpec": "loopml.package.signature",
    "check_parity": "loopml.package.parity",
    "export_onnx": "loopml.package.export",
    "export_torch_onnx": "loopml.package.torch_export",
    "frame_to_feed": "loopml.package.feed",
    "load_onnx_session": "loopml.package.session",
    "load_packaged_model": "loopml.package.bundle",
    "load_predictor": "loopml.package.predictor",
    "log_packaged_model": "loopml.package.bundle",
    "package_model": "loopml.package.bundle",
    "to_feed": "loopml.package.feed",
}

__all__ = [
    "Feed",
    "FeedBuilder",
    "InvalidFeedError",
    "LoggedModel",
    "ModelCard",
    "OnnxExport",
    "OnnxPredictor",
    "OutputParity",
    "PackagedModel",
    "PackagingError",
    "ParityError",
    "ParityReport",
    "Signature",
    "TensorSpec",
    "check_parity",
    "export_onnx",
    "export_torch_onnx",
    "frame_to_feed",
    "load_onnx_session",
    "load_packaged_model",
    "load_predictor",
    "log_packaged_model",
    "package_model",
    "to_feed",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
