"""prepare(): the frame every training stage reads is the model's view of the dataset — a
numeric feature takes any number, an integer category keeps its integers."""

from __future__ import annotations

import pandas as pd
import pytest

from loopml.errors import ConfigError, InvalidInputError
from loopml.train.dataset import prepare
from loopml.train.project import parse_project

HOUSES = """\
name: houses
data: {source: {type: file, path: data.csv}}
target: price
task: regression
features:
  - {column: rooms, transform: passthrough}
  - {column: surface, transform: standardize}
  - {column: district, transform: onehot}
  - {column: note, transform: drop}
"""


def _houses() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rooms": [1, 2, 3, 4],
            "surface": [30, 45, 70, 90],
            "district": [3, 7, 3, 11],
            "note": ["a", "b", "c", "d"],
            "price": [100, 150, 230, 300],
        }
    )


def test_integer_numeric_features_are_trained_as_float64_and_categories_stay_integers() -> None:
    stored = _houses()

    training = prepare(parse_project(HOUSES), stored)

    dtypes = {column: str(dtype) for column, dtype in training.X.dtypes.items()}
    assert dtypes == {"rooms": "float64", "surface": "float64", "district": "int64"}
    assert str(training.frame["price"].dtype) == "int64"  # the target is not a feature
    assert training.X["rooms"].tolist() == [1.0, 2.0, 3.0, 4.0]
    # the stored dataset (and so its contract and content hash) is unchanged
    pd.testing.assert_frame_equal(stored, _houses())


def test_default_features_standardize_integer_columns_as_float64() -> None:
    spec = parse_project(
        "name: counts\ndata: {source: {type: file, path: data.csv}}\ntarget: y\ntask: regression\n"
    )
    frame = pd.DataFrame(
        {"visits": [1, 5, 2, 8], "flag": [True, False, True, False], "y": [1, 2, 3, 4]}
    )

    training = prepare(spec, frame)

    assert [(f.column, f.transform) for f in training.features] == [
        ("visits", "standardize"),
        ("flag", "onehot"),
    ]
    assert str(training.X["visits"].dtype) == "float64"
    assert str(training.X["flag"].dtype) == "bool"


def test_prepare_still_refuses_missing_values_a_numeric_transform_cannot_take() -> None:
    # widening a nullable integer turns pd.NA into NaN; the check runs on the stored values
    frame = _houses().astype({"rooms": "Int64"})
    frame.loc[1, "rooms"] = pd.NA

    with pytest.raises(InvalidInputError, match="feature column 'rooms' has 1 missing value"):
        prepare(parse_project(HOUSES), frame)


def test_a_feature_column_absent_from_the_dataset_is_named() -> None:
    with pytest.raises(ConfigError, match=r"feature column\(s\) \['rooms'\]"):
        prepare(parse_project(HOUSES), _houses().drop(columns=["rooms"]))
