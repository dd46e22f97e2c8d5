"""A packaged ONNX model behind the scikit-learn prediction interface.

:class:`OnnxPredictor` runs ``model.onnx`` with onnxruntime but reads like a fitted
estimator (``predict``, ``predict_proba``, ``classes_``), so code that scores data frames —
comparing a challenger with the champion, batch scoring — uses exactly the artifact that is
served, never a pickle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnxruntime
    import pandas as pd

    from loopml.package.signature import Signature
    from loopml.registry import ModelRegistry

__all__ = ["OnnxPredictor", "load_predictor"]


class OnnxPredictor:
    """Predict with ONNX bytes exported by loopml (``predict``/``predict_proba``/``classes_``)."""

    def __init__(self, onnx_bytes: bytes, *, intra_op_threads: int = 0) -> None:
        from loopml.package.session import load_onnx_session
        from loopml.package.signature import Signature

        self.session: onnxruntime.InferenceSession = load_onnx_session(
            onnx_bytes, intra_op_threads=intra_op_threads
        )
        self.signature: Signature = Signature.from_session(self.session)
        if self.signature.classes is not None:
            self.classes_ = np.asarray(self.signature.classes)

    def _run(self, X: pd.DataFrame | np.ndarray) -> dict[str, np.ndarray]:
        from loopml.package.feed import frame_to_feed

        feed = frame_to_feed(self.signature, X)
        outputs = self.session.run(None, feed)
        return dict(zip(self.signature.output_names, outputs, strict=True))

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Predicted values (regression) or class labels, one per row."""
        out = self._run(X)
        return np.asarray(out[self.signature.prediction_output]).reshape(-1)

    @property
    def predict_proba(self) -> Any:
        """Class probabilities ``[N, K]`` in ``classes_`` order (absent for regressors and
        score-only classifiers, so ``hasattr`` answers as for scikit-learn estimators)."""
        if "probabilities" not in self.signature.output_names:
            raise AttributeError(f"this {self.signature.task} model has no class probabilities")
        return self._predict_proba

    def _predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return np.asarray(self._run(X)["probabilities"], dtype=np.float64)


def load_predictor(registry: ModelRegistry, version: Any) -> OnnxPredictor:
    """The :class:`OnnxPredictor` of a registered version (``version.name``/``.version``)."""
    from loopml.package.bundle import ONNX_FILE

    data = registry.read_artifact(version.name, version.version, ONNX_FILE)
    return OnnxPredictor(data)
