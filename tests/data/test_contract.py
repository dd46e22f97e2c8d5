"""Contracts: inferred from data, edited as YAML, stored versioned, errors that say where."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from loopml.data.contract import Contract, infer_contract, load_contract
from loopml.data.versions import DatasetStore
from loopml.errors import ConfigError

from .conftest import make_frame


def test_inference_captures_types_nulls_ranges_categories_and_the_key() -> None:
    frame = make_frame(100).with_columns(
        pl.when(pl.col("id") == 5).then(None).otherwise(pl.col("x2")).alias("x2")
    )
    contract = infer_contract(frame, name="orders")
    cols = contract.columns
    assert contract.key == ["id"]
    assert cols["id"].unique
    assert not cols["id"].nullable
    assert cols["x1"].type == "float"
    assert not cols["x1"].nullable
    assert cols["x1"].min == pytest.approx(frame["x1"].min())
    assert cols["x2"].nullable
    assert cols["n"].type == "integer"
    assert cols["city"].allowed == ["berlin", "paris", "rome"]
    assert contract.row_count.min == 1


def test_many_distinct_strings_are_not_a_category() -> None:
    frame = pl.DataFrame({"note": [f"text {i}" for i in range(100)]})
    assert infer_contract(frame, max_categories=50).columns["note"].allowed is None


def test_yaml_round_trips_and_hashes_ignore_the_name() -> None:
    contract = infer_contract(make_frame(30), name="a")
    again = Contract.from_yaml(contract.to_yaml())
    assert again == contract
    assert again.model_copy(update={"name": "b"}).content_hash == contract.content_hash


def test_a_contract_lists_one_rule_per_check() -> None:
    contract = Contract.model_validate(
        {
            "key": ["id"],
            "row_count": {"min": 1},
            "columns": {
                "id": {"type": "integer", "nullable": False, "unique": True},
                "x": {"type": "float", "min": 0, "max": 1},
                "c": {"type": "string", "allowed": ["a"]},
            },
        }
    )
    assert [r.id for r in contract.rules()] == [
        "id.type",
        "id.not_null",
        "x.type",
        "x.range",
        "c.type",
        "c.allowed",
        "key.unique",
        "dataset.row_count",
    ]


def test_broken_yaml_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid YAML"):
        Contract.from_yaml("columns: [unclosed")
    with pytest.raises(ConfigError, match="has no 'columns:' mapping") as info:
        Contract.from_yaml("name: x\n")
    assert "loopml data infer" in (info.value.hint or "")
    with pytest.raises(ConfigError, match=r"is invalid: columns\.x\.type") as info:
        Contract.from_yaml("columns:\n  x: {type: number}\n")
    assert "integer|float" in (info.value.hint or "")
    with pytest.raises(ConfigError, match="key column 'k' is not among the columns"):
        Contract.from_yaml("key: [k]\ncolumns:\n  x: {type: float}\n")
    with pytest.raises(ConfigError, match=r"contract file .*missing\.yaml.* does not exist"):
        load_contract(tmp_path / "missing.yaml")


def test_contracts_are_stored_versioned_and_unchanged_rules_reuse_a_version(
    store: DatasetStore,
) -> None:
    contract = infer_contract(make_frame(30), name="orders")
    first = store.save_contract(contract, "orders")
    assert first[1] == 1
    assert store.save_contract(contract, "orders") == first
    edited = contract.model_copy(deep=True)
    edited.columns["x1"].max = 1000.0
    assert store.save_contract(edited, "orders")[1] == 2
