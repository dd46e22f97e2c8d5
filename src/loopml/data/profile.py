"""Per-column profiles, computed once per version and stored with it.

Numeric columns get count, nulls, min/max/mean/std, quantiles, and a histogram whose bin
edges are stored: the drift monitor bins live data with :func:`bin_counts` on the *same*
edges, so reference and live histograms compare bin for bin. Text and boolean columns get the
top-k values with counts (and how many rows fall outside the top k).

Columns are profiled one at a time from the stored Parquet files, so memory stays at about one
column of the version however many rows it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.data.contract import column_type

if TYPE_CHECKING:
    import polars as pl

__all__ = ["BINS", "QUANTILES", "TOP_K", "bin_counts", "profile_frame", "profile_lazy"]

BINS = 20
TOP_K = 20
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def bin_counts(values: Any, edges: Sequence[float]) -> list[int]:
    """Counts of ``values`` in the bins between ``edges`` (``len(edges) - 1`` bins).

    Values below the first edge count in the first bin and values above the last edge in the
    last bin, so live data outside the reference range is still counted; nulls and NaN are
    left out. Used both when profiling and by the drift monitor.
    """
    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[np.isfinite(array)]
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    index = np.searchsorted(inner, array, side="right")
    counts: list[int] = np.bincount(index, minlength=len(edges) - 1).astype(int).tolist()
    return counts


def profile_frame(frame: pl.DataFrame) -> dict[str, Any]:
    """Profile an in-memory frame (see :func:`profile_lazy`)."""
    return profile_lazy(frame.lazy(), rows=frame.height)


def profile_lazy(lazy: pl.LazyFrame, *, rows: int | None = None) -> dict[str, Any]:
    """Profile every column of ``lazy``, reading one column at a time."""
    import polars as pl

    schema = lazy.collect_schema()
    if rows is None:
        rows = int(lazy.select(pl.len()).collect().item())
    columns: dict[str, Any] = {}
    for name, dtype in schema.items():
        series = lazy.select(pl.col(name)).collect().get_column(name)
        columns[name] = _profile_column(series, dtype)
    return {"rows": rows, "columns": columns}


def _profile_column(series: pl.Series, dtype: pl.DataType) -> dict[str, Any]:
    import polars as pl

    kind = column_type(dtype)
    nulls = series.null_count()
    if dtype.is_float():
        nulls += int(series.is_nan().sum() or 0)
        series = series.fill_nan(None)
    out: dict[str, Any] = {"type": kind or str(dtype), "count": len(series), "nulls": nulls}
    if kind in ("integer", "float"):
        values = series.drop_nulls().cast(pl.Float64).to_numpy()
        if values.size == 0:
            return out
        low, high = float(values.min()), float(values.max())
        # One numpy partition pass for all quantiles (polars sorts once per quantile).
        quantiles = np.quantile(values, QUANTILES)
        out.update(
            min=low,
            max=high,
            mean=float(values.mean()),
            std=float(values.std(ddof=1)) if values.size > 1 else 0.0,
            quantiles={str(q): float(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
        )
        edges = np.linspace(low, high, BINS + 1) if high > low else np.array([low - 0.5, low + 0.5])
        out["histogram"] = {
            "edges": [float(e) for e in edges],
            "counts": bin_counts(values, edges.tolist()),
        }
        return out
    if kind in ("date", "datetime"):
        present = series.drop_nulls()
        if len(present):
            out.update(min=str(present.min()), max=str(present.max()))
        return out
    if kind in ("string", "boolean"):
        text = series.drop_nulls().cast(pl.String)
        counts = text.value_counts(sort=True, name="count")
        top = counts.head(TOP_K)
        out["distinct"] = counts.height
        out["top"] = [{"value": v, "count": int(c)} for v, c in top.iter_rows()]
        out["other"] = int(len(text) - int(top["count"].sum() or 0))
    return out
