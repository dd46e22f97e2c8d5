"""The seam between training and packaging: package the winner, and predict with a champion.

Packaging (ONNX export, parity check, model card) lives in :mod:`loopml.package`, one layer
up; the pipeline reaches it only through the two functions here, imported lazily, so the rest
of :mod:`loopml.train` never depends on it.

Until the packaging layer is installed in a checkout, :func:`package` falls back to logging
the fitted pipeline with pickle under ``model/`` (and says so), so that training and
registration can be exercised on their own.
"""

from __future__ import annotations

import importlib
import io
import pickle
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from loopml.registry import ModelRegistry
    from loopml.tracking.client import Client

__all__ = ["FallbackPackage", "champion_predictions", "package"]

ARTIFACT_PATH = "model"


@dataclass
class FallbackPackage:
    """What :func:`package` returns when :mod:`loopml.package` is not available."""

    artifact_path: str = ARTIFACT_PATH
    format: str = "pickle"
    signature: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)


def _package_layer() -> Any | None:
    try:
        module = importlib.import_module("loopml.package")
    except ImportError:
        return None
    return module if hasattr(module, "package_model") else None


def package(
    model: Any,
    X_holdout: Any,
    *,
    task: str,
    run_id: str,
    metrics: dict[str, float],
    lineage: dict[str, Any],
    allow_pickle: bool,
    client: Client,
) -> Any:
    """Package ``model`` under the run's ``model/`` artifacts; returns the package description.

    The packaging layer raises :class:`loopml.package.ParityError` (a :class:`LoopMLError`)
    when the exported model disagrees with the native one; it propagates, failing the run.
    """
    layer = _package_layer()
    if layer is not None:
        return layer.package_model(
            model,
            X_holdout,
            task=task,
            run_id=run_id,
            metrics=metrics,
            lineage=lineage,
            allow_pickle=allow_pickle,
            client=client,
        )
    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    files = [
        client.log_bytes(run_id, payload, f"{ARTIFACT_PATH}/model.pkl"),
        client.log_dict(
            run_id,
            {
                "format": "pickle",
                "task": task,
                "metrics": metrics,
                "note": "loopml.package not available: pickle fallback",
            },
            f"{ARTIFACT_PATH}/card.json",
        ),
    ]
    return FallbackPackage(files=files)


def champion_predictions(
    registry: ModelRegistry,
    version: Any,
    X: Any,
    *,
    task: str,
    classes: list[Any] | None,
) -> tuple[np.ndarray, np.ndarray | None] | str:
    """The champion's predictions (and class probabilities) for ``X``, or why there are none.

    Uses the packaging layer's loader (the artifact that is actually served) when available;
    a version packaged by the pickle fallback is loaded from its pickle.
    """
    layer = _package_layer()
    loader = getattr(layer, "load_predictor", None) if layer is not None else None
    if loader is not None:
        try:
            predictor = loader(registry, version)
            return _predict(predictor, X, task=task, classes=classes)
        except Exception as exc:  # a champion we cannot run must not block training
            return f"{type(exc).__name__}: {exc}"
    try:
        payload = registry.read_artifact(version.name, version.version, "model.pkl")
    except Exception as exc:
        return f"no loadable model ({type(exc).__name__}: {exc})"
    try:
        # The pickle was written by this installation's own training run into its own store.
        model = pickle.load(io.BytesIO(payload))
        return _predict(model, X, task=task, classes=classes)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _predict(
    model: Any, X: Any, *, task: str, classes: list[Any] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    from loopml.train.crossval import align_proba

    pred = np.asarray(model.predict(X))
    if task == "regression" or not hasattr(model, "predict_proba"):
        return pred, None
    if hasattr(model, "classes_"):
        return pred, align_proba(model, X, classes or [])
    return pred, np.asarray(model.predict_proba(X), dtype=np.float64)
