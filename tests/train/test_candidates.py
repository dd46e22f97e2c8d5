"""Every candidate is a scikit-learn estimator; linear regression solves least squares exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from loopml.data.features import build_column_transformer
from loopml.errors import ConfigError, NotFittedError
from loopml.train.candidates import CANDIDATES, build_estimator, build_pipeline


def test_the_articles_data_gives_slope_two_and_intercept_zero() -> None:
    # x = 1, 2, 3 and y = 2, 4, 6 lie on y = 2x. The origin article's slope 2/3 and
    # intercept 4/3 come from forgetting to divide by sum((x - mean_x)^2).
    model = build_estimator("linear_regression", "regression", {}, seed=0)
    model.fit(np.array([[1.0], [2.0], [3.0]]), np.array([2.0, 4.0, 6.0]))
    # Exactly, not approximately: a served model must answer 2.0, not 2.0000000000000004.
    assert model.coef_[0] == 2.0
    assert model.intercept_ == 0.0
    assert model.predict([[1.0], [2.0], [3.0]]).tolist() == [2.0, 4.0, 6.0]


def test_the_refinement_step_never_moves_away_from_scikit_learns_solution() -> None:
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(7)
    features = rng.normal(size=(300, 6))
    target = features @ rng.normal(size=6) + rng.normal(size=300)
    ours = build_estimator("linear_regression", "regression", {}, seed=0).fit(features, target)
    reference = LinearRegression().fit(features, target)
    np.testing.assert_allclose(ours.coef_, reference.coef_, rtol=1e-10)
    assert ours.intercept_ == pytest.approx(reference.intercept_, rel=1e-10)


def test_linear_regression_matches_the_closed_form_on_random_data() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=50)
    y = 3.0 - 1.5 * x + rng.normal(scale=0.1, size=50)
    slope = np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2)
    intercept = y.mean() - slope * x.mean()
    model = build_estimator("linear_regression", "regression", {}, seed=0).fit(x[:, None], y)
    assert model.coef_[0] == pytest.approx(slope, rel=1e-12)
    assert model.intercept_ == pytest.approx(intercept, rel=1e-12)


def _frame(task: str, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    a = rng.normal(size=n)
    b = rng.choice(["u", "v"], n)
    if task == "regression":
        y = 2 * a + (b == "u")
    elif task == "binary":
        y = (a > 0).astype(int)
    else:
        y = np.digitize(a, [-0.5, 0.5])
    return pd.DataFrame({"a": a, "b": b, "y": y})


@pytest.mark.parametrize(
    ("name", "task"),
    [(name, task) for name, c in CANDIDATES.items() for task in sorted(c.tasks)],
)
def test_every_candidate_fits_in_a_pipeline_with_the_feature_transform(
    name: str, task: str
) -> None:
    frame = _frame(task)
    transformer = build_column_transformer(
        [{"column": "a", "transform": "standardize"}, {"column": "b", "transform": "onehot"}]
    )
    params = {"epochs": 5} if name == "mlp" else {}
    pipeline = build_pipeline(name, task, params, transformer=transformer, seed=0)
    pipeline.fit(frame[["a", "b"]], frame["y"])
    predictions = pipeline.predict(frame[["a", "b"]])
    assert predictions.shape == (len(frame),)
    if task != "regression":
        proba = pipeline.predict_proba(frame[["a", "b"]])
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    clone(pipeline)  # hyperparameters round-trip through get_params


def test_an_unknown_candidate_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown candidate 'xgboost'.*ridge"):
        build_estimator("xgboost", "regression", {}, seed=0)


def test_a_candidate_used_for_the_wrong_task_names_its_tasks() -> None:
    with pytest.raises(ConfigError, match=r"'logistic_regression' does not handle task"):
        build_estimator("logistic_regression", "regression", {}, seed=0)


def test_an_unknown_hyperparameter_is_a_config_error_naming_the_candidate() -> None:
    with pytest.raises(ConfigError, match=r"candidate 'ridge' rejected its parameters"):
        build_estimator("ridge", "regression", {"alpah": 1.0}, seed=0)


def test_the_torch_mlp_follows_the_estimator_contract() -> None:
    from loopml.train.torch_mlp import TorchMLPClassifier, TorchMLPRegressor

    model = TorchMLPRegressor(hidden_units=8, epochs=3, random_state=3)
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(NotFittedError, match=r"not fitted yet"):
        model.predict(np.zeros((2, 2)))
    X = np.random.default_rng(0).normal(size=(40, 2))
    y = X @ np.array([1.0, -2.0])
    first = TorchMLPRegressor(epochs=5, random_state=3).fit(X, y).predict(X)
    second = TorchMLPRegressor(epochs=5, random_state=3).fit(X, y).predict(X)
    np.testing.assert_array_equal(first, second)  # same seed, same network
    labels = np.where(X[:, 0] > 0, "yes", "no")
    classifier = TorchMLPClassifier(epochs=30, random_state=0).fit(X, labels)
    assert list(classifier.classes_) == ["no", "yes"]
    assert classifier.score(X, labels) > 0.9


def test_the_torch_mlp_learns_a_linear_target() -> None:
    from loopml.train.torch_mlp import TorchMLPRegressor

    X = np.random.default_rng(1).normal(size=(200, 3))
    y = X @ np.array([3.0, -1.0, 0.5]) + 10.0
    model = TorchMLPRegressor(epochs=60, learning_rate=1e-2, random_state=0).fit(X, y)
    assert model.score(X, y) > 0.95
