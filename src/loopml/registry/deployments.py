"""Deployments: which server serves which registered models, and the traffic split between them.

A *deployment* is one server, named ``host:port`` unless its project names it, with one row
per registered model it serves: the references it serves (``churn@champion``,
``churn@challenger``), the traffic policy between them, and whether it is ``running`` or
``stopped``. The server writes its rows when it starts and when it stops; a traffic change
(admin API, ``loopml serve traffic``) is written here, audited like a registry change, and
every worker of the server picks it up by polling :meth:`Deployments.traffic`.

Starting is keyed by a launch time so that the workers of one server can all call
:meth:`Deployments.start`: the first one to arrive replaces what an earlier launch left
(its traffic must not override the new server's), the others find the row already newer than
their launch and leave it, including any traffic change made in between.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInputError, NotFoundError
from loopml.registry import audit
from loopml.registry.entities import AuditEvent, Deployment

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from loopml.config import Settings
    from loopml.store import Database

__all__ = ["RUNNING", "STOPPED", "Deployments"]

RUNNING = "running"
STOPPED = "stopped"
_ENTITY = "deployment"
_MAX_NAME = 256


class Deployments:
    """The ``deployments`` table of one metadata store."""

    def __init__(self, database: Database) -> None:
        self.db = database

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Deployments:
        from loopml.config import Settings
        from loopml.store import Database

        settings = settings or Settings.from_env()
        return cls(Database(str(settings.store_uri)))

    # --- a server's life -----------------------------------------------------------------------

    def start(
        self,
        name: str,
        served: Mapping[str, Sequence[str]],
        traffic: Mapping[str, Mapping[str, Any] | None] | None = None,
        *,
        launched_at: int,
        actor: str | None = None,
    ) -> list[Deployment]:
        """Record that deployment ``name`` (launched at ``launched_at``, ms) is running.

        ``served`` maps each registered model to the references served for it; ``traffic``
        the initial policy of some of them. Rows left by an earlier launch are replaced, and
        its models this launch does not serve are marked stopped. Rows this launch already
        wrote (another worker got here first) are left as they are.
        """
        _check_name(name)
        policies = dict(traffic or {})
        unknown = sorted(set(policies) - set(served))
        if unknown:
            raise InvalidInputError(
                f"deployment {name!r} has traffic for {unknown}, which it does not serve",
                hint=f"served models: {', '.join(served) or '(none)'}",
            )

        def work(conn: Connection) -> None:
            from sqlalchemy import insert, select, update

            from loopml.store.models import Deployment as Row
            from loopml.store.models import RegisteredModel as ModelRow

            now = _now()
            who = _actor(actor)
            query = select(Row).where(Row.name == name)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            rows = {row.model_name: row for row in conn.execute(query)}
            for model_name, refs in served.items():
                row = rows.get(model_name)
                after = {
                    "targets": list(refs),
                    "traffic": _plain(policies.get(model_name)),
                    "status": RUNNING,
                }
                if row is None:
                    exists = conn.execute(select(ModelRow.name).where(ModelRow.name == model_name))
                    if exists.first() is None:
                        raise NotFoundError(
                            f"deployment {name!r} serves {model_name!r}, "
                            "which is not a registered model",
                            hint="register it first (loopml run), or serve the file with "
                            "--model-file",
                        )
                    conn.execute(
                        insert(Row).values(
                            name=name,
                            model_name=model_name,
                            target=",".join(refs),
                            traffic=after["traffic"],
                            status=RUNNING,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                    _audit(conn, who, "start_deployment", name, model_name, None, after, now)
                elif row.updated_at < launched_at:
                    conn.execute(
                        update(Row)
                        .where(Row.deployment_id == row.deployment_id)
                        .values(
                            target=",".join(refs),
                            traffic=after["traffic"],
                            status=RUNNING,
                            updated_at=now,
                        )
                    )
                    _audit(conn, who, "start_deployment", name, model_name, _state(row), after, now)
            for model_name, row in rows.items():
                if (
                    model_name not in served
                    and row.status != STOPPED
                    and row.updated_at < launched_at
                ):
                    _mark_stopped(conn, row, who, now)

        from sqlalchemy.exc import IntegrityError

        try:
            self.db.run_write(work)
        except IntegrityError:
            # Another worker of this launch inserted the row between our read and our insert;
            # the transaction rolled back whole, and this time the row is there to find.
            self.db.run_write(work)
        return [d for d in self.list_deployments(name) if d.model_name in served]

    def set_traffic(
        self,
        name: str,
        model_name: str,
        traffic: Mapping[str, Any] | None,
        *,
        actor: str | None = None,
    ) -> Deployment:
        """Change the traffic policy of ``model_name`` in deployment ``name`` (audited)."""
        policy = _plain(traffic)

        def work(conn: Connection) -> None:
            from sqlalchemy import update

            from loopml.store.models import Deployment as Row

            row = self._row(conn, name, model_name, lock=True)
            if row.traffic == policy:
                return  # nothing changes, so nothing to audit
            now = _now()
            conn.execute(
                update(Row)
                .where(Row.deployment_id == row.deployment_id)
                .values(traffic=policy, updated_at=now)
            )
            _audit(
                conn,
                _actor(actor),
                "set_traffic",
                name,
                model_name,
                {"traffic": row.traffic},
                {"traffic": policy},
                now,
            )

        self.db.run_write(work)
        return self.get(name, model_name)

    def stop(self, name: str, *, actor: str | None = None) -> list[Deployment]:
        """Mark every running model of deployment ``name`` stopped (a graceful shutdown)."""

        def work(conn: Connection) -> None:
            from sqlalchemy import select

            from loopml.store.models import Deployment as Row

            now = _now()
            who = _actor(actor)
            query = select(Row).where(Row.name == name, Row.status != STOPPED)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            for row in conn.execute(query).all():
                _mark_stopped(conn, row, who, now)

        self.db.run_write(work)
        return self.list_deployments(name)

    # --- reading -------------------------------------------------------------------------------

    def traffic(self, name: str) -> dict[str, dict[str, Any] | None]:
        """``{model: policy}`` of deployment ``name``: the one query workers poll."""
        from sqlalchemy import select

        from loopml.store.models import Deployment as Row

        with self.db.read() as conn:
            rows = conn.execute(select(Row.model_name, Row.traffic).where(Row.name == name))
            return {str(row[0]): row[1] for row in rows}

    def get(self, name: str, model_name: str) -> Deployment:
        with self.db.read() as conn:
            return _entity(self._row(conn, name, model_name))

    def list_deployments(
        self, name: str | None = None, *, status: str | None = None
    ) -> list[Deployment]:
        """Deployments by name then model, optionally only one name or one status."""
        from sqlalchemy import select

        from loopml.store.models import Deployment as Row

        query = select(Row).order_by(Row.name, Row.model_name)
        if name is not None:
            query = query.where(Row.name == name)
        if status is not None:
            query = query.where(Row.status == status)
        with self.db.read() as conn:
            return [_entity(row) for row in conn.execute(query)]

    def history(self, name: str, *, limit: int = 1000) -> list[AuditEvent]:
        """Audit events of deployment ``name`` (starts, traffic changes, stops), newest first."""
        from sqlalchemy import select

        from loopml.store.models import AuditEvent as AuditRow

        query = (
            select(AuditRow)
            .where(
                AuditRow.entity_type == _ENTITY,
                AuditRow.entity_id.startswith(f"{name}/", autoescape=True),
            )
            .order_by(AuditRow.id.desc())
            .limit(limit)
        )
        with self.db.read() as conn:
            return audit.run_query(conn, query)

    def _row(self, conn: Connection, name: str, model_name: str, *, lock: bool = False) -> Any:
        from sqlalchemy import select

        from loopml.store.models import Deployment as Row

        query = select(Row).where(Row.name == name, Row.model_name == model_name)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(
                f"deployment {name!r} does not serve model {model_name!r}",
                hint="list deployments with `loopml serve list`",
            )
        return row


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME or "/" in name:
        raise InvalidInputError(
            f"deployment name {name!r} is not valid",
            hint=f"use up to {_MAX_NAME} characters without '/', e.g. 127.0.0.1:8000 or churn-api",
        )


def _plain(traffic: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if traffic is None else dict(traffic)


def _state(row: Any) -> dict[str, Any]:
    return {"targets": _targets(row.target), "traffic": row.traffic, "status": row.status}


def _targets(text: str) -> list[str]:
    return [ref for ref in text.split(",") if ref]


def _entity(row: Any) -> Deployment:
    return Deployment(
        name=row.name,
        model_name=row.model_name,
        targets=tuple(_targets(row.target)),
        traffic=row.traffic,
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _mark_stopped(conn: Connection, row: Any, who: str, now: int) -> None:
    """Set one deployment row to stopped, with its audit event."""
    from sqlalchemy import update

    from loopml.store.models import Deployment as Row

    conn.execute(
        update(Row)
        .where(Row.deployment_id == row.deployment_id)
        .values(status=STOPPED, updated_at=now)
    )
    before = _state(row)
    _audit(
        conn,
        who,
        "stop_deployment",
        row.name,
        row.model_name,
        before,
        {**before, "status": STOPPED},
        now,
    )


def _audit(
    conn: Connection,
    actor: str,
    action: str,
    name: str,
    model_name: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    at: int,
) -> None:
    audit.record(
        conn,
        actor=actor,
        action=action,
        entity_type=_ENTITY,
        entity_id=f"{name}/{model_name}",
        before=before,
        after=after,
        at=at,
    )


def _now() -> int:
    from loopml.tracking.store import now_ms

    return now_ms()


def _actor(actor: str | None) -> str:
    if actor:
        return actor[:_MAX_NAME]
    from loopml.tracking.environment import current_user

    return current_user()
