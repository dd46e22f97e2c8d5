"""loopml's metrics agree with scikit-learn's to 1e-9 on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from loopml.errors import ConfigError
from loopml.train.metrics import (
    calibration,
    classification_metrics,
    confusion_matrix,
    metric_info,
    regression_metrics,
    slice_metrics,
)

TOL = 1e-9


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 200))
def test_regression_metrics_agree_with_sklearn(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n) * rng.choice([1e-3, 1, 1e3])
    p = y + rng.normal(size=n)
    ours = regression_metrics(y, p)
    assert ours["mae"] == pytest.approx(skm.mean_absolute_error(y, p), abs=TOL, rel=TOL)
    assert ours["rmse"] == pytest.approx(skm.root_mean_squared_error(y, p), abs=TOL, rel=TOL)
    assert ours["r2"] == pytest.approx(skm.r2_score(y, p), abs=TOL, rel=TOL)
    assert ours["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, p), abs=TOL, rel=TOL)


def test_r2_of_a_perfect_fit_of_a_constant_target_is_one_like_sklearn() -> None:
    y = np.array([3.0, 3.0, 3.0])
    assert regression_metrics(y, y)["r2"] == skm.r2_score(y, y) == 1.0
    assert regression_metrics(y, y + 1)["r2"] == skm.r2_score(y, y + 1) == 0.0


def test_r2_of_one_row_is_nan_without_a_warning() -> None:
    assert np.isnan(regression_metrics([1.0], [2.0])["r2"])


def _binary_case(rng: np.random.Generator, n: int, ties: bool) -> tuple:
    y = rng.integers(0, 2, size=n)
    y[0], y[1] = 0, 1  # both classes present
    score = rng.random(n)
    if ties:
        score = np.round(score, 1)
    return y, score


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 300), ties=st.booleans())
def test_binary_metrics_agree_with_sklearn(seed: int, n: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    y, score = _binary_case(rng, n, ties)
    pred = (score >= 0.5).astype(int)
    proba = np.column_stack([1 - score, score])
    ours = classification_metrics(y, pred, proba, classes=[0, 1])
    kw = {"zero_division": 0}
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=TOL)
    assert ours["precision"] == pytest.approx(skm.precision_score(y, pred, **kw), abs=TOL)
    assert ours["recall"] == pytest.approx(skm.recall_score(y, pred, **kw), abs=TOL)
    assert ours["f1"] == pytest.approx(skm.f1_score(y, pred, **kw), abs=TOL)
    assert ours["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score), abs=TOL)
    assert ours["pr_auc"] == pytest.approx(skm.average_precision_score(y, score), abs=TOL)
    assert ours["log_loss"] == pytest.approx(skm.log_loss(y, y_proba=proba), abs=TOL)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(6, 300), k=st.integers(3, 6))
def test_multiclass_metrics_agree_with_sklearn(seed: int, n: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    labels = np.array([f"c{i}" for i in range(k)])
    y = labels[rng.integers(0, k, size=n)]
    y[:k] = labels[: min(k, n)]  # every class present
    proba = rng.dirichlet(np.ones(k), size=n)
    pred = labels[np.argmax(proba, axis=1)]
    ours = classification_metrics(y, pred, proba, classes=labels)
    kw = {"average": "macro", "zero_division": 0}
    assert ours["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=TOL)
    assert ours["precision"] == pytest.approx(skm.precision_score(y, pred, **kw), abs=TOL)
    assert ours["recall"] == pytest.approx(skm.recall_score(y, pred, **kw), abs=TOL)
    assert ours["f1"] == pytest.approx(skm.f1_score(y, pred, **kw), abs=TOL)
    assert ours["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels),
        abs=TOL,
    )
    onehot = (y[:, None] == labels[None, :]).astype(int)
    assert ours["pr_auc"] == pytest.approx(
        skm.average_precision_score(onehot, proba, average="macro"), abs=TOL
    )
    assert ours["log_loss"] == pytest.approx(skm.log_loss(y, y_proba=proba, labels=labels), abs=TOL)
    assert np.array_equal(
        confusion_matrix(y, pred, classes=labels), skm.confusion_matrix(y, pred, labels=labels)
    )


def test_calibration_bins_agree_with_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=500)
    score = np.clip(0.6 * y + 0.4 * rng.random(500), 0, 1)
    ours = calibration(y, score, classes=[0, 1])
    true, predicted = calibration_curve(y, score, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(ours["fraction_positive"], true, atol=TOL)
    np.testing.assert_allclose(ours["mean_predicted"], predicted, atol=TOL)
    assert ours["brier"] == pytest.approx(skm.brier_score_loss(y, score), abs=TOL)


def test_string_labels_use_the_named_positive_class() -> None:
    y = np.array(["good", "bad", "bad", "good"])
    pred = np.array(["good", "bad", "good", "good"])
    ours = classification_metrics(y, pred, classes=["bad", "good"], positive_label="bad")
    assert ours["recall"] == pytest.approx(skm.recall_score(y, pred, pos_label="bad"))
    assert ours["precision"] == pytest.approx(skm.precision_score(y, pred, pos_label="bad"))


def test_an_unknown_positive_label_names_the_classes() -> None:
    with pytest.raises(ConfigError, match=r"positive_label 'yes' is not one of the classes"):
        classification_metrics([0, 1], [0, 1], classes=[0, 1], positive_label="yes")


def test_slices_score_each_value_and_mark_undefined_metrics_nan() -> None:
    by = np.array(["a", "a", "b", "b", "b"])
    y = np.array([0, 1, 1, 1, 1])
    score = np.array([0.2, 0.9, 0.8, 0.7, 0.4])
    out = slice_metrics("binary", by, y, (score > 0.5).astype(int), score, classes=[0, 1])
    assert out["a"]["n"] == 2
    assert out["a"]["roc_auc"] == 1.0
    assert np.isnan(out["b"]["roc_auc"])  # one class only in slice b
    assert out["b"]["recall"] == pytest.approx(2 / 3)


def test_an_unknown_metric_lists_the_valid_ones_for_the_task() -> None:
    with pytest.raises(ConfigError, match=r"metric 'auc' is not available for task 'binary'"):
        metric_info("auc", "binary")
    with pytest.raises(ConfigError, match=r"valid metrics: mae, rmse, r2, mape"):
        metric_info("accuracy", "regression")
