"""Evaluation charts as matplotlib figures, stored as run artifacts and shown in the report.

Figures are built with ``matplotlib.figure.Figure`` directly, not ``pyplot``: no global
figure registry to leak memory across trials, and no GUI backend to pick on a server.

Regression: predicted vs actual, residuals. Classification: ROC, precision-recall, confusion
matrix, calibration. Both: feature importance.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from loopml.train.evaluation import Evaluation

__all__ = ["evaluation_plots"]

_SIZE = (5.0, 4.0)


def evaluation_plots(
    evaluation: Evaluation, importance: dict[str, Any] | None = None
) -> dict[str, Figure]:
    """``{file name: figure}`` for every chart that applies to the evaluation's task."""
    plots: dict[str, Figure] = {}
    if evaluation.rows == 0:
        return plots
    if evaluation.task == "regression":
        plots["predicted_vs_actual.png"] = _predicted_vs_actual(evaluation)
        plots["residuals.png"] = _residuals(evaluation)
    else:
        if evaluation.proba is not None:
            plots["roc.png"] = _roc(evaluation)
            plots["precision_recall.png"] = _precision_recall(evaluation)
            if evaluation.calibration is not None:
                plots["calibration.png"] = _calibration(evaluation)
        if evaluation.confusion is not None:
            plots["confusion_matrix.png"] = _confusion(evaluation)
    if importance and importance.get("features"):
        plots["feature_importance.png"] = _importance(importance)
    return plots


def _figure() -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=_SIZE, dpi=100, layout="constrained")
    return figure, figure.subplots()


def _predicted_vs_actual(ev: Evaluation) -> Figure:
    figure, ax = _figure()
    y, p = ev.y_true.astype(float), ev.y_pred.astype(float)
    ax.scatter(y, p, s=12, alpha=0.6)
    low, high = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual")
    return figure


def _residuals(ev: Evaluation) -> Figure:
    figure, ax = _figure()
    p = ev.y_pred.astype(float)
    ax.scatter(p, ev.y_true.astype(float) - p, s=12, alpha=0.6)
    ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="predicted", ylabel="actual - predicted", title="Residuals")
    return figure


def _one_vs_rest(ev: Evaluation) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, is-class, score) per curve: the positive class only when binary."""
    classes = list(ev.classes or [])
    assert ev.proba is not None
    if len(classes) == 2:
        from loopml.train.metrics import _positive_index

        k = _positive_index(classes, ev.positive_label)
        return [(str(classes[k]), (ev.y_true == classes[k]).astype(int), ev.proba[:, k])]
    return [(str(c), (ev.y_true == c).astype(int), ev.proba[:, k]) for k, c in enumerate(classes)]


def _roc(ev: Evaluation) -> Figure:
    from sklearn.metrics import roc_curve

    figure, ax = _figure()
    for label, hit, score in _one_vs_rest(ev):
        if 0 < hit.sum() < len(hit):
            fpr, tpr, _ = roc_curve(hit, score)
            ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    auc = ev.metrics.get("roc_auc", float("nan"))
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC (AUC {auc:.3f})")
    ax.legend(loc="lower right", fontsize="small")
    return figure


def _precision_recall(ev: Evaluation) -> Figure:
    from sklearn.metrics import precision_recall_curve

    figure, ax = _figure()
    for label, hit, score in _one_vs_rest(ev):
        if hit.sum() > 0:
            precision, recall, _ = precision_recall_curve(hit, score)
            ax.step(recall, precision, where="post", label=label)
    ap = ev.metrics.get("pr_auc", float("nan"))
    ax.set(
        xlabel="recall",
        ylabel="precision",
        title=f"Precision-recall (AP {ap:.3f})",
        xlim=(0, 1),
        ylim=(0, 1.05),
    )
    ax.legend(loc="lower left", fontsize="small")
    return figure


def _confusion(ev: Evaluation) -> Figure:
    figure, ax = _figure()
    matrix = np.asarray(ev.confusion)
    image = ax.imshow(matrix, cmap="Blues")
    labels = [str(c) for c in ev.classes or []]
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            color="white" if count > threshold else "black",
        )
    ax.set(xlabel="predicted", ylabel="actual", title="Confusion matrix")
    figure.colorbar(image, ax=ax)
    return figure


def _calibration(ev: Evaluation) -> Figure:
    figure, ax = _figure()
    cal = ev.calibration or {}
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    ax.plot(
        cal.get("mean_predicted", []), cal.get("fraction_positive", []), marker="o", label="model"
    )
    what = "positive" if len(ev.classes or []) == 2 else "top-label correct"
    ax.set(
        xlabel="mean predicted probability",
        ylabel=f"fraction {what}",
        title=f"Calibration (ECE {cal.get('ece', float('nan')):.3f})",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper left", fontsize="small")
    return figure


def _importance(importance: dict[str, Any]) -> Figure:
    from matplotlib.figure import Figure

    features = list(importance["features"])[:20][::-1]
    figure = Figure(figsize=(6.0, 0.3 * len(features) + 1.2), dpi=100, layout="constrained")
    ax = figure.subplots()
    ax.barh([name for name, _ in features], [value for _, value in features])
    ax.set(title="Feature importance", xlabel=str(importance.get("method", "importance")))
    return figure
