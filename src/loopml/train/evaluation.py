"""Score a fitted model on held-out rows: metrics, confusion matrix, calibration, slices.

:func:`evaluate_model` predicts and scores; :func:`evaluate_predictions` scores predictions
made elsewhere (the out-of-fold predictions used when a project keeps no test split, or a
champion's predictions on the same rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loopml.train.crossval import align_proba
from loopml.train.metrics import calibration, confusion_matrix, evaluate, slice_metrics

__all__ = ["Evaluation", "evaluate_model", "evaluate_predictions"]


@dataclass
class Evaluation:
    """Predictions on the evaluation rows and everything computed from them."""

    task: str
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None
    classes: list[Any] | None
    positive_label: Any | None
    metrics: dict[str, float]
    source: str  # "test split" or "out-of-fold (no test split)"
    confusion: list[list[int]] | None = None
    calibration: dict[str, Any] | None = None
    slices: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.y_true)

    def summary(self) -> dict[str, Any]:
        """JSON-able: metrics, confusion, calibration, slices."""
        return {
            "source": self.source,
            "rows": self.rows,
            "metrics": self.metrics,
            "classes": None if self.classes is None else [_plain(c) for c in self.classes],
            "confusion_matrix": self.confusion,
            "calibration": self.calibration,
            "slices": self.slices,
        }


def evaluate_model(
    model: Any,
    frame: Any,
    *,
    target: str,
    task: str,
    classes: Sequence[Any] | None = None,
    positive_label: Any | None = None,
    slice_by: Sequence[str] = (),
    source: str = "test split",
) -> Evaluation:
    """Predict ``frame`` with ``model`` and score against ``frame[target]``."""
    y_true = frame[target].to_numpy()
    features = frame.drop(columns=[target])
    y_pred = np.asarray(model.predict(features))
    proba = None
    if task != "regression" and hasattr(model, "predict_proba"):
        proba = align_proba(model, features, list(classes or []))
    return evaluate_predictions(
        task,
        y_true,
        y_pred,
        proba,
        classes=classes,
        positive_label=positive_label,
        slice_frame=frame,
        slice_by=slice_by,
        source=source,
    )


def evaluate_predictions(
    task: str,
    y_true: Any,
    y_pred: Any,
    proba: Any | None = None,
    *,
    classes: Sequence[Any] | None = None,
    positive_label: Any | None = None,
    slice_frame: Any | None = None,
    slice_by: Sequence[str] = (),
    source: str = "test split",
) -> Evaluation:
    """Score given predictions; ``slice_frame[column]`` supplies each slice column."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    proba_array = None if proba is None else np.asarray(proba, dtype=np.float64)
    class_list = None if classes is None else list(classes)
    metrics = evaluate(
        task, y_true, y_pred, proba_array, classes=class_list, positive_label=positive_label
    )
    result = Evaluation(
        task=task,
        y_true=y_true,
        y_pred=y_pred,
        proba=proba_array,
        classes=class_list,
        positive_label=positive_label,
        metrics=metrics,
        source=source,
    )
    if task != "regression" and class_list is not None:
        result.confusion = confusion_matrix(y_true, y_pred, classes=class_list).tolist()
        if proba_array is not None and len(y_true):
            result.calibration = calibration(
                y_true, proba_array, classes=class_list, positive_label=positive_label
            )
    for column in slice_by:
        if slice_frame is None or column not in slice_frame.columns:
            continue
        result.slices[column] = slice_metrics(
            task,
            slice_frame[column].to_numpy(),
            y_true,
            y_pred,
            proba_array,
            classes=class_list,
            positive_label=positive_label,
        )
    return result


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
