"""Dates as ONNX graphs take them: int64 seconds since the Unix epoch, in UTC.

ONNX has no date type, so a date column crosses into a model as epoch seconds: when features
are fitted (:class:`~loopml.data.transformers.DateParts`), when a graph is fed for parity
(:func:`loopml.package.feed.frame_to_feed`) and when a transform is checked against its ONNX
form. One function does it for all of them, so they cannot disagree by a time zone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["to_epoch_seconds"]


def to_epoch_seconds(X: Any) -> np.ndarray:
    """A column of dates, datetimes, ISO strings or epoch seconds as int64 epoch seconds.

    ``X`` is a 1-D array-like, a one-column 2-D one, or a pandas Series/DataFrame column.
    Naive datetimes are read as UTC; timezone-aware pandas columns are converted to UTC first.
    Numbers are taken to be epoch seconds already. A missing date (NaT) becomes int64's
    minimum, as NumPy casts it.
    """
    if getattr(X, "ndim", 1) == 2 and hasattr(X, "iloc"):
        X = X.iloc[:, 0]  # a one-column DataFrame, as a ColumnTransformer passes it
    if getattr(getattr(X, "dtype", None), "tz", None) is not None:
        X = X.dt.tz_convert("UTC").dt.tz_localize(None)
    values = np.asarray(X)
    if values.ndim == 2:
        values = values[:, 0]
    if np.issubdtype(values.dtype, np.number):
        return values.astype(np.int64)
    if not np.issubdtype(values.dtype, np.datetime64):
        values = np.asarray(values, dtype="datetime64[s]")
    return values.astype("datetime64[s]").astype(np.int64)
