"""Where the project pipeline meets packaging: package the winner, predict with a champion.

Packaging (ONNX export, parity check, model card) lives in :mod:`loopml.package`, above
:mod:`loopml.train`; the pipeline sits above both and reaches packaging only through here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from loopml.package import PackagedModel
    from loopml.registry import ModelRegistry
    from loopml.tracking.client import Client

__all__ = ["champion_predictions", "package"]


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
) -> PackagedModel:
    """Export ``model`` to ONNX, check parity on ``X_holdout``, log it under the run's ``model/``.

    :class:`loopml.package.ParityError` or :class:`~loopml.package.PackagingError` propagate
    and fail the run: a model whose served form differs from the trained one is not registered.
    """
    from loopml.package import package_model

    return package_model(
        model,
        X_holdout,
        task=task,
        run_id=run_id,
        metrics=metrics,
        lineage=lineage,
        allow_pickle=allow_pickle,
        client=client,
    )


def champion_predictions(
    registry: ModelRegistry,
    version: Any,
    X: Any,
    *,
    task: str,
    classes: list[Any] | None,
) -> tuple[np.ndarray, np.ndarray | None] | str:
    """The champion's predictions (and class probabilities) for ``X``, or why there are none.

    The champion runs from its ONNX file, the artifact that is actually served. A champion that
    cannot run on these rows (another schema, a missing file) must not block training, so any
    failure comes back as a sentence for the report instead of an exception.
    """
    from loopml.package import load_predictor
    from loopml.train.crossval import align_proba

    try:
        predictor = load_predictor(registry, version)
        pred = np.asarray(predictor.predict(X))
        if task == "regression" or not hasattr(predictor, "predict_proba"):
            return pred, None
        return pred, align_proba(predictor, X, classes or [])
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:300]}"
