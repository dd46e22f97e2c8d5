"""Fixtures for the project pipeline tests: small projects written into tmp_path, local stores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.config import Settings

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fresh SQLite store and artifact folder for one test."""
    return Settings(home=tmp_path / ".loopml")


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Factory: write ``frame`` as data.csv and ``yaml_text`` as loopml.yaml in a folder."""

    def make(yaml_text: str, frame: pd.DataFrame | None = None, name: str = "project") -> Path:
        folder = tmp_path / name
        folder.mkdir(parents=True, exist_ok=True)
        if frame is not None:
            frame.to_csv(folder / "data.csv", index=False)
        (folder / "loopml.yaml").write_text(yaml_text, encoding="utf-8")
        return folder

    return make


def binary_frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """A learnable binary problem with a numeric and a categorical input."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 15, n)
    region = rng.choice(["north", "south", "east"], n)
    logit = (income - 50) / 8 + np.where(region == "south", 1.0, -0.5)
    default = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"income": income.round(2), "region": region, "default": default})
