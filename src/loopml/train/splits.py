"""How a dataset is divided: a held-out test split, and validation folds over the rest.

Three methods, chosen by ``split.method`` in ``loopml.yaml``:

``holdout``
    one validation split of ``valid_size`` of the training rows;
``kfold``
    ``folds`` folds (stratified for classification when every class can be), or leave-one-out
    with ``folds: loo`` — the sensible choice for a handful of rows;
``time``
    rows ordered by ``time_column``: the test split is the latest ``test_size`` of them and the
    folds are expanding windows (each validates on a later block than it trains on), so that
    no model is scored on the past after seeing the future.

The test split (``test_size`` of the rows, 0 for none) is set aside before any search and is
only used once, to score the selected model. With ``test_size: 0`` there is no test split;
the selected model is then scored on its out-of-fold predictions instead.

All indices are row positions in the frame given to :func:`make_split`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from loopml.train.project import SplitSpec

__all__ = ["Split", "make_split"]

Fold = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Split:
    """Row positions: ``train`` (everything not in ``test``), ``test``, and the folds."""

    train: np.ndarray
    test: np.ndarray
    folds: list[Fold]
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """A small JSON-able summary for tracking and reports."""
        return {
            "train_rows": len(self.train),
            "test_rows": len(self.test),
            "folds": len(self.folds),
            "fold_sizes": [len(valid) for _, valid in self.folds][:20],
            "notes": list(self.notes),
        }


def make_split(spec: SplitSpec, frame: pd.DataFrame, *, target: str, task: str, seed: int) -> Split:
    """Divide ``frame`` according to ``spec``; raises :class:`ConfigError` when impossible."""
    n = len(frame)
    notes: list[str] = []
    labels = frame[target].to_numpy() if task != "regression" else None
    if spec.method == "time":
        column = spec.time_column
        if column is None or column not in frame.columns:
            raise ConfigError(
                f"split.time_column has value {column!r}, which is not a column of the data",
                hint=f"columns: {', '.join(map(str, frame.columns))}",
            )
        order = np.argsort(frame[column].to_numpy(), kind="mergesort")
        n_test = _count(spec.test_size, n)
        train, test = order[: n - n_test], order[n - n_test :]
    else:
        train, test = _test_split(spec, n, labels, seed, notes)
    if len(train) < 2:
        raise ConfigError(
            f"split.test_size has value {spec.test_size}, leaving {len(train)} training row(s) "
            f"of {n}",
            hint="lower split.test_size (0 keeps every row for training and cross-validation)",
        )
    folds = _folds(spec, train, labels, seed, notes)
    return Split(
        train=np.sort(train) if spec.method != "time" else train,
        test=np.sort(test),
        folds=folds,
        notes=notes,
    )


def _count(fraction: float, n: int) -> int:
    return round(fraction * n) if fraction > 0 else 0


def _stratifiable(labels: np.ndarray | None, n_groups: int) -> bool:
    if labels is None:
        return False
    _, counts = np.unique(labels.astype(str), return_counts=True)
    return len(counts) > 1 and counts.min() >= n_groups


def _test_split(
    spec: SplitSpec, n: int, labels: np.ndarray | None, seed: int, notes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    n_test = _count(spec.test_size, n)
    everything = np.arange(n)
    if n_test == 0:
        return everything, np.array([], dtype=np.int64)
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    if spec.stratify and _stratifiable(labels, 2):
        splitter: Any = StratifiedShuffleSplit(n_splits=1, test_size=n_test, random_state=seed)
    else:
        if spec.stratify and labels is not None:
            notes.append("test split not stratified: a class has fewer than 2 rows")
        splitter = ShuffleSplit(n_splits=1, test_size=n_test, random_state=seed)
    train, test = next(splitter.split(everything, labels))
    return train, test


def _folds(
    spec: SplitSpec, train: np.ndarray, labels: np.ndarray | None, seed: int, notes: list[str]
) -> list[Fold]:
    from sklearn import model_selection as ms

    m = len(train)
    sub_labels = None if labels is None else labels[train]
    if spec.method == "holdout":
        n_valid = max(1, _count(spec.valid_size, m))
        if n_valid >= m:
            raise ConfigError(
                f"split.valid_size has value {spec.valid_size}, leaving no rows to fit on "
                f"among {m}",
                hint="lower split.valid_size, or use method: kfold with folds: loo",
            )
        if spec.stratify and _stratifiable(sub_labels, 2):
            splitter: Any = ms.StratifiedShuffleSplit(1, test_size=n_valid, random_state=seed)
        else:
            splitter = ms.ShuffleSplit(1, test_size=n_valid, random_state=seed)
    elif spec.folds == "loo":
        splitter = ms.LeaveOneOut()
    else:
        k = int(spec.folds)
        if k > m:
            raise ConfigError(
                f"split.folds has value {k}, but only {m} rows are left for training",
                hint="use fewer folds, or folds: loo (leave-one-out) for very small data",
            )
        if spec.method == "time":
            splitter = ms.TimeSeriesSplit(n_splits=k)
        elif spec.stratify and _stratifiable(sub_labels, k):
            splitter = ms.StratifiedKFold(k, shuffle=spec.shuffle, random_state=_rs(spec, seed))
        else:
            if spec.stratify and sub_labels is not None:
                notes.append(f"folds not stratified: a class has fewer than {k} rows")
            splitter = ms.KFold(k, shuffle=spec.shuffle, random_state=_rs(spec, seed))
    return [(train[a], train[b]) for a, b in splitter.split(np.zeros(m), sub_labels)]


def _rs(spec: SplitSpec, seed: int) -> int | None:
    return seed if spec.shuffle else None
