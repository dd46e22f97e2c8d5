"""Validation: one result per rule, with counts of violating rows and examples."""

from __future__ import annotations

import polars as pl
import pytest

from loopml.data.contract import Contract
from loopml.data.validate import validate

CONTRACT = Contract.model_validate(
    {
        "key": ["id"],
        "row_count": {"min": 1, "max": 100},
        "columns": {
            "id": {"type": "integer", "nullable": False},
            "x": {"type": "float", "nullable": False, "min": 0, "max": 10},
            "c": {"type": "string", "allowed": ["a", "b"]},
        },
    }
)


def test_each_rule_counts_its_violating_rows_with_examples() -> None:
    frame = pl.DataFrame(
        {
            "id": [1, 2, 2, 4, 5],
            "x": [1.0, None, 20.0, -1.0, float("nan")],
            "c": ["a", "b", "zz", None, "a"],
        }
    )
    report = validate(frame, CONTRACT)
    by_rule = {r.rule: r for r in report.results}
    assert by_rule["x.not_null"].violations == 2  # null and NaN
    assert by_rule["x.range"].violations == 2
    assert by_rule["x.range"].examples == [{"row": 2, "x": 20.0}, {"row": 3, "x": -1.0}]
    assert by_rule["c.allowed"].violations == 1
    assert by_rule["c.allowed"].examples == [{"row": 2, "c": "zz"}]
    assert by_rule["key.unique"].violations == 1
    assert by_rule["dataset.row_count"].violations == 0
    assert not report.passed
    assert "x.not_null: 2 rows" in report.summary()


def test_text_in_a_numeric_column_is_counted_by_the_type_rule() -> None:
    frame = pl.DataFrame({"id": [1, 2, 3], "x": ["1.5", "oops", " 2 "], "c": ["a", "a", "b"]})
    by_rule = {r.rule: r for r in validate(frame, CONTRACT).results}
    assert by_rule["x.type"].violations == 1
    assert by_rule["x.type"].examples == [{"row": 1, "x": "oops"}]


def test_missing_new_and_retyped_columns_are_schema_issues() -> None:
    frame = pl.DataFrame({"id": [True], "x": [1.0], "extra": [1]})
    report = validate(frame, CONTRACT)
    kinds = {(s.kind, s.column) for s in report.schema}
    assert kinds == {("missing", "c"), ("extra", "extra"), ("retyped", "id")}
    assert not report.passed


def test_a_clean_frame_passes_every_rule() -> None:
    frame = pl.DataFrame({"id": [1, 2], "x": [0.0, 10.0], "c": ["a", "b"]})
    report = validate(frame, CONTRACT)
    assert report.passed
    assert report.to_dict()["failed"] == 0


@pytest.mark.parametrize("kind", ["pandas", "arrow"])
def test_pandas_and_arrow_inputs_are_accepted(kind: str) -> None:
    frame = pl.DataFrame({"id": [1, 1], "x": [0.0, 11.0], "c": ["a", "b"]})
    data = frame.to_pandas() if kind == "pandas" else frame.to_arrow()
    failed = {r.rule for r in validate(data, CONTRACT).failed}
    assert failed == {"x.range", "key.unique"}
