"""Fixtures for the data tests: a dataset store on a scratch metadata store, small generated
files, a real threaded HTTP server on 127.0.0.1, and scratch PostgreSQL schemas."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from loopml.data import DatasetStore
from loopml.store import Database

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DatasetStore]:
    """A dataset store on SQLite with its artifact root in ``tmp_path``."""
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    yield DatasetStore(db, str(tmp_path / "artifacts"))
    db.dispose()


@pytest.fixture
def any_store(store_uri: str, tmp_path: Path) -> Iterator[DatasetStore]:
    """A dataset store whose metadata lives on SQLite and, marked postgres, on PostgreSQL."""
    db = Database(store_uri)
    yield DatasetStore(db, str(tmp_path / "artifacts"))
    db.dispose()


def make_frame(rows: int = 200, seed: int = 0) -> pl.DataFrame:
    """Like the benchmark's data, small: id, three numeric columns, two categorical."""
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "id": np.arange(rows),
            "x1": rng.normal(10, 2, rows),
            "x2": rng.uniform(0, 100, rows),
            "n": rng.integers(0, 50, rows),
            "city": rng.choice(["berlin", "paris", "rome"], rows),
            "tier": rng.choice(["a", "b"], rows),
        }
    )


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    make_frame().write_csv(path)
    return path


class Api:
    """A JSON API served from a thread: routes map a path to a handler(query, headers)."""

    def __init__(self) -> None:
        self.routes: dict[
            str, Callable[[dict[str, str], dict[str, str]], tuple[int, Any, dict[str, str]]]
        ] = {}
        self.calls: list[tuple[str, dict[str, str], dict[str, str]]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                from urllib.parse import parse_qsl, urlsplit

                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                headers = {k.lower(): v for k, v in self.headers.items()}
                api.calls.append((parts.path, query, headers))
                route = api.routes.get(parts.path)
                status, body, extra = route(query, headers) if route else (404, {"error": "no"}, {})
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def paths(self) -> list[str]:
        return [c[0] for c in self.calls]


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A scratch schema in the ``test`` database; yields a SQLAlchemy URL whose connections
    use it (search_path), dropped afterwards."""
    import sqlalchemy as sa

    name = f"loopml_data_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    try:
        yield f"{PG_SERVER}/test?options=-csearch_path%3D{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()
