"""The converters of loopml's own transformers compute in the precision of their input, and
the data layer alone decides how a column travels into an ONNX graph."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, Int64TensorType

from loopml.data.features import build_column_transformer
from loopml.data.features_onnx import column_wire_type, onnx_input_types, register_converters
from loopml.data.transformers import Bucketizer, DateParts, Log1p

# Values float32 cannot hold: rounding them moves log1p by far more than 1e-12 (checked in
# the test), across the ranges the graph treats differently (near 0, below and above 1).
LOG1P_VALUES = np.array(
    [
        1e-10 + 3e-19,
        -7.3e-9,
        3.0000000001e-5,
        5.123456789e-4,  # where plain log(1 + x) in double loses ~1e-12 of its digits
        -0.123456789012345,
        0.999999999,
        2.000000001,
        12345.6789012345,
        -0.9999999,
    ]
)
SPECIAL = np.array([0.0, -0.0, -1.0, np.inf, np.nan, -2.0])

EDGES = [2.5e-7, 0.1, 1 / 3, 1e6 + 0.1]


def _run(model: Any, columns: dict[str, np.ndarray], types: list[tuple[str, Any]]) -> np.ndarray:
    register_converters()
    proto = convert_sklearn(model, initial_types=types, target_opset=18)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, columns)[0])


def _near_edges() -> np.ndarray:
    """Each edge, and the doubles just below and above it: float32 rounds them onto one side."""
    edges = np.asarray(EDGES)
    return np.concatenate(
        [edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf), [np.nan, -np.inf]]
    )


def test_log1p_exports_in_double_for_double_inputs() -> None:
    x = np.concatenate([LOG1P_VALUES, SPECIAL]).reshape(-1, 1)
    transformer = Log1p().fit(x)

    got = _run(transformer, {"x": x}, [("x", DoubleTensorType([None, 1]))])

    assert got.dtype == np.float64
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.log1p(x)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    # the test values are ones where a float32 computation would have been caught
    regular = expected[: len(LOG1P_VALUES)]
    in_float32 = np.log1p(LOG1P_VALUES.astype(np.float32).astype(np.float64)).reshape(-1, 1)
    assert (np.abs(in_float32 - regular) > 1e-10 * np.abs(regular)).all()


def test_bucketizer_exports_in_double_for_double_inputs() -> None:
    x = _near_edges().reshape(-1, 1)
    transformer = Bucketizer(bins=EDGES).fit(x)

    got = _run(transformer, {"x": x}, [("x", DoubleTensorType([None, 1]))])

    expected = transformer.transform(x)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)
    in_float32 = transformer.transform(x.astype(np.float32))
    assert (in_float32 != expected).sum() >= len(EDGES)  # float32 would move these rows


def test_the_feature_spec_transform_exports_in_double_for_double_inputs() -> None:
    features = [
        {"column": "pos", "transform": "log1p"},
        {"column": "score", "transform": "bucketize", "bins": EDGES},
        {"column": "when", "transform": "date_parts", "parts": ["year", "month", "hour"]},
    ]
    n = len(_near_edges())
    frame = pd.DataFrame(
        {
            "pos": np.resize(LOG1P_VALUES, n),
            "score": _near_edges(),
            "when": pd.to_datetime(np.linspace(-2e9, 3e9, n).astype(np.int64), unit="s"),
        }
    )
    transformer = build_column_transformer(features).fit(frame)
    seconds = frame["when"].to_numpy().astype("datetime64[s]").astype(np.int64)

    got = _run(
        transformer,
        {
            "pos": frame[["pos"]].to_numpy(),
            "score": frame[["score"]].to_numpy(),
            # epoch seconds sent as double, as loopml.package's exported graphs do inside
            "when": seconds.astype(np.float64).reshape(-1, 1),
        },
        [(name, DoubleTensorType([None, 1])) for name in ("pos", "score", "when")],
    )

    assert got.dtype == np.float64
    np.testing.assert_allclose(got, transformer.transform(frame), rtol=1e-12, atol=0)


def test_float_inputs_give_float_outputs_that_match_numpy_on_those_values() -> None:
    x = _near_edges().astype(np.float32).reshape(-1, 1)
    float_in = [("x", FloatTensorType([None, 1]))]

    logs = _run(Log1p().fit(x), {"x": np.abs(x)}, float_in)
    buckets = _run(Bucketizer(bins=EDGES).fit(x), {"x": x}, float_in)

    assert logs.dtype == np.float32
    assert buckets.dtype == np.float32
    np.testing.assert_allclose(logs, np.log1p(np.abs(x).astype(np.float64)), rtol=1e-6)
    # float32 values compared with the double edges exactly as NumPy compares them
    np.testing.assert_array_equal(buckets, Bucketizer(bins=EDGES).fit(x).transform(x))


def test_date_parts_keep_float_output_for_epoch_seconds_and_double_beside_doubles() -> None:
    seconds = np.array([[-1], [951_825_600], [1_795_741_200]], dtype=np.int64)
    transformer = DateParts(parts=["year", "month", "day", "dayofweek", "hour"]).fit(seconds)

    as_int = _run(transformer, {"x": seconds}, [("x", Int64TensorType([None, 1]))])
    as_double = _run(
        transformer, {"x": seconds.astype(np.float64)}, [("x", DoubleTensorType([None, 1]))]
    )

    assert as_int.dtype == np.float32
    assert as_double.dtype == np.float64
    np.testing.assert_array_equal(as_int, transformer.transform(seconds))
    np.testing.assert_array_equal(as_double, transformer.transform(seconds))


def test_a_bucketizer_without_edges_puts_every_value_in_bucket_zero() -> None:
    x = np.array([[1.0], [np.nan], [-np.inf]])
    transformer = Bucketizer(bins=3).fit(np.full((4, 1), np.nan))  # nothing finite to learn

    got = _run(transformer, {"x": x}, [("x", DoubleTensorType([None, 1]))])

    np.testing.assert_array_equal(got, transformer.transform(x))


@pytest.mark.parametrize(
    ("values", "wire"),
    [
        (pd.Series([1.5, np.nan]), "float64"),
        (pd.Series([1, 2]), "int64"),
        (pd.Series([1, 2], dtype="Int64"), "int64"),
        (pd.Series([1, None], dtype="Int64"), "float64"),
        (pd.Series([True, False]), "bool"),
        (pd.Series(["a", None]), "string"),
        (pd.Series(["a", "b"], dtype=object), "string"),
        (pd.Series(pd.Categorical(["a", "b"])), "string"),
        (pd.Series(pd.Categorical([3, 7])), "int64"),
        (pd.Series(pd.to_datetime(["2024-01-05"])), "datetime"),
        (pd.Series([1, "a"], dtype=object), None),
        (pd.Series([1 + 2j]), "float64"),
    ],
    ids=lambda v: v if isinstance(v, str) or v is None else str(v.dtype),
)
def test_column_wire_type_follows_the_dtype(values: pd.Series, wire: str | None) -> None:
    assert column_wire_type(values) == wire


def test_integer_categories_in_the_sample_make_an_int64_input() -> None:
    features = [
        {"column": "store", "transform": "onehot"},
        {"column": "city", "transform": "ordinal"},
    ]
    for store in ([3, 7], pd.Categorical([3, 7])):
        sample = pd.DataFrame({"store": store, "city": ["a", "b"]})
        kinds = {name: type(kind).__name__ for name, kind in onnx_input_types(features, sample)}
        assert kinds == {"store": "Int64TensorType", "city": "StringTensorType"}


def test_numeric_transforms_take_float_whatever_the_columns_dtype() -> None:
    # the graph takes what the trained model takes: numbers for numeric transforms (even of
    # an integer column, see loopml.data.features.model_frame), integers for integer categories
    features = [
        {"column": "rooms", "transform": "passthrough"},
        {"column": "floor", "transform": "standardize"},
        {"column": "store", "transform": "onehot"},
    ]
    sample = pd.DataFrame({"rooms": [1, 2], "floor": [0, 3], "store": [3, 7]})
    kinds = {name: type(kind).__name__ for name, kind in onnx_input_types(features, sample)}
    assert kinds == {
        "rooms": "FloatTensorType",
        "floor": "FloatTensorType",
        "store": "Int64TensorType",
    }
