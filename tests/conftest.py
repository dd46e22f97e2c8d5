"""Fixtures shared by the whole suite: stores on SQLite and on the real local PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml.config import Settings

PG_SERVER = os.environ.get("LOOPML_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
PG_ADMIN_URI = f"{PG_SERVER}/test"


def _admin_execute(*statements: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN_URI, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


@pytest.fixture
def make_pg_database() -> Iterator[object]:
    """Factory: a fresh, empty PostgreSQL database per call, dropped after the test."""
    created: list[str] = []

    def make() -> str:
        name = f"loopml_t_{uuid.uuid4().hex[:12]}"
        _admin_execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return f"{PG_SERVER}/{name}"

    yield make
    for name in created:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def shared_pg_uri() -> Iterator[str]:
    """One migrated PostgreSQL database for the session; tests empty it before use."""
    from loopml.store import Database

    name = f"loopml_s_{uuid.uuid4().hex[:12]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    uri = f"{PG_SERVER}/{name}"
    Database(uri).engine.dispose()  # migrate once
    yield uri
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate_all(uri: str) -> None:
    import sqlalchemy as sa

    from loopml.store.models import Base

    engine = sa.create_engine(uri)
    try:
        with engine.begin() as conn:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URI of an empty, migrated metadata store: once SQLite, once PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'loopml.db'}"
    uri: str = request.getfixturevalue("shared_pg_uri")
    _truncate_all(uri)
    return uri


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def empty_store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URI of a brand-new database with no tables at all (for migration tests)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'loopml.db'}"
    return request.getfixturevalue("make_pg_database")()


@pytest.fixture
def settings(store_uri: str, tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home", store_uri=store_uri, artifact_uri=str(tmp_path / "artifacts")
    )


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def client(settings: Settings) -> Iterator[object]:
    """A tracking client on the parametrized store; closed (flushed) after the test."""
    from loopml import Client

    c = Client(settings)
    yield c
    c.close()


@pytest.fixture
def fluent(settings: Settings) -> Iterator[object]:
    """The module-level API pointed at the parametrized store, reset after the test."""
    import loopml
    from loopml.tracking import fluent as fluent_module

    loopml.set_tracking_uri(settings.store_uri, artifact_uri=settings.artifact_uri)
    yield loopml
    while fluent_module.active_run() is not None:
        fluent_module.end_run()
    loopml.set_tracking_uri(None)


class MotoS3:
    """A moto S3 server: its endpoint, and a way to make buckets on it."""

    def __init__(self, endpoint: str) -> None:
        import boto3

        self.endpoint = endpoint
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists."""
        if bucket not in {b["Name"] for b in self.client.list_buckets().get("Buckets", [])}:
            self.client.create_bucket(Bucket=bucket)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """A real S3 HTTP API (moto) on 127.0.0.1, in its own process.

    Its own process, not a thread: deltalake and polars call S3 from Rust while holding the
    GIL, so a server thread inside the test process would never get to answer. Tests create
    their own buckets (credentials: ``testing`` / ``testing``, region ``us-east-1``).
    """
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    s3 = MotoS3(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    while True:
        try:
            s3.client.list_buckets()
            break
        except Exception:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.2)
    try:
        yield s3
    finally:
        server.terminate()
        server.wait(timeout=10)
