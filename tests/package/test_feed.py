"""Request data → ONNX feed: strict types, clear errors naming the field, nothing else escapes.

One converter serves the Python API (:func:`to_feed`) and the server (:class:`FeedBuilder`,
one per loaded model), so these tests specify both: every request form, the fast paths
against the careful one, and the message of every refusal.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.errors import InvalidInputError
from loopml.package import (
    FeedBuilder,
    InvalidFeedError,
    Signature,
    TensorSpec,
    frame_to_feed,
    to_feed,
)

COLUMNS = Signature(
    inputs=(
        TensorSpec("age", "int64", (-1, 1)),
        TensorSpec("income", "float64", (-1, 1), nullable=True),
        TensorSpec("score", "float64", (-1, 1)),
        TensorSpec("city", "string", (-1, 1)),
        TensorSpec("member", "bool", (-1, 1)),
    ),
    outputs=(TensorSpec("variable", "float64", (-1, 1)),),
    task="regression",
)
TENSOR = Signature(
    inputs=(TensorSpec("input", "float32", (-1, 3)),),
    outputs=(TensorSpec("variable", "float64", (-1, 1)),),
    task="regression",
    input_layout="tensor",
    feature_names=("a", "b", "c"),
)
# Every column a double: rows take the one-matrix fast path.
UNIFORM = Signature(
    inputs=tuple(TensorSpec(f"f{i}", "float64", (-1, 1)) for i in range(4)),
    outputs=(TensorSpec("variable", "float64", (-1, 1)),),
    task="regression",
)
ROW = {"age": [41], "income": [52000.5], "score": [0.7], "city": ["paris"], "member": [True]}


def test_a_good_row_becomes_one_typed_column_array_per_input() -> None:
    feed = to_feed(COLUMNS, ROW)

    assert {name: (a.dtype.kind, a.shape) for name, a in feed.items()} == {
        "age": ("i", (1, 1)),
        "income": ("f", (1, 1)),
        "score": ("f", (1, 1)),
        "city": ("O", (1, 1)),
        "member": ("b", (1, 1)),
    }
    assert feed["age"].dtype == np.int64
    assert feed["income"].dtype == np.float64
    assert feed["city"][0, 0] == "paris"


def test_long_columns_and_numpy_arrays_are_accepted() -> None:
    n = 100
    feed = to_feed(
        COLUMNS,
        {
            "age": np.arange(n),
            "income": [float(i) for i in range(n)],
            "score": np.linspace(0, 1, n),
            "city": ["lyon"] * n,
            "member": np.zeros(n, dtype=bool),
        },
    )

    assert all(array.shape == (n, 1) for array in feed.values())
    assert feed["score"].dtype == np.float64


def test_columns_may_come_as_n_by_1_lists_or_a_scalar_for_one_row() -> None:
    feed = to_feed(COLUMNS, {**ROW, "score": [[0.5]], "city": "nice"})

    assert feed["score"].tolist() == [[0.5]]
    assert feed["city"].tolist() == [["nice"]]


def test_integral_floats_are_accepted_for_integer_inputs_short_or_long() -> None:
    assert to_feed(COLUMNS, {**ROW, "age": [41.0]})["age"].tolist() == [[41]]
    n = 40
    long = {name: values * n for name, values in ROW.items()}
    assert to_feed(COLUMNS, {**long, "age": [3.0] * n})["age"].ravel().tolist() == [3] * n


def test_null_and_nan_are_nan_where_the_input_is_nullable() -> None:
    feed = to_feed(COLUMNS, {**ROW, "income": [None]})
    assert math.isnan(feed["income"][0, 0])

    n = 40
    long = {name: values * n for name, values in ROW.items()}
    feed = to_feed(COLUMNS, {**long, "income": [float("nan")] + [1.0] * (n - 1)})
    assert math.isnan(feed["income"][0, 0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"score": ["abc"]}, r"inputs\['score'\]\[0\] is 'abc'; expected a number \(float64\)"),
        ({"score": [True]}, r"inputs\['score'\]\[0\] is True; expected a number \(float64\)"),
        ({"age": [41.5]}, r"inputs\['age'\]\[0\] is 41.5; expected an integer \(int64\)"),
        ({"age": [2**70]}, r"is 1180591620717411303424, which is out of range for int64"),
        ({"city": [7]}, r"inputs\['city'\]\[0\] is 7; expected a string"),
        ({"member": [1]}, r"inputs\['member'\]\[0\] is 1; expected a boolean"),
        ({"score": [float("nan")]}, r"is nan, a missing or non-finite value.*'score' does not"),
        ({"score": [None]}, r"inputs\['score'\]\[0\] is null, a missing or non-finite value"),
        ({"score": [float("inf")]}, r"is inf, a missing or non-finite value"),
        ({"income": [float("-inf")]}, r"inputs\['income'\]\[0\] is -inf"),
        ({"city": [None]}, r"inputs\['city'\]\[0\] is null; expected a string"),
        ({"score": [[0.1, 0.2]]}, r"is a list of 2; expected one scalar, a number"),
        ({"score": [{"v": 1}]}, r"is an object; expected one scalar, a number"),
    ],
)
def test_bad_values_are_named_with_the_expected_type(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidFeedError, match=message) as err:
        to_feed(COLUMNS, {**ROW, **change})

    assert err.value.field == next(iter(change))
    assert isinstance(err.value, InvalidInputError)


@pytest.mark.parametrize(
    ("position", "value", "message"),
    [
        (37, True, r"rows\[37\]\[2\] \(column 'f2'\) is True; expected a number"),
        (37, "1.5", r"rows\[37\]\[2\] \(column 'f2'\) is '1.5'; expected a number"),
        (37, None, r"rows\[37\]\[2\] \(column 'f2'\) is null, a missing or non-finite"),
        (37, [1.0], r"rows\[37\]\[2\] \(column 'f2'\) is a list of 1; expected one scalar"),
        (0, float("inf"), r"rows\[0\]\[2\] \(column 'f2'\) is inf"),
    ],
)
def test_a_bad_cell_in_a_long_request_is_found_and_named(
    position: int, value: Any, message: str
) -> None:
    # 50 rows take the vectorised path: NumPy would read true as 1.0 and '1.5' as text.
    rows = [[0.5, 1.0, 0.0, 2.0] for _ in range(50)]
    rows[position][2] = value

    with pytest.raises(InvalidFeedError, match=message) as err:
        to_feed(UNIFORM, rows)

    assert err.value.field == "f2"


def test_booleans_are_refused_in_long_columns_and_tensors() -> None:
    column: list[Any] = [1.0] * 39 + [True]
    with pytest.raises(InvalidFeedError, match=r"inputs\['score'\]\[39\] is True"):
        to_feed(COLUMNS, {**{k: v * 40 for k, v in ROW.items()}, "score": column})
    rows: list[list[Any]] = [[1.0, 0.0, 2.0]] * 9 + [[1.0, False, 2.0]]
    with pytest.raises(InvalidFeedError, match=r"rows\[9\]\[1\] \(column 'b'\) is False"):
        to_feed(TENSOR, rows)


def test_a_missing_column_is_named() -> None:
    columns = {k: v for k, v in ROW.items() if k != "city"}

    with pytest.raises(InvalidFeedError, match=r"inputs: missing column\(s\) \['city'\]") as err:
        to_feed(COLUMNS, columns)

    assert err.value.field == "city"
    assert "['age', 'income', 'score', 'city', 'member']" in (err.value.hint or "")


def test_an_unknown_column_is_named() -> None:
    with pytest.raises(InvalidFeedError, match=r"unexpected column\(s\) \['zip'\]"):
        to_feed(COLUMNS, {**ROW, "zip": ["75001"]})


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(InvalidFeedError, match=r"columns of different lengths: age=1.*score=2"):
        to_feed(COLUMNS, {**ROW, "score": [0.1, 0.2]})


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(InvalidFeedError, match="empty batch: inputs has no rows"):
        to_feed(COLUMNS, {name: [] for name in COLUMNS.input_names})
    with pytest.raises(InvalidFeedError, match="empty batch: rows has no rows"):
        to_feed(COLUMNS, [])


def test_data_must_be_columns_or_rows() -> None:
    with pytest.raises(InvalidFeedError, match="mapping columns to values, or a list of rows"):
        to_feed(COLUMNS, 3)  # type: ignore[arg-type]


def test_rows_follow_the_signature_column_order() -> None:
    rows = [[41, 52000.5, 0.7, "paris", True], [30, None, 0.1, "lyon", False]]

    feed = to_feed(COLUMNS, rows)

    assert feed["city"].ravel().tolist() == ["paris", "lyon"]
    assert feed["age"].ravel().tolist() == [41, 30]
    assert math.isnan(feed["income"][1, 0])


def test_records_become_columns() -> None:
    records = [{"age": 41, "income": 1.0, "score": 0.7, "city": "nice", "member": False}]

    assert to_feed(COLUMNS, records)["city"].tolist() == [["nice"]]


def test_a_row_of_the_wrong_width_names_the_row_and_the_columns() -> None:
    with pytest.raises(
        InvalidFeedError,
        match=r"rows\[1\] must be a list of 5 values \(age, income, score, city, member\), "
        "got a list of 2",
    ):
        to_feed(COLUMNS, [[41, 1.0, 0.7, "nice", True], [1, 2]])


def test_a_record_with_missing_or_extra_keys_is_named() -> None:
    with pytest.raises(
        InvalidFeedError,
        match=r"rows\[0\]: missing column\(s\) \['member'\] and unexpected column\(s\) \['zip'\]",
    ):
        to_feed(COLUMNS, [{"age": 41, "income": 1.0, "score": 0.7, "city": "nice", "zip": "1"}])


def test_a_record_among_rows_that_is_not_one_is_named() -> None:
    with pytest.raises(InvalidFeedError, match=r"rows\[1\] must be a record like"):
        to_feed(UNIFORM, [{"f0": 1.0, "f1": 1.0, "f2": 1.0, "f3": 1.0}, [1.0, 1.0, 1.0, 1.0]])


def test_the_tensor_layout_takes_rows_records_or_named_columns() -> None:
    by_rows = to_feed(TENSOR, [[1.0, 2.0, 3.0], [4, 5, 6]])
    by_columns = to_feed(TENSOR, {"a": [1.0, 4.0], "b": [2.0, 5.0], "c": [3.0, 6.0]})
    by_input = to_feed(TENSOR, {"input": [[1.0, 2.0, 3.0], [4, 5, 6]]})
    by_records = to_feed(TENSOR, [{"a": 1.0, "b": 2.0, "c": 3.0}])

    assert by_rows["input"].dtype == np.float32
    assert by_rows["input"].tolist() == by_columns["input"].tolist() == by_input["input"].tolist()
    assert by_records["input"].tolist() == [[1.0, 2.0, 3.0]]


def test_the_tensor_layout_names_the_bad_cell() -> None:
    with pytest.raises(
        InvalidFeedError, match=r"inputs.input\[1\]\[2\] \(column 'c'\) is 'x'; expected a number"
    ):
        to_feed(TENSOR, {"input": [[1.0, 2.0, 3.0], [4.0, 5.0, "x"]]})
    with pytest.raises(InvalidFeedError, match=r"inputs.input\[0\] must be a list of 3 values"):
        to_feed(TENSOR, {"input": [[1.0]]})


def test_float32_inputs_refuse_values_beyond_float32() -> None:
    with pytest.raises(InvalidFeedError, match="1e\\+39, which is out of range for float32"):
        to_feed(TENSOR, {"a": [1e39], "b": [1.0], "c": [1.0]})
    rows = [[1.0, 2.0, 3.0]] * 20 + [[1.0, -1e39, 3.0]]
    with pytest.raises(InvalidFeedError, match=r"rows\[20\]\[1\] \(column 'b'\) is -1e\+39"):
        to_feed(TENSOR, rows)


def test_the_uniform_fast_path_cuts_the_matrix_into_contiguous_columns() -> None:
    rows = [[float(i), i + 0.5, -i, 2 * i] for i in range(30)]

    feed = to_feed(UNIFORM, rows)

    assert list(feed) == ["f0", "f1", "f2", "f3"]
    assert feed["f2"].ravel().tolist() == [float(-i) for i in range(30)]
    assert all(a.shape == (30, 1) and a.flags.c_contiguous for a in feed.values())


# --- the server's forms -------------------------------------------------------------------


def test_split_reorders_named_columns_and_names_the_bad_row() -> None:
    builder = FeedBuilder(COLUMNS, "churn:3")
    columns = ["city", "age", "income", "score", "member"]

    feed = builder.split(columns, [["nice", 41, None, 0.5, True]], "dataframe_split")

    assert feed.rows == 1
    assert feed.arrays["city"].tolist() == [["nice"]]
    with pytest.raises(InvalidFeedError, match=r"dataframe_split.data\[0\] must be a list of 5"):
        builder.split(columns, [["nice", 41]], "dataframe_split")
    with pytest.raises(InvalidFeedError, match=r"dataframe_split.columns: missing column\(s\)"):
        builder.split(["city"], [["nice"]], "dataframe_split")


def test_a_flat_list_feeds_a_one_column_model() -> None:
    builder = FeedBuilder(
        Signature(
            inputs=(TensorSpec("x", "float64", (-1, 1)),),
            outputs=(TensorSpec("variable", "float64", (-1, 1)),),
            task="regression",
        ),
        "linear:1",
    )

    feed = builder.tensor([1.0, 2, 3.5], "instances")

    assert feed.rows == 3
    assert feed.arrays["x"].tolist() == [[1.0], [2.0], [3.5]]
    with pytest.raises(InvalidFeedError, match=r"instances\[1\] is 'two'; expected a number"):
        builder.tensor([1.0, "two"], "instances")


def test_typed_arrays_are_cast_only_when_that_cannot_surprise() -> None:
    builder = FeedBuilder(TENSOR, "forest:1")

    feed = builder.arrays({"input": np.ones((2, 3), dtype=np.float64)}, "inputs")

    assert feed.arrays["input"].dtype == np.float32
    assert feed.rows == 2
    with pytest.raises(InvalidFeedError, match="has datatype BYTES; the model expects FP32"):
        builder.arrays({"input": np.array([["a", "b", "c"]], dtype=object)}, "inputs")
    with pytest.raises(InvalidFeedError, match=r"has shape \[2, 2\]; the model expects \[-1, 3\]"):
        builder.arrays({"input": np.ones((2, 2))}, "inputs")
    with pytest.raises(InvalidFeedError, match="holds values out of range for FP32"):
        builder.arrays({"input": np.full((1, 3), 1e300)}, "inputs")
    with pytest.raises(InvalidFeedError, match=r"missing \['input'\]; unexpected \['x'\]"):
        builder.arrays({"x": np.ones((1, 3))}, "inputs")
    with pytest.raises(InvalidFeedError, match=r"is nan, a missing or non-finite value"):
        builder.arrays({"input": np.array([[1.0, np.nan, 2.0]])}, "inputs")


def test_the_model_label_names_the_model_in_messages() -> None:
    unnamed = Signature(
        inputs=(TensorSpec("X", "float32", (-1, 2)),),
        outputs=(TensorSpec("variable", "float32", (-1, 1)),),
        task="regression",
        input_layout="tensor",
    )

    with pytest.raises(InvalidFeedError, match="but model forest:2 takes an unnamed tensor"):
        FeedBuilder(unnamed, "forest:2").rows([{"a": 1.0, "b": 2.0}], "instances")


# --- frames -------------------------------------------------------------------------------


def test_a_timezone_aware_date_column_feeds_utc_epoch_seconds() -> None:
    signature = Signature(
        inputs=(TensorSpec("when", "int64", (-1, 1)),),
        outputs=(TensorSpec("variable", "float64", (-1, 1)),),
        task="regression",
    )
    naive = pd.Series(pd.to_datetime(["2024-01-01T00:00:00", "1970-01-01T00:01:00"]))
    stamps = naive.dt.tz_localize("UTC").dt.tz_convert("Europe/Paris")  # same instants

    aware = frame_to_feed(signature, pd.DataFrame({"when": stamps}))["when"]
    plain = frame_to_feed(signature, pd.DataFrame({"when": naive}))["when"]

    assert aware.ravel().tolist() == plain.ravel().tolist() == [1704067200, 60]


# --- fuzzing: whatever arrives, only InvalidFeedError may escape ----------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=12,
)


def _check_feed(signature: Signature, feed: dict[str, np.ndarray]) -> None:
    rows = {array.shape[0] for array in feed.values()}
    assert len(rows) == 1
    assert rows.pop() > 0
    for spec in signature.inputs:
        array = feed[spec.name]
        assert array.ndim == 2
        assert array.dtype == spec.np_dtype
        if spec.dtype.startswith("float"):
            assert not np.isinf(array).any()
            if not spec.nullable:
                assert np.isfinite(array).all()


@settings(max_examples=300, deadline=None)
@given(
    columns=st.dictionaries(
        st.sampled_from([*COLUMNS.input_names, "other"]), json_values, max_size=6
    )
)
def test_any_column_payload_either_feeds_or_raises_invalid_feed_error(
    columns: dict[str, Any],
) -> None:
    try:
        feed = to_feed(COLUMNS, columns)
    except InvalidFeedError:
        return
    _check_feed(COLUMNS, feed)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.integers(), st.floats(), st.booleans(), st.text(max_size=3), st.none()),
        min_size=0,
        max_size=40,
    ),
    name=st.sampled_from(COLUMNS.input_names),
)
def test_any_values_in_a_column_either_feed_or_raise_invalid_feed_error(
    values: list[Any], name: str
) -> None:
    n = len(values)
    good = {
        "age": [1] * n,
        "income": [1.0] * n,
        "score": [1.0] * n,
        "city": ["x"] * n,
        "member": [True] * n,
    }
    try:
        feed = to_feed(COLUMNS, {**good, name: values})
    except InvalidFeedError:
        return
    _check_feed(COLUMNS, feed)
    assert feed[name].ravel().tolist() == pytest.approx(
        [math.nan if v is None else v for v in values], nan_ok=True
    )


@settings(max_examples=300, deadline=None)
@given(rows=json_values)
def test_any_rows_payload_either_feeds_or_raises_invalid_feed_error(rows: Any) -> None:
    for signature in (COLUMNS, TENSOR, UNIFORM):
        try:
            feed = to_feed(signature, rows)
        except InvalidFeedError:
            continue
        _check_feed(signature, feed)


numbers = st.one_of(
    st.integers(-(2**60), 2**60), st.floats(allow_nan=False, allow_infinity=False, width=32)
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.lists(numbers, min_size=4, max_size=4), min_size=1, max_size=30),
    records=st.booleans(),
)
def test_the_fast_paths_give_what_the_careful_path_gives(rows: Any, records: bool) -> None:
    names = UNIFORM.input_names
    data = [dict(zip(names, row, strict=True)) for row in rows] if records else rows

    fast = to_feed(UNIFORM, data)
    careful = to_feed(UNIFORM, {name: [row[j] for row in rows] for j, name in enumerate(names)})
    tensor = to_feed(TENSOR, [row[:3] for row in rows])

    assert {k: v.tolist() for k, v in fast.items()} == {k: v.tolist() for k, v in careful.items()}
    assert tensor["input"].tolist() == np.array([row[:3] for row in rows], np.float32).tolist()


def test_a_frame_with_fractions_for_an_integer_input_is_refused_not_truncated() -> None:
    frame = pd.DataFrame(
        {"age": [41.0, 1.5], "income": [1.0, 2.0], "score": [0.1, 0.2], "city": ["a", "b"]}
    ).assign(member=[True, False])
    with pytest.raises(InvalidFeedError, match=r"column 'age' holds 1\.5 at row 1; expected whole"):
        frame_to_feed(COLUMNS, frame)
    whole = frame_to_feed(COLUMNS, frame.assign(age=[41.0, 2.0]))["age"]
    assert whole.dtype == np.int64
    assert whole.ravel().tolist() == [41, 2]


def test_a_dataframe_split_naming_a_column_twice_is_refused() -> None:
    builder = FeedBuilder(UNIFORM, "m:1")
    with pytest.raises(InvalidFeedError, match=r"names \['f0'\] more than once"):
        builder.split(["f0", "f0", "f1", "f2"], [[1.0, 2.0, 3.0, 4.0]], "dataframe_split")
