"""Evaluation metrics, computed with numpy and checked against scikit-learn to 1e-9.

Why not call ``sklearn.metrics`` directly: each call re-validates its inputs (milliseconds per
call, paid per fold per trial per metric), warns rather than answers on degenerate inputs
(a one-class fold, a one-row fold) — and warnings are errors in a strict test suite — and
multiclass averaging differs from metric to metric. Here every metric takes the same inputs,
an undefined value is ``nan`` without a warning, and the definitions are those of
scikit-learn (``tests/train/test_metrics.py`` compares them on random inputs):

- regression: ``mae``, ``rmse``, ``r2`` (1.0 for a perfect fit of a constant target, like
  scikit-learn's ``force_finite``), ``mape`` (denominator ``max(|y|, eps)``);
- classification: ``accuracy``; ``precision``, ``recall``, ``f1`` for the positive class in a
  binary task and macro-averaged in a multiclass one (0 when undefined, scikit-learn's
  ``zero_division=0``); ``roc_auc`` (multiclass: one-vs-rest, macro); ``pr_auc`` (average
  precision; multiclass: macro over classes); ``log_loss`` (probabilities clipped to
  ``[eps, 1 - eps]``); the confusion matrix; calibration bins, Brier score and expected
  calibration error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loopml.errors import ConfigError, InvalidInputError

__all__ = [
    "METRICS",
    "MetricInfo",
    "calibration",
    "classification_metrics",
    "confusion_matrix",
    "evaluate",
    "metric_info",
    "metrics_for_task",
    "regression_metrics",
    "slice_metrics",
]


@dataclass(frozen=True)
class MetricInfo:
    """What a metric measures and which way is better."""

    name: str
    tasks: frozenset[str]
    greater_is_better: bool
    needs_proba: bool = False

    @property
    def direction(self) -> str:
        """Optuna's word for it: ``maximize`` or ``minimize``."""
        return "maximize" if self.greater_is_better else "minimize"


_R = frozenset({"regression"})
_C = frozenset({"binary", "multiclass"})
METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo("mae", _R, False),
        MetricInfo("rmse", _R, False),
        MetricInfo("r2", _R, True),
        MetricInfo("mape", _R, False),
        MetricInfo("accuracy", _C, True),
        MetricInfo("precision", _C, True),
        MetricInfo("recall", _C, True),
        MetricInfo("f1", _C, True),
        MetricInfo("roc_auc", _C, True, needs_proba=True),
        MetricInfo("pr_auc", _C, True, needs_proba=True),
        MetricInfo("log_loss", _C, False, needs_proba=True),
    )
}


def metrics_for_task(task: str) -> list[str]:
    """Names of the scalar metrics computed for ``task``."""
    return [name for name, info in METRICS.items() if task in info.tasks]


def metric_info(name: str, task: str | None = None) -> MetricInfo:
    """The :class:`MetricInfo` of ``name``; :class:`ConfigError` lists the valid names."""
    info = METRICS.get(name)
    valid = metrics_for_task(task) if task else list(METRICS)
    if info is None or (task is not None and task not in info.tasks):
        raise ConfigError(
            f"metric {name!r} is not available" + (f" for task {task!r}" if task else ""),
            hint=f"valid metrics: {', '.join(valid)}",
        )
    return info


# --- regression -----------------------------------------------------------------------------


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """MAE, RMSE, R² and MAPE of ``y_pred`` against ``y_true``."""
    y = _vector(y_true, "y_true")
    p = _vector(y_pred, "y_pred")
    _same_length(y, p)
    error = p - y
    n = len(y)
    if n == 0:
        return {"mae": np.nan, "rmse": np.nan, "r2": np.nan, "mape": np.nan}
    eps = np.finfo(np.float64).eps
    ss_res = float(np.sum(error**2))
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(ss_res / n)),
        "r2": _r2(y, ss_res),
        "mape": float(np.mean(np.abs(error) / np.maximum(np.abs(y), eps))),
    }


def _r2(y: np.ndarray, ss_res: float) -> float:
    if len(y) < 2:
        return float("nan")
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


