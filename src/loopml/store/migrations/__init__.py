"""Schema migrations: Alembic revisions shipped inside the package, applied automatically.

Checking the revision is a single query, so ordinary start-up never imports Alembic; it is
loaded only when an upgrade is due. An upgrade holds a lock (an advisory lock on PostgreSQL,
the write lock on SQLite) so that processes starting together do not migrate twice.
A database whose revision this loopml does not know (made by a newer release) is refused,
never altered.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from loopml.errors import ConflictError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine

__all__ = ["HEAD", "current_revision", "ensure_current", "upgrade"]

# The newest revision in versions/; tests check it matches Alembic's own view of the head.
HEAD = "0004"
KNOWN_REVISIONS = ("0001", "0002", "0003", "0004")

_LOCK_KEY = 0x6C6F6F70  # "loop"


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def current_revision(conn: Connection) -> str | None:
    """The schema revision recorded in the store, or None for an empty database."""
    from sqlalchemy import inspect, text

    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, target: str = "head") -> None:
    """Bring the schema to ``target`` (idempotent: a current store is left as it is)."""
    from alembic import command

    with engine.connect().execution_options(loopml_write=True) as conn, conn.begin():
        _lock(conn)
        cfg = alembic_config(conn)
        command.upgrade(cfg, target)


def ensure_current(engine: Engine, safe_uri: str) -> None:
    """Upgrade the store if it is behind; refuse one made by a newer loopml."""
    with engine.connect() as conn:
        revision = current_revision(conn)
        conn.rollback()
    if revision == HEAD:
        return
    if revision is not None and revision not in KNOWN_REVISIONS:
        raise ConflictError(
            f"the metadata store at {safe_uri} has schema revision {revision!r}, "
            f"newer than this loopml knows (latest {HEAD!r})",
            hint="upgrade loopml (pip install -U loopml) before using this store",
        )
    upgrade(engine)


def _lock(conn: Connection) -> None:
    from sqlalchemy import text

    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    # SQLite: BEGIN IMMEDIATE (loopml_write) already holds the database's write lock.
