"""The state of a store's schema, read without changing it, and the explicit upgrade.

Ordinary use upgrades a store on first contact (see :mod:`loopml.store.migrations`); these two
functions are for people looking after a store (``loopml db status`` / ``loopml db upgrade``).
:func:`schema_status` never migrates and never creates a SQLite file that is not there yet, so
asking about a store leaves it exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from loopml.store.database import Database

__all__ = ["SchemaStatus", "schema_status", "upgrade_schema"]


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a store stands: its recorded revision against the head this loopml ships."""

    uri: str  # password masked
    revision: str | None  # None: no schema yet (created on first use)
    head: str
    tables: dict[str, int] = field(default_factory=dict)  # loopml table -> row count

    @property
    def state(self) -> str:
        """``empty``, ``current``, ``behind`` (upgraded on next use) or ``newer`` (refused)."""
        from loopml.store.migrations import KNOWN_REVISIONS

        if self.revision is None:
            return "empty"
        if self.revision == self.head:
            return "current"
        return "behind" if self.revision in KNOWN_REVISIONS else "newer"


def schema_status(store_uri: str) -> SchemaStatus:
    """Revision, head and row count of every loopml table in the store at ``store_uri``."""
    from sqlalchemy import func, inspect, select

    from loopml.store.migrations import HEAD, current_revision
    from loopml.store.models import Base

    database = Database(store_uri, auto_upgrade=False)
    if _missing_sqlite_file(store_uri):
        return SchemaStatus(uri=database.safe_uri, revision=None, head=HEAD)
    try:
        with database.read() as conn:
            revision = current_revision(conn)
            present = set(inspect(conn).get_table_names())
            counts = {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in sorted(Base.metadata.tables.items())
                if name in present
            }
    finally:
        database.dispose()
    return SchemaStatus(uri=database.safe_uri, revision=revision, head=HEAD, tables=counts)


def upgrade_schema(store_uri: str) -> tuple[str | None, str | None]:
    """Bring the store to head now; returns the revision before and after (idempotent).

    Goes through the same locked path as the automatic upgrade, so it is safe while other
    processes use the store, and it refuses a store made by a newer loopml.
    """
    from loopml.store.migrations import current_revision

    before = schema_status(store_uri).revision
    database = Database(store_uri)
    try:
        with database.read() as conn:
            after = current_revision(conn)
    finally:
        database.dispose()
    return before, after


def _missing_sqlite_file(store_uri: str) -> bool:
    from sqlalchemy.engine import make_url

    url = make_url(store_uri)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return False
    return not Path(url.database).expanduser().exists()
