"""Connections to the metadata store: one :class:`Database` per store URI.

The constructor only records the URI (no I/O). The engine is made on first use, and on first
use the schema is brought to the current revision (see :mod:`loopml.store.migrations`).

Transactions come in two kinds. :meth:`Database.read` is an ordinary transaction. On SQLite,
:meth:`Database.write` starts with ``BEGIN IMMEDIATE`` so that the write lock is taken up
front: a read-modify-write that started as a reader and later needed the lock could otherwise
fail at once with "database is locked" instead of waiting out the busy timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from loopml.config import STORE_SCHEMES
from loopml.errors import BackendUnavailableError, MissingDependencyError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

__all__ = ["Database"]

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 60_000
SQLITE_MMAP_BYTES = 256 * 1024 * 1024  # address space, not memory: pages load on demand
_WRITE_OPTION = "loopml_write"


class Database:
    """A metadata store reached through SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, uri: str, *, auto_upgrade: bool = True) -> None:
        self.uri = uri
        self.auto_upgrade = auto_upgrade
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Database({self.safe_uri!r})"

    @property
    def safe_uri(self) -> str:
        """The URI with any password masked, for messages."""
        from sqlalchemy.engine import make_url

        return make_url(self.uri).render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self.uri.split(":", 1)[0].split("+", 1)[0]

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, created (and the schema upgraded) on first access."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    engine = _create_engine(self.uri)
                    if self.auto_upgrade:
                        from loopml.store.migrations import ensure_current

                        try:
                            with self._translated():
                                ensure_current(engine, self.safe_uri)
                        except BaseException:
                            engine.dispose()
                            raise
                    self._engine = engine
        return self._engine

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection inside a transaction, for queries."""
        with self._translated(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection inside a transaction that holds the write lock from its first statement."""
        with (
            self._translated(),
            self.engine.connect().execution_options(**{_WRITE_OPTION: True}) as conn,
            conn.begin(),
        ):
            yield conn

    def run_write(self, work: Callable[[Connection], T], *, attempts: int = 8) -> T:
        """Run ``work`` in a write transaction, retrying when the database is briefly busy.

        Busy-timeout covers SQLite lock waits; this also absorbs PostgreSQL serialization
        failures and deadlocks between concurrent writers, which are safe to retry because the
        transaction rolled back as a whole.
        """
        from sqlalchemy.exc import OperationalError

        delay = 0.05
        for attempt in range(attempts):
            try:
                with self.write() as conn:
                    return work(conn)
            except BackendUnavailableError as exc:
                cause = exc.__cause__
                if attempt == attempts - 1 or not (
                    isinstance(cause, OperationalError) and _is_transient(cause)
                ):
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def dispose(self) -> None:
        """Close pooled connections (call after fork and before dropping the object)."""
        if self._engine is not None:
            self._engine.dispose()

    @contextmanager
    def _translated(self) -> Iterator[None]:
        from sqlalchemy.exc import InterfaceError, OperationalError

        try:
            yield
        except (OperationalError, InterfaceError) as exc:
            raise BackendUnavailableError(
                f"the metadata store at {self.safe_uri} cannot be used: "
                f"{_first_line(exc.orig) if exc.orig else exc.__class__.__name__}",
                hint="check LOOPML_STORE_URI and that the database server is running",
            ) from exc


def _is_transient(exc: Exception) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return any(
        marker in text
        for marker in ("database is locked", "deadlock", "could not serialize", "busy")
    )


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _create_engine(uri: str) -> Engine:
    from sqlalchemy import create_engine, event

    scheme = uri.split("://", 1)[0]
    if scheme.startswith("postgresql"):
        if STORE_SCHEMES.get(scheme) and scheme == "postgresql":
            # A bare postgresql:// would pick psycopg2; we ship psycopg 3.
            uri = "postgresql+psycopg://" + uri.split("://", 1)[1]
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError(
                "a PostgreSQL metadata store needs the psycopg driver, which is not installed",
                hint="pip install 'loopml[postgres]'",
            ) from exc
        return create_engine(uri, pool_pre_ping=True, pool_size=5, max_overflow=10)

    if scheme == "sqlite":
        _make_sqlite_parent(uri)
        engine = create_engine(uri, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            # Read pages through a memory map instead of a read() copy per page: run searches
            # touch thousands of pages, and this takes about a fifth off their CPU time.
            cursor.execute(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            write = conn.get_execution_options().get(_WRITE_OPTION, False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    raise AssertionError(f"unchecked store scheme {scheme!r}")  # Settings validates schemes


def _make_sqlite_parent(uri: str) -> None:
    from pathlib import Path

    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
