"""Which inputs a fitted model leans on, for the report's feature-importance chart.

The model's own measure when it has one (impurity importance of trees and forests, the size
of linear coefficients on the transformed features); otherwise permutation importance on at
most ``max_rows`` evaluation rows, so the cost stays bounded on large test splits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["feature_importance"]


def feature_importance(
    model: Any,
    frame: Any,
    *,
    target: str,
    seed: int = 0,
    max_rows: int = 1000,
    top: int = 25,
) -> dict[str, Any]:
    """``{"method": ..., "features": [(name, value), ...]}``, largest first (``top`` kept)."""
    estimator = model[-1] if hasattr(model, "steps") else model
    names = _feature_names(model)
    values: np.ndarray | None = None
    method = ""
    if hasattr(estimator, "feature_importances_"):
        values = np.asarray(estimator.feature_importances_, dtype=np.float64)
        method = "impurity"
    elif hasattr(estimator, "coef_"):
        coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
        values = np.abs(coef).mean(axis=0)
        method = "|coefficient| on transformed features"
    if values is None or names is None or len(names) != len(values):
        return _permutation(model, frame, target=target, seed=seed, max_rows=max_rows, top=top)
    order = np.argsort(-values, kind="mergesort")[:top]
    return {"method": method, "features": [(str(names[i]), float(values[i])) for i in order]}


def _feature_names(model: Any) -> list[str] | None:
    if not hasattr(model, "steps") or len(model.steps) < 2:
        return None
    try:
        return [str(n) for n in model[:-1].get_feature_names_out()]
    except Exception:  # a transformer without names: fall back to permutation importance
        return None


def _permutation(
    model: Any, frame: Any, *, target: str, seed: int, max_rows: int, top: int
) -> dict[str, Any]:
    import warnings

    from sklearn.inspection import permutation_importance

    sample = frame.sample(n=min(max_rows, len(frame)), random_state=seed) if len(frame) else frame
    if len(sample) < 2:
        return {"method": "none (too few rows)", "features": []}
    X = sample.drop(columns=[target])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined scores on tiny samples are not news here
        result = permutation_importance(
            model, X, sample[target].to_numpy(), n_repeats=3, random_state=seed
        )
    values = np.nan_to_num(result.importances_mean)
    order = np.argsort(-values, kind="mergesort")[:top]
    return {
        "method": "permutation (score drop)",
        "features": [(str(X.columns[i]), float(values[i])) for i in order],
    }
