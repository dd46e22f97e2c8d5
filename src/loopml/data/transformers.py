"""scikit-learn transformers that the stock library lacks in an ONNX-exportable form.

``FunctionTransformer(np.log1p)`` cannot be exported by skl2onnx, and no stock transformer
splits dates or bins at explicit edges, so these three are small estimators with converters
registered in :mod:`loopml.data.features_onnx` (the only ones: they compute in the precision
of the graph's input, so a double input matches these methods to the last bits). They follow
the scikit-learn contract: ``__init__`` stores parameters, ``fit`` returns ``self``, learned
state ends in ``_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from loopml.data.dates import to_epoch_seconds

__all__ = ["DATE_PARTS", "Bucketizer", "DateParts", "Log1p"]

DATE_PARTS = ("year", "month", "day", "dayofweek", "hour")


class Log1p(TransformerMixin, BaseEstimator):
    """``log(1 + x)``; values below -1 become NaN as in numpy."""

    def fit(self, X: Any, y: Any = None) -> Log1p:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log1p(np.asarray(X, dtype=np.float64))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(input_features if input_features is not None else ["x0"], dtype=object)


class Bucketizer(TransformerMixin, BaseEstimator):
    """Bucket index of each value: the number of edges ``<=`` it (``np.digitize``).

    ``bins`` is a list of edges, or a count: edges are then learned at ``fit`` from the
    quantiles (``strategy='quantile'``) or an even split of [min, max] (``'uniform'``).
    """

    def __init__(self, bins: int | list[float] = 5, strategy: str = "quantile") -> None:
        self.bins = bins
        self.strategy = strategy

    def fit(self, X: Any, y: Any = None) -> Bucketizer:
        values = np.asarray(X, dtype=np.float64).ravel()
        if isinstance(self.bins, int):
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                edges = np.array([], dtype=np.float64)
            elif self.strategy == "uniform":
                edges = np.linspace(finite.min(), finite.max(), self.bins + 1)[1:-1]
            else:
                edges = np.quantile(finite, np.linspace(0, 1, self.bins + 1)[1:-1])
            self.edges_ = np.unique(edges)
        else:
            self.edges_ = np.asarray(sorted(self.bins), dtype=np.float64)
        self.n_features_in_ = 1
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "edges_")
        values = np.asarray(X, dtype=np.float64)
        return (values[..., None] >= self.edges_).sum(axis=-1).astype(np.float64)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        name = input_features[0] if input_features is not None else "x0"
        return np.asarray([f"{name}_bucket"], dtype=object)


class DateParts(TransformerMixin, BaseEstimator):
    """Calendar parts of a date/time column: year, month, day, dayofweek (Monday=0), hour.

    Accepts datetime64 values, ISO strings, or numbers as seconds since the Unix epoch (the
    form the ONNX graph takes: serving converts timestamps to epoch seconds).
    """

    def __init__(self, parts: tuple[str, ...] | list[str] = ("year", "month", "day", "dayofweek")):
        self.parts = parts

    def fit(self, X: Any, y: Any = None) -> DateParts:
        unknown = set(self.parts) - set(DATE_PARTS)
        if unknown:
            raise ValueError(f"unknown date parts {sorted(unknown)}; valid: {list(DATE_PARTS)}")
        self.n_features_in_ = 1
        self.parts_ = tuple(self.parts)
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "parts_")
        seconds = to_epoch_seconds(X)
        days = np.floor_divide(seconds, 86_400)
        z = days + 719_468
        era = np.floor_divide(z, 146_097)
        doe = z - era * 146_097
        yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
        doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
        mp = (5 * doy + 2) // 153
        day = doy - (153 * mp + 2) // 5 + 1
        month = np.where(mp < 10, mp + 3, mp - 9)
        year = yoe + era * 400 + (month <= 2)
        values = {
            "year": year,
            "month": month,
            "day": day,
            "dayofweek": np.mod(days + 3, 7),
            "hour": np.mod(seconds, 86_400) // 3600,
        }
        return np.column_stack([values[p] for p in self.parts_]).astype(np.float64)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        name = input_features[0] if input_features is not None else "x0"
        return np.asarray([f"{name}_{p}" for p in self.parts], dtype=object)
