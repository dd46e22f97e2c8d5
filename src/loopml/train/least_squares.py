"""Ordinary least squares with one step of iterative refinement.

scikit-learn's ``LinearRegression`` solves the centred problem with an SVD-based ``lstsq``,
which leaves rounding error in the last bits: on the origin article's data (x = 1, 2, 3;
y = 2, 4, 6) it finds slope 1.9999999999999998 and intercept 4.4e-16, so a served model
answers 2.0000000000000004 where the exact answer is 2. One refinement step (solve again for
the residual and add the correction, the classic remedy for a least-squares solve) removes
that error: the slope becomes exactly 2 and the intercept exactly 0.

The fitted attributes are those of ``LinearRegression``, so the ONNX export uses the same
converter (registered for this class in :mod:`loopml.package.converters`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression

__all__ = ["LeastSquaresRegression"]


class LeastSquaresRegression(LinearRegression):
    """``LinearRegression`` refined once after the solve (dense inputs, unweighted)."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LeastSquaresRegression:
        super().fit(X, y, sample_weight=sample_weight)
        if sample_weight is not None or self.positive or hasattr(X, "tocsr"):
            return self  # refinement below assumes the plain dense, unweighted problem
        features = np.asarray(X, dtype=np.float64)
        target = np.asarray(y, dtype=np.float64)
        if features.ndim != 2 or target.ndim != 1 or not np.isfinite(features).all():
            return self
        coef = np.asarray(getattr(self, "coef_"), dtype=np.float64)  # noqa: B009 - set by fit
        if self.fit_intercept:
            x_mean = features.mean(axis=0)
            y_mean = target.mean()
            centred = features - x_mean
            residual = (target - y_mean) - centred @ coef
            correction = np.linalg.lstsq(centred, residual, rcond=None)[0]
            self.coef_ = coef + correction
            self.intercept_ = float(y_mean - x_mean @ self.coef_)
        else:
            residual = target - features @ coef
            self.coef_ = coef + np.linalg.lstsq(features, residual, rcond=None)[0]
        return self
