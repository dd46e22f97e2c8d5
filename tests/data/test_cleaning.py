"""Cleaning with quarantine: each stage, its reason codes, the change log, and the invariant
rows_in == kept + quarantined (checked on random data by hypothesis)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopml.data.clean_engine import ROW, Cleaner
from loopml.data.cleaning import CleaningSpec
from loopml.data.contract import Contract
from loopml.data.errors import ContractViolationError
from loopml.errors import ConfigError, InvalidInputError

CONTRACT = Contract.model_validate(
    {
        "key": ["id"],
        "columns": {
            "id": {"type": "integer", "nullable": False},
            "x": {"type": "float", "min": 0, "max": 1000},
            "c": {"type": "string", "allowed": ["a", "b"]},
        },
    }
)


def run(frame: pl.DataFrame, spec: dict | None, contract: Contract | None = CONTRACT):  # type: ignore[no-untyped-def]
    cleaner = Cleaner(
        CleaningSpec.model_validate(spec) if spec is not None else None, contract, "test data"
    )
    numbered = frame.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))
    result = cleaner.apply(numbered)
    assert frame.height == result.kept.height + result.quarantined.height
    return result, cleaner


def test_exact_duplicates_keep_the_first_copy() -> None:
    frame = pl.DataFrame({"id": [1, 2, 1, 1], "x": [1.0, 2.0, 1.0, 5.0], "c": ["a", "b", "a", "a"]})
    result, cleaner = run(frame, {"duplicates": "exact"}, contract=None)
    assert result.kept[ROW].to_list() == [0, 1, 3]
    assert cleaner.reasons == {"duplicate": 1}


def test_duplicates_by_key_can_keep_the_last_copy() -> None:
    frame = pl.DataFrame({"id": [1, 2, 1], "x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    result, cleaner = run(frame, {"duplicates": {"key": ["id"], "keep": "last"}})
    assert result.kept["x"].to_list() == [2.0, 3.0]
    assert cleaner.reasons == {"duplicate_key": 1}


def test_duplicates_are_found_across_batches() -> None:
    cleaner = Cleaner(CleaningSpec(duplicates={"mode": "exact"}), None, "test")
    first = pl.DataFrame({ROW: [0, 1], "v": [1, 2]})
    second = pl.DataFrame({ROW: [2, 3], "v": [2, 3]})
    cleaner.apply(first)
    assert cleaner.apply(second).quarantined[ROW].to_list() == [2]


def test_missing_values_are_dropped_or_imputed_and_each_imputation_is_logged() -> None:
    frame = pl.DataFrame(
        {"id": [1, 2, 3, 4, 5], "x": [1.0, None, 3.0, 5.0, None], "c": ["a", None, "b", "b", None]}
    )
    spec = {"missing": {"columns": {"x": "median", "c": "mode"}}}
    result, cleaner = run(frame, spec)
    assert result.kept["x"].to_list() == [1.0, 3.0, 3.0, 5.0, 3.0]
    assert result.kept["c"].to_list() == ["a", "b", "b", "b", "b"]
    log = result.changes.sort(["row", "column"])
    assert log.select("row", "key", "column", "old", "new", "reason").rows() == [
        (1, "2", "c", None, "b", "imputed:mode"),
        (1, "2", "x", None, "3.0", "imputed:median"),
        (4, "5", "c", None, "b", "imputed:mode"),
        (4, "5", "x", None, "3.0", "imputed:median"),
    ]
    _dropped, cleaner = run(frame, {"missing": {"columns": {"x": "drop"}}})
    assert cleaner.reasons == {"missing:x": 2}
    constant, _ = run(
        frame, {"missing": {"columns": {"x": {"strategy": "constant", "value": -1}}}}, None
    )
    assert constant.kept["x"].to_list() == [1.0, -1.0, 3.0, 5.0, -1.0]


def test_text_is_coerced_to_numbers_where_the_contract_says_numeric() -> None:
    frame = pl.DataFrame(
        {"id": [" 1", "2", "3", "4"], "x": ["3,5", " 12 ", "1.234,5", "abc"], "c": ["a"] * 4}
    )
    wide = CONTRACT.model_copy(deep=True)
    wide.columns["x"].max = 1e6
    result, cleaner = run(frame, {"coerce": True}, wide)
    assert result.kept["x"].to_list() == [3.5, 12.0, 1234.5]
    assert result.kept.schema["id"] == pl.Int64
    assert cleaner.reasons == {"x.type": 1}
    changed = {(r["column"], r["old"], r["new"]) for r in result.changes.to_dicts()}
    assert ("x", "3,5", "3.5") in changed
    assert ("x", "1.234,5", "1234.5") in changed
    quarantined = result.quarantined.to_dicts()
    assert quarantined == [{ROW: 3, "_reason": "x.type"}]


def test_without_coercion_decimal_commas_break_the_type_rule() -> None:
    frame = pl.DataFrame({"id": [1, 2], "x": ["3,5", "2"], "c": ["a", "a"]})
    _result, cleaner = run(frame, {"coerce": False})
    assert cleaner.reasons == {"x.type": 1}


def test_contract_violations_are_quarantined_under_their_rule() -> None:
    frame = pl.DataFrame(
        {"id": [1, 2, 2, None], "x": [5.0, 2000.0, 1.0, 1.0], "c": ["a", "b", "zz", "a"]}
    )
    _, cleaner = run(frame, {})
    assert cleaner.reasons == {"x.range": 1, "c.allowed": 1, "id.not_null": 1}


def test_without_cleaning_a_contract_violation_fails_and_names_the_rules() -> None:
    frame = pl.DataFrame({"id": [1, 2], "x": [5.0, 2000.0], "c": ["a", "b"]})
    with pytest.raises(
        ContractViolationError, match=r"test data breaks the contract: x\.range \(1 rows\)"
    ) as info:
        run(frame, None)
    assert "--clean" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("rule", "kept", "changed"),
    [
        ({"method": "iqr", "action": "quarantine"}, 9, 0),
        ({"method": "iqr", "action": "clip"}, 10, 1),
        ({"method": "zscore", "threshold": 2.5, "action": "quarantine"}, 9, 0),
    ],
)
def test_outliers_are_quarantined_or_clipped(rule: dict, kept: int, changed: int) -> None:  # type: ignore[type-arg]
    frame = pl.DataFrame(
        {"id": list(range(10)), "x": [10.0, 11, 12, 10, 11, 12, 10, 11, 12, 900], "c": ["a"] * 10}
    )
    result, cleaner = run(frame, {"outliers": {"x": rule}})
    assert result.kept.height == kept
    assert result.changes.height == changed
    if rule["action"] == "clip":
        q1, q3 = np.quantile(frame["x"].to_numpy(), [0.25, 0.75])
        assert result.kept["x"].max() == pytest.approx(q3 + 1.5 * (q3 - q1))
        assert result.changes["reason"].to_list() == ["clipped:iqr"]
    else:
        assert cleaner.reasons == {"outlier:x": 1}


def test_a_change_to_a_row_later_removed_is_not_logged() -> None:
    frame = pl.DataFrame({"id": [1, 1], "x": ["3,5", "3,5"], "c": ["a", "a"]})
    result, _ = run(frame, {"duplicates": "exact"})
    assert result.changes["row"].to_list() == [0]


def test_recipe_mistakes_name_the_field() -> None:
    with pytest.raises(ValueError, match="needs key"):
        CleaningSpec.model_validate({"duplicates": {"mode": "key"}})
    with pytest.raises(ConfigError, match="cleaning recipe is invalid"):
        CleaningSpec.load({"missing": {"default": "guess"}})
    frame = pl.DataFrame({"id": [1], "x": [1.0], "c": ["a"]})
    with pytest.raises(InvalidInputError, match="outlier rule for column 'nope'"):
        run(frame, {"outliers": {"nope": "iqr"}})
    with pytest.raises(
        InvalidInputError,
        match="cannot impute column 'c' by median \\(it is String, not numeric\\)",
    ):
        run(
            frame.with_columns(pl.lit(None, pl.String).alias("c")),
            {"missing": {"columns": {"c": "median"}}},
        )


rows = st.lists(
    st.tuples(
        st.integers(0, 6),
        st.one_of(
            st.none(), st.floats(-50, 2000, allow_nan=False), st.sampled_from(["3,5", "x", " 7 "])
        ),
        st.one_of(st.none(), st.sampled_from(["a", "b", "zz"])),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=rows,
    dup=st.sampled_from(["none", "exact", "key"]),
    missing=st.sampled_from(["keep", "drop", "median"]),
)
def test_no_row_is_ever_lost(rows: list, dup: str, missing: str) -> None:  # type: ignore[type-arg]
    frame = pl.DataFrame(
        {
            "id": [r[0] for r in rows],
            "x": [None if r[1] is None else str(r[1]) for r in rows],
            "c": [r[2] for r in rows],
        },
        schema={"id": pl.Int64, "x": pl.String, "c": pl.String},
    )
    spec = {
        "duplicates": {"mode": dup, "key": ["id"]} if dup == "key" else dup,
        "missing": {"columns": {"x": missing}},
        "outliers": {"x": {"method": "iqr", "action": "clip"}},
    }
    result, cleaner = run(frame, spec)  # asserts rows_in == kept + quarantined
    assert sum(cleaner.reasons.values()) == result.quarantined.height
    assert set(result.kept[ROW]).isdisjoint(set(result.quarantined[ROW]))
    assert set(result.kept[ROW]) | set(result.quarantined[ROW]) == set(range(frame.height))
