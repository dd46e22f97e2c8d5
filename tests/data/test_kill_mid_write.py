"""A killed ingestion never leaves a half-written version (SIGKILL in a child process)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from loopml.data import DatasetStore
from loopml.store import Database

from .conftest import make_frame

CHILD = """
import os, signal, sys
from loopml.data import DatasetStore
from loopml.store import Database

db, root, source, stage, after, incremental = sys.argv[1:7]

def progress(name, rows):
    if name == stage and rows >= int(after):
        os.kill(os.getpid(), signal.SIGKILL)

store = DatasetStore(Database(db), root)
store.ingest(source, "big", progress=progress, batch_rows=5000, incremental=incremental == "1")
"""


def _ingest_and_die(tmp_path: Path, source: str, stage: str, after: int, incremental: bool) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            f"sqlite:///{tmp_path / 'meta.db'}",
            str(tmp_path / "art"),
            source,
            stage,
            str(after),
            "1" if incremental else "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    yield DatasetStore(db, str(tmp_path / "art"))
    db.dispose()


@pytest.mark.slow
def test_killed_while_streaming_rows_leaves_no_version(tmp_path: Path, store: DatasetStore) -> None:
    from deltalake import DeltaTable

    path = tmp_path / "big.csv"
    make_frame(60_000).write_csv(path)
    _ingest_and_die(tmp_path, str(path), "read", 20_000, incremental=False)
    assert store.versions("big") == []
    table = Path(store.table_uri("big"))
    assert list(table.glob("*.parquet")), "the child should have been killed mid-file"
    assert not DeltaTable.is_deltatable(str(table))
    result = store.ingest(str(path), "big")
    assert (result.version, result.rows) == (1, 60_000)
    assert store.read("big@1", as_="polars").equals(pl.read_csv(path))


@pytest.mark.slow
def test_killed_after_the_delta_commit_is_invisible_and_not_appended_twice(
    tmp_path: Path, store: DatasetStore
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    make_frame(8_000, seed=1).write_csv(folder / "a.csv")
    source = str(folder / "*.csv")
    first = store.ingest(source, "big", incremental=True)
    make_frame(6_000, seed=2).with_columns(pl.col("id") + 10_000).write_csv(folder / "b.csv")
    _ingest_and_die(tmp_path, source, "profile", 0, incremental=True)
    assert [v.version for v in store.versions("big")] == [1]
    assert store.read("big@latest", as_="polars").height == first.rows
    again = store.ingest(source, "big", incremental=True)
    assert (again.version, again.rows, again.row_count) == (2, 6_000, 14_000)
    rows = store.read("big@2", as_="polars")
    assert rows.height == 14_000
    assert rows["id"].n_unique() == 14_000
