"""Request data → ONNX feed: strict types, clear errors naming the field, nothing else escapes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.errors import InvalidInputError
from loopml.package import InvalidFeedError, Signature, TensorSpec, rows_to_columns, to_feed

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


def test_columns_may_come_as_n_by_1_lists() -> None:
    feed = to_feed(COLUMNS, {**ROW, "score": [[0.5]], "city": [["nice"]]})

    assert feed["score"].tolist() == [[0.5]]
    assert feed["city"].tolist() == [["nice"]]


def test_integral_floats_are_accepted_for_integer_inputs() -> None:
    assert to_feed(COLUMNS, {**ROW, "age": [41.0]})["age"].tolist() == [[41]]


def test_null_is_nan_where_the_input_is_nullable() -> None:
    feed = to_feed(COLUMNS, {**ROW, "income": [None]})

    assert math.isnan(feed["income"][0, 0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"score": ["abc"]}, r"input 'score' expects numbers \(float64 \[-1, 1\]\); got 'abc'"),
        ({"score": [True]}, r"input 'score' expects numbers .* got True \(bool\) at row 0"),
        ({"age": [41.5]}, r"input 'age' expects integers .* got 41.5"),
        ({"age": [2**70]}, r"input 'age' got .* out of range for int64"),
        ({"city": [7]}, r"input 'city' expects strings .* got 7 \(int\)"),
        ({"member": [1]}, r"input 'member' expects booleans"),
        (
            {"score": [float("nan")]},
            r"input 'score' does not accept missing values .* NaN at row 0",
        ),
        ({"score": [None]}, r"input 'score' does not accept missing values .* null at row 0"),
        ({"score": [float("inf")]}, r"input 'score' got inf .* out of range"),
        ({"income": [float("-inf")]}, r"input 'income' got -inf"),
        ({"score": 0.7}, r"input 'score' expects a list of float64 values .* got 0.7 \(float\)"),
        ({"city": "paris"}, r"input 'city' expects a list of string values"),
        ({"score": [[0.1, 0.2]]}, r"input 'score' expects one value per row .* shape \[1, 2\]"),
    ],
)
def test_bad_values_are_named_with_the_expected_type(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidFeedError, match=message) as err:
        to_feed(COLUMNS, {**ROW, **change})

    assert err.value.field == next(iter(change))
    assert isinstance(err.value, InvalidInputError)


def test_a_missing_column_is_named_with_its_type() -> None:
    columns = {k: v for k, v in ROW.items() if k != "city"}

    with pytest.raises(InvalidFeedError, match=r"missing input 'city' \(string \[-1, 1\]\)") as err:
        to_feed(COLUMNS, columns)

    assert "age, income, score, city, member" in (err.value.hint or "")


def test_an_unknown_column_is_named() -> None:
    with pytest.raises(InvalidFeedError, match="unknown input 'zip'"):
        to_feed(COLUMNS, {**ROW, "zip": ["75001"]})


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(InvalidFeedError, match="'age' has 1 rows, 'score' has 2"):
        to_feed(COLUMNS, {**ROW, "score": [0.1, 0.2]})


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(InvalidFeedError, match="the batch is empty"):
        to_feed(COLUMNS, {name: [] for name in COLUMNS.input_names})
    with pytest.raises(InvalidFeedError, match="the batch is empty"):
        rows_to_columns(COLUMNS, [])


def test_inputs_must_be_an_object() -> None:
    with pytest.raises(InvalidFeedError, match="inputs must be an object mapping names"):
        to_feed(COLUMNS, [[1, 2.0]])  # type: ignore[arg-type]


def test_rows_pivot_to_columns_in_signature_order() -> None:
    rows = [[41, 52000.5, 0.7, "paris", True], [30, None, 0.1, "lyon", False]]

    columns = rows_to_columns(COLUMNS, rows)
    feed = to_feed(COLUMNS, columns)

    assert columns["city"] == ["paris", "lyon"]
    assert feed["age"].ravel().tolist() == [41, 30]
    assert math.isnan(feed["income"][1, 0])


def test_records_pivot_to_columns() -> None:
    records = [{"age": 41, "income": 1.0, "score": 0.7, "city": "nice", "member": False}]

    assert to_feed(COLUMNS, rows_to_columns(COLUMNS, records))["city"].tolist() == [["nice"]]


def test_a_row_of_the_wrong_width_names_the_row_and_the_columns() -> None:
    with pytest.raises(
        InvalidFeedError, match="row 1 has 2 values; the model takes 5: age, income, score"
    ):
        rows_to_columns(COLUMNS, [[41, 1.0, 0.7, "nice", True], [1, 2]])


def test_a_record_with_missing_or_extra_keys_is_named() -> None:
    with pytest.raises(InvalidFeedError, match="row 0: missing 'member'; unknown 'zip'"):
        rows_to_columns(
            COLUMNS, [{"age": 41, "income": 1.0, "score": 0.7, "city": "nice", "zip": "1"}]
        )


def test_the_tensor_layout_takes_rows_or_named_columns() -> None:
    by_rows = to_feed(TENSOR, rows_to_columns(TENSOR, [[1.0, 2.0, 3.0], [4, 5, 6]]))
    by_columns = to_feed(TENSOR, {"a": [1.0, 4.0], "b": [2.0, 5.0], "c": [3.0, 6.0]})
    by_records = to_feed(TENSOR, rows_to_columns(TENSOR, [{"a": 1.0, "b": 2.0, "c": 3.0}]))

    assert by_rows["input"].dtype == np.float32
    assert by_rows["input"].tolist() == by_columns["input"].tolist()
    assert by_records["input"].tolist() == [[1.0, 2.0, 3.0]]


def test_the_tensor_layout_names_the_bad_cell() -> None:
    with pytest.raises(InvalidFeedError, match=r"got 'x' \(str\) at row 1, column 2"):
        to_feed(TENSOR, {"input": [[1.0, 2.0, 3.0], [4.0, 5.0, "x"]]})
    with pytest.raises(InvalidFeedError, match=r"expects rows of 3 values .* row 0 is \[1.0\]"):
        to_feed(TENSOR, {"input": [[1.0]]})


def test_float32_inputs_refuse_values_beyond_float32() -> None:
    with pytest.raises(InvalidFeedError, match="out of range for float32"):
        to_feed(TENSOR, {"a": [1e39], "b": [1.0], "c": [1.0]})


# --- fuzzing: whatever arrives, only InvalidFeedError may escape ------------------------------

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
        if spec.dtype.startswith("float") and not spec.nullable:
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


@settings(max_examples=300, deadline=None)
@given(rows=json_values)
def test_any_rows_payload_either_feeds_or_raises_invalid_feed_error(rows: Any) -> None:
    for signature in (COLUMNS, TENSOR):
        try:
            feed = to_feed(signature, rows_to_columns(signature, rows))
        except InvalidFeedError:
            continue
        _check_feed(signature, feed)
