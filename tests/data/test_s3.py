"""Datasets on S3: the same store code against a real S3 HTTP API (moto on 127.0.0.1)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from loopml.data import CleaningSpec, DatasetStore
from loopml.store import Database

from .conftest import make_frame

BUCKET = "loopml-data-test"


@pytest.fixture(scope="module")
def s3_options(moto_s3: Any) -> dict[str, Any]:
    """s3fs-style options, as for the artifact store, pointing at the moto server."""
    moto_s3.create_bucket(BUCKET)
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": moto_s3.endpoint, "region_name": "us-east-1"},
    }


def test_versions_quarantine_and_time_travel_work_on_s3(
    tmp_path: Path, s3_options: dict[str, Any]
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    root = f"s3://{BUCKET}/{uuid.uuid4().hex}"
    store = DatasetStore(db, root, storage_options=s3_options)
    path = tmp_path / "d.csv"
    frame = make_frame(100)
    pl.concat([frame, frame.head(3)]).write_csv(path)
    first = store.ingest(str(path), "d", clean=CleaningSpec.default())
    assert (first.rows, first.quarantined) == (100, 3)
    assert store.get_version("d@1").uri.startswith(f"{root}/datasets/d/table?version=")
    make_frame(40, seed=5).write_csv(path)
    store.ingest(str(path), "d")
    assert store.read("d@1", as_="polars").equals(frame)
    assert store.read("d@2", as_="polars").height == 40
    assert store.quarantine("d@1", as_="polars").height == 3
    assert "<svg" in store.report("d@1")
    assert store.ingest(str(path), "d").reused
    db.dispose()
