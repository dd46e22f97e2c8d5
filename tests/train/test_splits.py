"""Holdout, k-fold (stratified, leave-one-out) and time-ordered splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.errors import ConfigError
from loopml.train.project import SplitSpec
from loopml.train.splits import make_split


def _frame(n: int = 100) -> pd.DataFrame:
    return pd.DataFrame(
        {"x": np.arange(n, dtype=float), "y": np.arange(n) % 2, "t": np.arange(n)[::-1]}
    )


def test_kfold_keeps_the_test_rows_out_of_every_fold() -> None:
    split = make_split(
        SplitSpec(method="kfold", folds=4, test_size=0.2),
        _frame(),
        target="y",
        task="binary",
        seed=0,
    )
    assert len(split.test) == 20
    assert len(split.folds) == 4
    for train, valid in split.folds:
        assert not set(train) & set(split.test)
        assert not set(valid) & set(split.test)
        assert not set(train) & set(valid)
    covered = np.sort(np.concatenate([valid for _, valid in split.folds]))
    np.testing.assert_array_equal(covered, split.train)


def test_classification_folds_are_stratified() -> None:
    split = make_split(
        SplitSpec(method="kfold", folds=5, test_size=0.2),
        _frame(),
        target="y",
        task="binary",
        seed=0,
    )
    y = _frame()["y"].to_numpy()
    assert y[split.test].mean() == pytest.approx(0.5)
    for _, valid in split.folds:
        assert y[valid].mean() == pytest.approx(0.5)


def test_leave_one_out_on_three_rows_trains_on_two_and_validates_on_one() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]})
    split = make_split(
        SplitSpec(method="kfold", folds="loo", test_size=0),
        frame,
        target="y",
        task="regression",
        seed=0,
    )
    assert len(split.test) == 0
    assert [len(v) for _, v in split.folds] == [1, 1, 1]
    assert all(len(t) == 2 for t, _ in split.folds)


def test_more_folds_than_rows_says_to_use_leave_one_out() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]})
    with pytest.raises(ConfigError, match=r"split.folds has value 5, but only 3 rows.*loo"):
        make_split(SplitSpec(folds=5, test_size=0), frame, target="y", task="regression", seed=0)


def test_a_time_split_tests_on_the_latest_rows_and_validates_forward() -> None:
    frame = _frame()
    split = make_split(
        SplitSpec(method="time", time_column="t", folds=3, test_size=0.2),
        frame,
        target="y",
        task="regression",
        seed=0,
    )
    t = frame["t"].to_numpy()
    assert t[split.test].min() > t[split.train].max()
    for train, valid in split.folds:
        assert t[valid].min() > t[train].max()


def test_a_time_split_on_a_missing_column_lists_the_columns() -> None:
    with pytest.raises(ConfigError, match=r"split.time_column has value 'when'.*columns: x, y, t"):
        make_split(
            SplitSpec(method="time", time_column="when"),
            _frame(),
            target="y",
            task="regression",
            seed=0,
        )


def test_holdout_validates_on_one_split_of_the_training_rows() -> None:
    split = make_split(
        SplitSpec(method="holdout", valid_size=0.25, test_size=0.2),
        _frame(),
        target="y",
        task="regression",
        seed=0,
    )
    assert len(split.folds) == 1
    train, valid = split.folds[0]
    assert len(valid) == 20
    assert len(train) == 60


def test_the_same_seed_gives_the_same_split() -> None:
    a = make_split(SplitSpec(), _frame(), target="y", task="binary", seed=7)
    b = make_split(SplitSpec(), _frame(), target="y", task="binary", seed=7)
    np.testing.assert_array_equal(a.test, b.test)
