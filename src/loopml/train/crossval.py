"""Fit and score one model configuration over validation folds: the body of a search trial.

:func:`cross_validate` runs in the search's worker processes, so everything it needs arrives in
a picklable :class:`TrialJob` plus the data installed once per worker by :func:`install_data`.
After each fold it reports the running mean of the primary metric; when the job carries a
pruning context, Optuna's median rule decides whether to stop early — against the trials that
had finished when the job was handed out, so the decision does not depend on timing.

Scores are per fold (mean and spread) when every validation fold has at least two rows; with
smaller folds (leave-one-out) they are computed once on the pooled out-of-fold predictions.
"""

from __future__ import annotations

import pickle
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loopml.train.candidates import build_pipeline
from loopml.train.metrics import evaluate, summarize

__all__ = ["TrialJob", "TrialOutcome", "align_proba", "cross_validate", "install_data"]

_DATA: dict[str, Any] = {}


@dataclass(frozen=True)
class TrialJob:
    """One configuration to score: everything a worker process needs except the data."""

    number: int
    candidate: str
    params: dict[str, Any]
    task: str
    seed: int
    folds: Sequence[tuple[np.ndarray, np.ndarray]]
    primary: str
    direction: str
    transformer: Any
    classes: list[Any] | None = None
    positive_label: Any | None = None
    keep_oof: bool = False
    # Finished trials (Optuna FrozenTrials) for the pruner; None disables pruning.
    prune_against: list[Any] | None = None
    n_startup_trials: int = 3


@dataclass
class TrialOutcome:
    """What a trial measured. ``state`` is COMPLETE, PRUNED or FAIL."""

    number: int
    candidate: str
    params: dict[str, Any]
    state: str
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    intermediate: list[float] = field(default_factory=list)
    fold_primary: list[float] = field(default_factory=list)
    fit_seconds: float = 0.0
    predict_us_per_row: float = 0.0
    model_bytes: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    oof_pred: np.ndarray | None = None
    oof_proba: np.ndarray | None = None
    duplicate_of: int | None = None
    run_id: str | None = None


def install_data(X: Any, y: np.ndarray) -> None:
    """Make the training data available to :func:`cross_validate` in this process."""
    _DATA["X"] = X
    _DATA["y"] = y
    try:  # one BLAS/OpenMP thread per worker: parallelism is across trials
        from threadpoolctl import threadpool_limits

        _DATA["limits"] = threadpool_limits(1)
    except ImportError:  # pragma: no cover - scikit-learn depends on it
        pass


def cross_validate(job: TrialJob) -> TrialOutcome:
    """Fit ``job``'s pipeline on each fold and score it; never raises for a bad model."""
    outcome = TrialOutcome(job.number, job.candidate, dict(job.params), state="COMPLETE")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _run_folds(job, outcome)
        except Exception as exc:  # a trial that fails is recorded, the search goes on
            outcome.state = "FAIL"
            outcome.error = f"{type(exc).__name__}: {exc}"[:2000]
    seen: list[str] = []
    for item in caught:
        text = f"{item.category.__name__}: {item.message}"
        if text not in seen:
            seen.append(text)
    outcome.warnings = seen[:5]
    return outcome


def _run_folds(job: TrialJob, outcome: TrialOutcome) -> None:
    X, y = _DATA["X"], _DATA["y"]
    pooled = min(len(valid) for _, valid in job.folds) < 2
    per_fold: dict[str, list[float]] = {}
    fit_seconds: list[float] = []
    predict_us: list[float] = []
    oof_pred = np.empty(len(y), dtype=y.dtype if job.task != "regression" else np.float64)
    oof_proba = np.zeros((len(y), len(job.classes or ()))) if job.task != "regression" else None
    trial = _pruning_trial(job) if job.prune_against is not None and not pooled else None
    model = None
    for step, (train, valid) in enumerate(job.folds):
        model = build_pipeline(
            job.candidate, job.task, job.params, transformer=job.transformer, seed=job.seed
        )
        x_train, x_valid = _rows(X, train), _rows(X, valid)
        started = time.perf_counter()
        model.fit(x_train, y[train])
        fit_seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        pred = model.predict(x_valid)
        proba = None
        if job.task != "regression":
            proba = align_proba(model, x_valid, job.classes or [])
        predict_us.append((time.perf_counter() - started) * 1e6 / max(1, len(valid)))
        oof_pred[valid] = pred
        if proba is not None and oof_proba is not None:
            oof_proba[valid] = proba
        if pooled:
            continue
        scores = evaluate(
            job.task, y[valid], pred, proba, classes=job.classes, positive_label=job.positive_label
        )
        for name, value in scores.items():
            per_fold.setdefault(name, []).append(value)
        running = float(np.nanmean(per_fold[job.primary]))
        outcome.fold_primary.append(scores[job.primary])
        outcome.intermediate.append(running)
        if trial is not None:
            trial.report(running, step)
            if step + 1 < len(job.folds) and trial.should_prune():
                outcome.state = "PRUNED"
                outcome.value = running
                break
    assert model is not None
    outcome.fit_seconds = float(np.mean(fit_seconds))
    outcome.predict_us_per_row = float(np.mean(predict_us))
    outcome.model_bytes = len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    if pooled:
        scores = evaluate(
            job.task, y, oof_pred, oof_proba, classes=job.classes, positive_label=job.positive_label
        )
        outcome.metrics = {f"{k}_mean": v for k, v in scores.items()}
        outcome.metrics.update({f"{k}_std": float("nan") for k in scores})
        outcome.value = scores[job.primary]
    else:
        outcome.metrics = summarize(per_fold)
        if outcome.state == "COMPLETE":
            outcome.value = outcome.metrics[f"{job.primary}_mean"]
    if outcome.value is not None and not np.isfinite(outcome.value):
        outcome.state = "FAIL"
        outcome.error = f"the primary metric {job.primary} is {outcome.value}"
    if job.keep_oof and outcome.state == "COMPLETE":
        outcome.oof_pred = oof_pred
        outcome.oof_proba = oof_proba


def align_proba(model: Any, X: Any, classes: Sequence[Any]) -> np.ndarray:
    """``predict_proba`` with one column per class of the whole dataset, in ``classes`` order.

    A model fitted on a fold that lacked a class has fewer columns; the missing ones are 0.
    """
    raw = np.asarray(model.predict_proba(X), dtype=np.float64)
    fitted = [c.item() if hasattr(c, "item") else c for c in model.classes_]
    if fitted == list(classes):
        return raw
    out = np.zeros((raw.shape[0], len(classes)))
    position = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(fitted):
        out[:, position[c]] = raw[:, j]
    return out


def _rows(X: Any, index: np.ndarray) -> Any:
    return X.iloc[index] if hasattr(X, "iloc") else X[index]


def _pruning_trial(job: TrialJob) -> Any:
    """A throwaway in-memory Optuna trial that sees only the finished trials it was given."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction=job.direction,  # type: ignore[arg-type]
        pruner=optuna.pruners.MedianPruner(n_startup_trials=job.n_startup_trials),
    )
    study.add_trials(job.prune_against or [])
    return study.ask()
