"""ONNX export of whole pipelines: every training candidate, every feature transform."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
)
from sklearn.svm import LinearSVC

from loopml.errors import InvalidInputError
from loopml.package import PackagingError, check_parity, export_onnx, frame_to_feed
from loopml.train.candidates import CANDIDATES

CASES = [
    pytest.param(name, task, id=f"{name}-{task}")
    for name, candidate in CANDIDATES.items()
    if name != "mlp"  # torch: see test_torch_export.py
    for task in sorted(candidate.tasks)
]


@pytest.mark.parametrize(("name", "task"), CASES)
def test_every_candidate_exports_with_its_feature_transform_and_matches_natively(
    name: str, task: str, fit_candidate: Callable[..., Any], holdout_frame: pd.DataFrame
) -> None:
    model = fit_candidate(name, task)
    exported = export_onnx(model, holdout_frame, task=task)

    report = check_parity(model, exported.onnx_bytes, holdout_frame, task=task)

    assert report.passed
    assert report.rows == len(holdout_frame)
    expected = {"variable"} if task == "regression" else {"label", "probabilities"}
    assert {o.output for o in report.outputs} == expected
    assert exported.signature.input_names == tuple(holdout_frame.columns)


def test_inputs_keep_each_column_type(
    fit_candidate: Callable[..., Any], holdout_frame: pd.DataFrame
) -> None:
    exported = export_onnx(fit_candidate("ridge", "regression"), holdout_frame, task="regression")

    session = ort.InferenceSession(exported.onnx_bytes)
    types = {arg.name: (arg.type, arg.shape[1]) for arg in session.get_inputs()}
    assert types == {
        "age": ("tensor(int64)", 1),
        "income": ("tensor(double)", 1),
        "city": ("tensor(string)", 1),
        "size": ("tensor(string)", 1),
        "score": ("tensor(double)", 1),
        "tenure": ("tensor(double)", 1),
        "member": ("tensor(bool)", 1),
    }
    dtypes = {spec.name: spec.dtype for spec in exported.signature.inputs}
    assert dtypes["age"] == "int64"
    assert dtypes["member"] == "bool"
    assert exported.signature.input_layout == "columns"


def test_classifier_outputs_are_plain_tensors_without_zipmap(
    fit_candidate: Callable[..., Any], holdout_frame: pd.DataFrame
) -> None:
    exported = export_onnx(
        fit_candidate("logistic_regression", "multiclass"), holdout_frame, task="multiclass"
    )

    session = ort.InferenceSession(exported.onnx_bytes)
    outputs = {arg.name: (arg.type, arg.shape) for arg in session.get_outputs()}
    assert outputs["label"][0] == "tensor(int64)"
    assert outputs["probabilities"][0] == "tensor(double)"
    assert outputs["probabilities"][1][1] == 3
    assert exported.signature.classes == (0, 1, 2)
    assert exported.signature.task == "multiclass"


def test_string_classes_come_back_as_string_labels(
    fit_candidate: Callable[..., Any], holdout_frame: pd.DataFrame
) -> None:
    model = fit_candidate("random_forest", "binary")
    exported = export_onnx(model, holdout_frame, task="binary")

    session = ort.InferenceSession(exported.onnx_bytes)
    labels, _ = session.run(None, frame_to_feed(exported.signature, holdout_frame))
    assert set(labels.tolist()) <= {"approved", "declined"}
    assert labels.tolist() == model.predict(holdout_frame).tolist()
    assert exported.signature.classes == ("approved", "declined")


def test_the_articles_linear_regression_predicts_2_4_6() -> None:
    x = pd.DataFrame({"x": [1, 2, 3]})
    model = LinearRegression().fit(x, [2, 4, 6])

    exported = export_onnx(model, x, task="regression")
    session = ort.InferenceSession(exported.onnx_bytes)
    (predictions,) = session.run(None, {"x": np.array([[1], [2], [3]], dtype=np.int64)})

    assert predictions.ravel().tolist() == pytest.approx([2.0, 4.0, 6.0], abs=1e-12)
    assert exported.signature.input_names == ("x",)


def test_a_plain_array_model_gets_one_tensor_input() -> None:
    X = np.array([[1.0, 0.5], [2.0, 0.1], [3.0, 0.7], [4.0, 0.2]])
    model = LinearRegression().fit(X, X @ [2.0, 1.0])

    exported = export_onnx(model, X, task="regression")

    assert exported.signature.input_layout == "tensor"
    assert exported.signature.inputs[0].shape == (-1, 2)
    assert check_parity(model, exported.onnx_bytes, X, task="regression").passed


def test_columns_a_column_transformer_drops_are_not_inputs() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "note": ["x", "y", "z", "w"]})
    transform = ColumnTransformer([("a", StandardScaler(), ["a"])], remainder="drop")
    model = Pipeline([("features", transform), ("model", LinearRegression())])
    model.fit(frame, [1.0, 2.0, 3.0, 5.0])

    exported = export_onnx(model, frame, task="regression")

    assert exported.signature.input_names == ("a",)


def test_scikit_learn_transforms_match_in_double_precision() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=200),
            "b": rng.lognormal(size=200),
            "c": rng.choice(["u", "v", "w"], 200),
            "d": rng.uniform(0, 10, 200),
        }
    )
    frame.loc[::7, "a"] = np.nan
    transform = ColumnTransformer(
        [
            ("a", Pipeline([("fill", SimpleImputer()), ("scale", StandardScaler())]), ["a"]),
            ("b", FunctionTransformer(np.log1p), ["b"]),
            ("c_hot", OneHotEncoder(handle_unknown="ignore"), ["c"]),
            ("c_ord", OrdinalEncoder(), ["c"]),
            ("d_ord", KBinsDiscretizer(n_bins=4, encode="ordinal", strategy="uniform"), ["d"]),
            ("d_hot", KBinsDiscretizer(n_bins=3, encode="onehot", strategy="uniform"), ["d"]),
        ]
    )
    model = Pipeline([("features", transform), ("model", LinearRegression())])
    model.fit(frame, rng.normal(size=200))

    exported = export_onnx(model, frame, task="regression")
    report = check_parity(model, exported.onnx_bytes, frame, task="regression", rtol=0, atol=1e-9)

    assert report.passed, report.to_dict()


def test_loopml_feature_transforms_match_in_double_precision() -> None:
    """Log1p and Bucketizer go through the data layer's converters, in double: values just
    beside a bucket edge stay on their side, and float32 would move these predictions."""
    from loopml.data.features import build_column_transformer

    rng = np.random.default_rng(0)
    edges = [0.1, 1 / 3, 2.5]
    near = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    frame = pd.DataFrame(
        {
            "income": rng.lognormal(10, 0.6, 200) + 1e-7,
            "score": np.concatenate([near, rng.uniform(0, 3, 200 - len(near))]),
        }
    )
    transform = build_column_transformer(
        [
            {"column": "income", "transform": "log1p"},
            {"column": "score", "transform": "bucketize", "bins": edges},
        ]
    )
    model = Pipeline([("features", transform), ("model", LinearRegression())])
    model.fit(frame, 3.0 * np.log1p(frame["income"]) + np.digitize(frame["score"], edges))

    exported = export_onnx(model, frame, task="regression")
    report = check_parity(model, exported.onnx_bytes, frame, task="regression", rtol=0, atol=1e-9)

    assert report.passed, report.to_dict()
    in_float32 = model.predict(frame.astype(np.float32).astype(np.float64))
    assert np.abs(in_float32 - model.predict(frame)).max() > 0.5  # a bucket moved


def test_a_categorical_column_of_integers_travels_as_int64() -> None:
    frame = pd.DataFrame(
        {"store": pd.Categorical([3, 7, 3, 11, 7, 3]), "spend": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}
    )
    transform = ColumnTransformer(
        [
            ("store", OneHotEncoder(handle_unknown="ignore"), ["store"]),
            ("spend", "passthrough", ["spend"]),
        ]
    )
    model = Pipeline([("features", transform), ("model", LinearRegression())])
    model.fit(frame, [1.0, 2.0, 3.0, 4.0, 5.0, 7.0])

    exported = export_onnx(model, frame, task="regression")

    assert exported.signature.input("store").dtype == "int64"
    assert check_parity(model, exported.onnx_bytes, frame, task="regression").passed


def test_the_models_view_of_integer_columns_makes_numbers_take_floats_and_categories_not() -> None:
    from loopml.data.features import build_column_transformer, model_frame
    from loopml.package import InvalidFeedError, to_feed

    features = [
        {"column": "rooms", "transform": "standardize"},
        {"column": "district", "transform": "onehot"},
    ]
    stored = pd.DataFrame({"rooms": [1, 2, 3, 4, 5, 6], "district": [3, 7, 3, 11, 7, 3]})
    frame = model_frame(features, stored)  # what the project pipeline trains and packages on
    y = 50.0 * frame["rooms"] + 10.0 * (frame["district"] == 7)
    model = Pipeline(
        [("features", build_column_transformer(features)), ("model", LinearRegression())]
    ).fit(frame, y)

    exported = export_onnx(model, frame, task="regression")

    assert exported.signature.input("rooms").dtype == "float64"
    assert exported.signature.input("district").dtype == "int64"
    assert check_parity(model, exported.onnx_bytes, frame, task="regression").passed
    session = ort.InferenceSession(exported.onnx_bytes, providers=["CPUExecutionProvider"])
    feed = to_feed(exported.signature, [[1.5, 7], [2, 3]])  # a float and an int for rooms
    np.testing.assert_allclose(session.run(None, feed)[0].ravel(), [85.0, 100.0], atol=1e-9)
    with pytest.raises(InvalidFeedError, match=r"is 1.5; expected an integer \(int64\)") as caught:
        to_feed(exported.signature, {"rooms": [2.0], "district": [1.5]})
    assert caught.value.field == "district"


def test_a_column_onnx_cannot_carry_is_named() -> None:
    frame = pd.DataFrame({"mixed": pd.Series([1, "a", 2.5, "b"], dtype=object)})
    model = Pipeline(
        [
            ("features", ColumnTransformer([("m", OrdinalEncoder(), ["mixed"])])),
            ("model", LinearRegression()),
        ]
    )
    model.fit(frame.astype(str), [1.0, 2.0, 3.0, 4.0])

    with pytest.raises(PackagingError, match="column 'mixed' has dtype object, which an ONNX"):
        export_onnx(model, frame, task="regression")


def test_an_unconvertible_step_is_named_before_conversion() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]})
    transform = ColumnTransformer([("cube", FunctionTransformer(lambda v: v**3), ["a"])])
    model = Pipeline([("features", transform), ("model", LinearRegression())])
    model.fit(frame, [1.0, 8.0, 27.0, 64.0])

    expected = r"step 'features/cube' \(FunctionTransformer\)"
    with pytest.raises(PackagingError, match=expected) as err:
        export_onnx(model, frame, task="regression")

    assert err.value.step == "features/cube"
    assert "np.log1p" in (err.value.hint or "")


def test_an_estimator_without_converter_is_named() -> None:
    from sklearn.base import BaseEstimator, RegressorMixin

    class Median(RegressorMixin, BaseEstimator):
        def fit(self, X: Any, y: Any) -> Any:
            self.median_ = float(np.median(y))
            return self

        def predict(self, X: Any) -> np.ndarray:
            return np.full(len(X), self.median_)

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    model = Pipeline([("scale", StandardScaler()), ("model", Median())]).fit(frame, [1, 2, 3])

    with pytest.raises(PackagingError, match=r"step 'model' \(Median\).*no converter"):
        export_onnx(model, frame, task="regression")


def test_a_converter_failure_names_the_step() -> None:
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0]})
    transform = ColumnTransformer([("fill", SimpleImputer(add_indicator=True), ["a"])])
    model = Pipeline([("features", transform), ("model", LinearRegression())])
    model.fit(frame, [1.0, 2.0, 3.0, 4.0])

    with pytest.raises(PackagingError, match="add_indicator"):
        export_onnx(model, frame, task="regression")


def test_task_must_match_the_model() -> None:
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    classifier = LogisticRegression().fit(frame, [0, 0, 1, 1])
    regressor = LinearRegression().fit(frame, [0.0, 0.5, 1.0, 2.0])

    with pytest.raises(InvalidInputError, match="task is 'regression' but the LogisticRegression"):
        export_onnx(classifier, frame, task="regression")
    with pytest.raises(InvalidInputError, match="task is 'binary' but the LinearRegression"):
        export_onnx(regressor, frame, task="binary")
    with pytest.raises(InvalidInputError, match="task 'ranking' is not one of"):
        export_onnx(regressor, frame, task="ranking")


def test_an_unfitted_model_is_refused() -> None:
    with pytest.raises(PackagingError, match="not fitted"):
        export_onnx(LinearRegression(), pd.DataFrame({"a": [1.0]}), task="regression")


def test_a_classifier_without_probabilities_exports_scores() -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    labels = (frame["a"] + frame["b"] > 0).astype(int)
    model = Pipeline([("scale", StandardScaler()), ("model", LinearSVC())]).fit(frame, labels)

    exported = export_onnx(model, frame, task="binary")
    report = check_parity(model, exported.onnx_bytes, frame, task="binary")

    assert exported.signature.output_names == ("label", "scores")
    assert {o.native for o in report.outputs} == {"predict", "decision_function"}
    assert report.passed


def test_missing_values_are_allowed_only_where_the_model_handles_them() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"imputed": rng.normal(size=60), "raw": rng.normal(size=60)})
    transform = ColumnTransformer(
        [("imputed", SimpleImputer(), ["imputed"]), ("raw", "passthrough", ["raw"])]
    )
    model = Pipeline([("features", transform), ("model", LinearRegression())])
    model.fit(frame, rng.normal(size=60))

    signature = export_onnx(model, frame, task="regression").signature

    assert signature.input("imputed").nullable is True
    assert signature.input("raw").nullable is False


def test_a_datetime_column_travels_as_epoch_seconds() -> None:
    frame = pd.DataFrame(
        {
            "signup": pd.to_datetime(["2024-01-05", "2024-03-10", "2025-07-21", "2023-12-31"]),
            "spend": [10.0, 20.0, 15.0, 30.0],
        }
    )
    from loopml.data.features import build_column_transformer

    transform = build_column_transformer(
        [
            {"column": "signup", "transform": "date_parts", "parts": ["year", "month"]},
            {"column": "spend", "transform": "standardize"},
        ]
    )
    model = Pipeline([("features", transform), ("model", LinearRegression())])
    model.fit(frame, [1.0, 2.0, 3.0, 4.0])

    exported = export_onnx(model, frame, task="regression")

    assert exported.signature.input("signup").dtype == "int64"
    assert check_parity(model, exported.onnx_bytes, frame, task="regression").passed


def test_hist_gradient_boosting_compares_in_double_like_scikit_learn() -> None:
    """Held-out values equal to a bin threshold must go the same way as in scikit-learn.

    With skl2onnx's float32 tree operator one of these held-out predictions moves by 3.2.
    """
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.model_selection import train_test_split

    data = load_diabetes(as_frame=True)
    X_train, X_test, y_train, _ = train_test_split(
        data.data, data.target, test_size=0.3, random_state=0
    )
    model = Pipeline(
        [
            ("features", ColumnTransformer([("all", StandardScaler(), list(data.data.columns))])),
            ("model", HistGradientBoostingRegressor(max_iter=50, random_state=0)),
        ]
    ).fit(X_train, y_train)

    exported = export_onnx(model, X_test, task="regression")
    report = check_parity(model, exported.onnx_bytes, X_test, task="regression", rtol=0, atol=1e-9)

    assert report.passed, report.to_dict()
    assert exported.opset["ai.onnx.ml"] == 5


def test_column_names_onnx_tools_find_unusual_are_kept() -> None:
    frame = pd.DataFrame({"od280/od315 ratio": [1.0, 2.0, 3.0, 4.0], "a.b": [0.0, 1.0, 0.0, 1.0]})
    model = LinearRegression().fit(frame, [1.0, 2.0, 3.0, 5.0])

    exported = export_onnx(model, frame, task="regression")

    assert exported.signature.input_names == ("od280/od315 ratio", "a.b")
    assert check_parity(model, exported.onnx_bytes, frame, task="regression").passed
