"""Fixtures for CLI tests: every test gets its own, empty LOOPML_HOME."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def loopml_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh LOOPML_HOME (SQLite store and artifacts inside it), set in the environment."""
    home = tmp_path / "loopml-home"
    monkeypatch.setenv("LOOPML_HOME", str(home))
    for name in ("LOOPML_STORE_URI", "LOOPML_ARTIFACT_URI", "LOOPML_HEARTBEAT_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    return home
