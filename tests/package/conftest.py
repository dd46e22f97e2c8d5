"""Fixtures for the packaging tests: a generated mixed-type data set and fitted pipelines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

# One entry per kind of column loopml's feature spec knows (see loopml.data.features).
FEATURES: list[dict[str, Any]] = [
    {"column": "age", "transform": "standardize"},
    {"column": "income", "transform": "log1p"},
    {"column": "city", "transform": "onehot"},
    {"column": "size", "transform": "ordinal", "categories": ["S", "M", "L"]},
    {"column": "score", "transform": "bucketize", "bins": 4},
    {"column": "tenure", "transform": "minmax"},
    {"column": "member", "transform": "passthrough"},
]


# Smaller ensembles than the candidates' defaults: the same converters, a fraction of the
# fitting time on a shared 2-core machine.
FAST: dict[str, dict[str, Any]] = {
    "random_forest": {"n_estimators": 40},
    "hist_gradient_boosting": {"max_iter": 30},
}


def make_frame(n: int, seed: int) -> pd.DataFrame:
    """Heterogeneous columns: int, float, string, bool — like a real customer table."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.lognormal(10, 0.6, n).round(2),
            "city": rng.choice(["paris", "lyon", "nice", "lille"], n),
            "size": rng.choice(["S", "M", "L"], n),
            "score": rng.uniform(0, 100, n).round(1),
            "tenure": rng.integers(0, 30, n).astype(np.float64),
            "member": rng.random(n) > 0.6,
        }
    )


def make_targets(frame: pd.DataFrame, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    signal = (
        0.03 * frame["age"]
        + 0.8 * np.log1p(frame["income"])
        + (frame["city"] == "paris") * 1.5
        + frame["size"].map({"S": 0.0, "M": 0.5, "L": 1.0})
        + 0.01 * frame["score"]
        + 0.05 * frame["tenure"]
        + frame["member"] * 0.7
    ).to_numpy()
    noisy = signal + rng.normal(0, 0.3, len(frame))
    cuts = np.quantile(noisy, [1 / 3, 2 / 3])
    return {
        "regression": noisy * 1000.0,
        "binary": np.where(noisy > np.median(noisy), "approved", "declined"),
        "multiclass": np.digitize(noisy, cuts),
    }


@pytest.fixture(scope="session")
def train_frame() -> pd.DataFrame:
    return make_frame(300, seed=1)


@pytest.fixture(scope="session")
def holdout_frame() -> pd.DataFrame:
    return make_frame(120, seed=2)


@pytest.fixture(scope="session")
def targets(train_frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return make_targets(train_frame, seed=3)


@pytest.fixture(scope="session")
def fit_candidate(train_frame: pd.DataFrame, targets: dict[str, np.ndarray]) -> Callable[..., Any]:
    """Build and fit training's own pipeline (feature transform + candidate) for a task."""
    from loopml.data.features import build_column_transformer
    from loopml.train.candidates import build_pipeline

    cache: dict[tuple[str, str, str], Any] = {}

    def fit(name: str, task: str, **params: Any) -> Any:
        params = {**FAST.get(name, {}), **params}
        key = (name, task, repr(sorted(params.items())))
        if key not in cache:
            pipeline = build_pipeline(
                name, task, params, transformer=build_column_transformer(FEATURES), seed=0
            )
            cache[key] = pipeline.fit(train_frame, targets[task])
        return cache[key]

    return fit
