"""Feature transforms: every kind compiles into a ColumnTransformer that exports to ONNX and
gives the same numbers under onnxruntime as under scikit-learn."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from loopml.data.features import (
    NUMERIC_TRANSFORMS,
    TRANSFORMS,
    FeatureSpec,
    build_column_transformer,
    model_frame,
)
from loopml.data.features_onnx import onnx_inputs, to_onnx
from loopml.errors import InvalidInputError


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "num": rng.normal(5, 2, n),
            "pos": rng.exponential(3, n),
            "city": rng.choice(["berlin", "paris", "rome"], n),
            "size": rng.choice(["S", "M", "L"], n),
            "score": rng.uniform(0, 100, n),
            # includes dates before 1970 and times of day, to exercise floor division
            "when": pd.to_datetime(rng.integers(-2 * 10**9, 3 * 10**9, n), unit="s"),
            "note": ["x"] * n,
        }
    )


CASES = {
    "standardize": {"column": "num", "transform": "standardize"},
    "minmax": {"column": "num", "transform": "minmax"},
    "log1p": {"column": "pos", "transform": "log1p"},
    "onehot": {"column": "city", "transform": "onehot"},
    "ordinal": {"column": "size", "transform": "ordinal", "categories": ["S", "M"]},
    "bucketize": {"column": "score", "transform": "bucketize", "bins": [10, 50, 80]},
    "date_parts": {
        "column": "when",
        "transform": "date_parts",
        "parts": ["year", "month", "day", "dayofweek", "hour"],
    },
    "passthrough": {"column": "num", "transform": "passthrough"},
    "drop": {"column": "note", "transform": "drop"},
}


def _unseen(frame: pd.DataFrame) -> pd.DataFrame:
    test = _frame(60, seed=1)
    test.loc[0, "city"] = "madrid"  # unknown category: onehot gives all zeros
    test.loc[1, "size"] = "XL"  # unknown: ordinal gives unknown_value
    return test


@pytest.mark.parametrize("kind", [k for k in TRANSFORMS if k != "drop"])
def test_every_transform_exports_to_onnx_with_the_same_output(kind: str) -> None:
    features = [CASES[kind], CASES["drop"]]
    train = _frame()
    transformer = build_column_transformer(features).fit(train)
    test = _unseen(train)
    expected = transformer.transform(test)
    model = to_onnx(transformer, features, train)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, onnx_inputs(features, test))[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_all_transforms_together_export_as_one_graph() -> None:
    features = [CASES[k] for k in TRANSFORMS if k not in ("passthrough", "minmax")]
    train = _frame()
    transformer = build_column_transformer(features).fit(train)
    test = _unseen(train)
    model = to_onnx(transformer, features, train)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, onnx_inputs(features, test))[0]
    np.testing.assert_allclose(got, transformer.transform(test), rtol=1e-5, atol=1e-5)
    names = list(transformer.get_feature_names_out())
    assert names[:6] == ["num", "pos", "city_berlin", "city_paris", "city_rome", "size"]
    assert names[-5:] == ["when_year", "when_month", "when_day", "when_dayofweek", "when_hour"]
    assert "note" not in names


def test_date_parts_match_pandas_calendar() -> None:
    from loopml.data.transformers import DateParts

    when = pd.Series(
        pd.to_datetime(["1969-12-31 23:59:59", "2000-02-29 12:00:00", "2026-11-27 01:00:00"])
    )
    parts = (
        DateParts(parts=["year", "month", "day", "dayofweek", "hour"])
        .fit(when.to_frame())
        .transform(when.to_frame())
    )
    expected = np.column_stack(
        [when.dt.year, when.dt.month, when.dt.day, when.dt.dayofweek, when.dt.hour]
    )
    np.testing.assert_array_equal(parts, expected)


def test_bucket_counts_learned_from_quantiles() -> None:
    frame = pd.DataFrame({"score": np.arange(100.0)})
    transformer = build_column_transformer(
        [{"column": "score", "transform": "bucketize", "bins": 4}]
    ).fit(frame)
    assert sorted(set(transformer.transform(frame).ravel())) == [0.0, 1.0, 2.0, 3.0]


def test_bad_feature_entries_name_the_entry_and_the_valid_kinds() -> None:
    with pytest.raises(InvalidInputError, match=r"feature #1 .* is invalid") as info:
        build_column_transformer([{"column": "x", "transform": "sqrt"}])
    assert "standardize" in (info.value.hint or "")
    with pytest.raises(InvalidInputError, match="bucketize needs bins"):
        build_column_transformer([{"column": "x", "transform": "bucketize"}])
    with pytest.raises(InvalidInputError, match="declared twice"):
        build_column_transformer([{"column": "x"}, {"column": "x", "transform": "minmax"}])
    with pytest.raises(InvalidInputError, match="every feature is dropped"):
        build_column_transformer([FeatureSpec(column="x", transform="drop")])


def test_a_step_without_an_onnx_converter_is_reported_clearly() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import FunctionTransformer

    from loopml.data.errors import ExportUnsupportedError

    # A lambda: no converter can exist for it, whatever other modules have registered.
    step = FunctionTransformer(lambda values: values**3)
    transformer = ColumnTransformer([("f", step, ["num"])]).fit(_frame())
    with pytest.raises(ExportUnsupportedError, match="cannot be exported to ONNX"):
        to_onnx(transformer, [{"column": "num", "transform": "standardize"}])


def _counts() -> pd.DataFrame:
    """Integer columns of every kind a feature can read them as, and a boolean."""
    return pd.DataFrame(
        {
            "rooms": [1, 2, 3, 4],
            "floor": pd.array([0, 3, None, 1], dtype="Int64"),
            "age": np.array([10, 20, 30, 40], dtype=np.uint8),
            "store": [3, 7, 3, 11],
            "grade": [1, 2, 3, 1],
            "member": [True, False, True, True],
            "y": [1, 2, 3, 4],
        }
    )


def test_integer_columns_read_as_numbers_are_float64_in_the_models_view() -> None:
    features = [
        {"column": "rooms", "transform": "passthrough"},
        {"column": "floor", "transform": "standardize"},
        {"column": "age", "transform": "bucketize", "bins": [18, 65]},
    ]
    frame = _counts()

    view = model_frame(features, frame)

    assert {c: str(view[c].dtype) for c in ("rooms", "floor", "age")} == dict.fromkeys(
        ("rooms", "floor", "age"), "float64"
    )
    assert view["rooms"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert np.isnan(view.loc[2, "floor"])  # pd.NA of a nullable integer becomes NaN
    assert all(FeatureSpec.model_validate(f).is_numeric for f in features)
    assert set(NUMERIC_TRANSFORMS) <= set(TRANSFORMS)


def test_integer_categories_booleans_and_the_stored_frame_keep_their_dtypes() -> None:
    features = [
        {"column": "rooms", "transform": "minmax"},
        {"column": "store", "transform": "onehot"},
        {"column": "grade", "transform": "ordinal", "categories": [1, 2, 3]},
        {"column": "member", "transform": "passthrough"},
    ]
    frame = _counts()
    before = frame.dtypes.copy()

    view = model_frame(features, frame)

    assert str(view["store"].dtype) == str(view["grade"].dtype) == "int64"  # no category 1.5
    assert str(view["member"].dtype) == "bool"
    assert str(view["y"].dtype) == "int64"  # columns no feature reads are left alone
    assert str(view["rooms"].dtype) == "float64"
    pd.testing.assert_series_equal(frame.dtypes, before)  # the stored dataset is not touched
    assert frame["rooms"].tolist() == [1, 2, 3, 4]
    assert not FeatureSpec(column="store", transform="onehot").is_numeric