# --- classification -------------------------------------------------------------------------


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    proba: Any | None = None,
    *,
    classes: Sequence[Any],
    positive_label: Any | None = None,
) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and (with ``proba``) ROC-AUC, PR-AUC and log loss.

    ``classes`` orders the columns of ``proba`` (a classifier's ``classes_``). A binary task
    (two classes) scores the ``positive_label`` (default: the second class); more classes
    are macro-averaged.
    """
    classes = list(classes)
    y = np.asarray(y_true)
    _same_length(y, np.asarray(y_pred))
    matrix = confusion_matrix(y, y_pred, classes=classes)
    total = matrix.sum()
    out: dict[str, float] = {
        "accuracy": float(np.trace(matrix) / total) if total else np.nan,
    }
    tp = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    actual = matrix.sum(axis=1).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros_like(tp), where=denominator > 0
    )
    if len(classes) == 2:
        pos = _positive_index(classes, positive_label)
        out.update(precision=float(precision[pos]), recall=float(recall[pos]), f1=float(f1[pos]))
    else:
        out.update(
            precision=float(precision.mean()), recall=float(recall.mean()), f1=float(f1.mean())
        )
    if proba is not None:
        p = _proba_matrix(proba, len(classes), len(y))
        onehot = (y[:, None] == np.asarray(classes, dtype=object)[None, :]).astype(np.float64)
        if len(classes) == 2:
            pos = _positive_index(classes, positive_label)
            out["roc_auc"] = _binary_roc_auc(onehot[:, pos], p[:, pos])
            out["pr_auc"] = _average_precision(onehot[:, pos], p[:, pos])
        else:
            out["roc_auc"] = _mean_or_nan(
                [_binary_roc_auc(onehot[:, k], p[:, k]) for k in range(len(classes))]
            )
            out["pr_auc"] = _mean_or_nan(
                [_average_precision(onehot[:, k], p[:, k]) for k in range(len(classes))]
            )
        out["log_loss"] = _log_loss(onehot, p)
    return out


def confusion_matrix(y_true: Any, y_pred: Any, *, classes: Sequence[Any]) -> np.ndarray:
    """Counts ``[i, j]`` of rows of true class ``classes[i]`` predicted as ``classes[j]``."""
    index = {c: i for i, c in enumerate(_py(classes))}
    k = len(index)
    true_idx = np.array([index.get(v, -1) for v in _py(y_true)], dtype=np.int64)
    pred_idx = np.array([index.get(v, -1) for v in _py(y_pred)], dtype=np.int64)
    keep = (true_idx >= 0) & (pred_idx >= 0)
    flat = np.bincount(true_idx[keep] * k + pred_idx[keep], minlength=k * k)
    return flat.reshape(k, k)


def calibration(
    y_true: Any,
    proba: Any,
    *,
    classes: Sequence[Any],
    positive_label: Any | None = None,
    n_bins: int = 10,
) -> dict[str, Any]:
    """Reliability bins (uniform on [0, 1]), Brier score and expected calibration error.

    Binary: the positive class's probability against its frequency (scikit-learn's
    ``calibration_curve`` with ``strategy="uniform"``). Multiclass: the top-label confidence
    against accuracy. Empty bins are left out.
    """
    classes = list(classes)
    y = np.asarray(y_true)
    p = _proba_matrix(proba, len(classes), len(y))
    if len(classes) == 2:
        pos = _positive_index(classes, positive_label)
        score = p[:, pos]
        hit = (y == classes[pos]).astype(np.float64)
        brier = float(np.mean((score - hit) ** 2)) if len(y) else np.nan
    else:
        top = np.argmax(p, axis=1)
        score = p[np.arange(len(y)), top]
        hit = (y == np.asarray(classes, dtype=object)[top]).astype(np.float64)
        onehot = (y[:, None] == np.asarray(classes, dtype=object)[None, :]).astype(np.float64)
        brier = float(np.mean(np.sum((p - onehot) ** 2, axis=1))) if len(y) else np.nan
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Same binning as sklearn.calibration.calibration_curve (uniform strategy).
    which = np.searchsorted(edges[1:-1], score, side="right")
    counts = np.bincount(which, minlength=n_bins)
    sum_score = np.bincount(which, weights=score, minlength=n_bins)
    sum_hit = np.bincount(which, weights=hit, minlength=n_bins)
    nonzero = counts > 0
    mean_predicted = sum_score[nonzero] / counts[nonzero]
    fraction_positive = sum_hit[nonzero] / counts[nonzero]
    ece = (
        float(np.sum(counts[nonzero] * np.abs(mean_predicted - fraction_positive)) / len(y))
        if len(y)
        else np.nan
    )
    return {
        "mean_predicted": mean_predicted.tolist(),
        "fraction_positive": fraction_positive.tolist(),
        "count": counts[nonzero].tolist(),
        "brier": brier,
        "ece": ece,
    }


def _binary_roc_auc(hit: np.ndarray, score: np.ndarray) -> float:
    from scipy.stats import rankdata

    n_pos = float(hit.sum())
    n_neg = float(len(hit) - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)  # average ranks for ties: the Mann-Whitney statistic
    return float((ranks[hit == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_precision(hit: np.ndarray, score: np.ndarray) -> float:
    n_pos = hit.sum()
    if n_pos == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")[::-1]
    score, hit = score[order], hit[order]
    # The last index of each run of equal scores is one threshold of the curve.
    last = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    tps = np.cumsum(hit)[last]
    fps = (last + 1) - tps
    precision = tps / (tps + fps)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _log_loss(onehot: np.ndarray, p: np.ndarray) -> float:
    if len(p) == 0:
        return float("nan")
    eps = np.finfo(p.dtype).eps
    clipped = np.clip(p, eps, 1 - eps)
    return float(np.mean(-np.sum(onehot * np.log(clipped), axis=1)))


# --- the whole set, and slices ---------------------------------------------------------------


def evaluate(
    task: str,
    y_true: Any,
    y_pred: Any,
    proba: Any | None = None,
    *,
    classes: Sequence[Any] | None = None,
    positive_label: Any | None = None,
) -> dict[str, float]:
    """Every scalar metric of ``task`` (see :func:`metrics_for_task`)."""
    if task == "regression":
        return regression_metrics(y_true, y_pred)
    if classes is None:
        raise InvalidInputError("classification metrics need the list of classes")
    return classification_metrics(
        y_true, y_pred, proba, classes=classes, positive_label=positive_label
    )


def slice_metrics(
    task: str,
    by: Any,
    y_true: Any,
    y_pred: Any,
    proba: Any | None = None,
    *,
    classes: Sequence[Any] | None = None,
    positive_label: Any | None = None,
    max_slices: int = 50,
) -> dict[str, dict[str, float]]:
    """:func:`evaluate` per value of the categorical array ``by`` (plus the row count ``n``).

    Only the ``max_slices`` most frequent values are kept, so that a column with a value per
    row does not produce a report per row. Metrics a slice cannot define (ROC-AUC on a slice
    with one class, R² on one row) are ``nan``.
    """
    keys = np.asarray(by, dtype=object)
    y = np.asarray(y_true)
    pred = np.asarray(y_pred)
    p = None if proba is None else np.asarray(proba)
    values, counts = np.unique(keys.astype(str), return_counts=True)
    order = np.argsort(-counts, kind="mergesort")[:max_slices]
    out: dict[str, dict[str, float]] = {}
    as_text = keys.astype(str)
    for value in values[order]:
        mask = as_text == value
        scores = evaluate(
            task,
            y[mask],
            pred[mask],
            None if p is None else p[mask],
            classes=classes,
            positive_label=positive_label,
        )
        out[str(value)] = {"n": float(mask.sum()), **scores}
    return out


# --- input checks ----------------------------------------------------------------------------


def _vector(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be numeric: {exc}") from None
    return array


def _same_length(a: np.ndarray, b: np.ndarray) -> None:
    if len(a) != len(b):
        raise InvalidInputError(f"y_true has {len(a)} values but the predictions have {len(b)}")


def _proba_matrix(proba: Any, n_classes: int, n_rows: int) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1 and n_classes == 2:
        p = np.column_stack([1 - p, p])
    if p.shape != (n_rows, n_classes):
        raise InvalidInputError(
            f"probabilities have shape {p.shape}; expected ({n_rows}, {n_classes})"
        )
    return p


def _positive_index(classes: Sequence[Any], positive_label: Any | None) -> int:
    if positive_label is None:
        return 1
    for i, c in enumerate(_py(classes)):
        if c == positive_label or str(c) == str(positive_label):
            return i
    raise ConfigError(
        f"positive_label {positive_label!r} is not one of the classes {list(_py(classes))}",
        hint="set positive_label to one of the target's values",
    )


def _mean_or_nan(values: Sequence[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if len(finite) == len(values) and values else float("nan")


def _py(values: Any) -> list[Any]:
    """Plain Python scalars, so that numpy 1 and the string 1 do not hash apart by type."""
    return [v.item() if hasattr(v, "item") else v for v in np.asarray(values, dtype=object)]


def summarize(values: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """``{name_mean, name_std}`` over folds for each metric (population std, nan-aware)."""
    out: dict[str, float] = {}
    for name, series in values.items():
        array = np.asarray(series, dtype=np.float64)
        finite = array[~np.isnan(array)]
        out[f"{name}_mean"] = float(finite.mean()) if len(finite) else float("nan")
        out[f"{name}_std"] = float(finite.std()) if len(finite) else float("nan")
    return out
