"""Fixtures for the training tests: a local store per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fresh SQLite store and artifact folder for one test."""
    return Settings(home=tmp_path / ".loopml")
