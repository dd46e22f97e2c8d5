"""The append-only audit log: one row per registry change, written in the change's transaction.

Nothing in loopml updates or deletes audit rows; :func:`record` is the only writer, and it
takes the open connection of the change it describes so that the change and its record
commit or roll back together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.registry.entities import AuditEvent

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


def record(
    conn: Connection,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    at: int,
) -> None:
    from sqlalchemy import insert

    from loopml.store.models import AuditEvent as AuditRow

    conn.execute(
        insert(AuditRow).values(
            at=at,
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            before=before,
            after=after,
        )
    )


def events(
    conn: Connection,
    *,
    entity_prefix: str | None = None,
    entity_type: str | None = None,
    limit: int = 1000,
) -> list[AuditEvent]:
    from sqlalchemy import select

    from loopml.store.models import AuditEvent as AuditRow

    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    if entity_type is not None:
        query = query.where(AuditRow.entity_type == entity_type)
    if entity_prefix is not None:
        query = query.where(
            (AuditRow.entity_id == entity_prefix)
            | AuditRow.entity_id.startswith(entity_prefix + ":", autoescape=True)
            | AuditRow.entity_id.startswith(entity_prefix + "@", autoescape=True)
        )
    return run_query(conn, query)


def run_query(conn: Connection, query: Any) -> list[AuditEvent]:
    """The audit events a ``select`` of audit rows returns."""
    return [
        AuditEvent(
            id=r.id,
            at=r.at,
            actor=r.actor,
            action=r.action,
            entity_type=r.entity_type,
            entity_id=r.entity_id,
            before=r.before,
            after=r.after,
        )
        for r in conn.execute(query)
    ]
