"""The logging hot path in plain SQL, run on the driver's cursor inside SQLAlchemy's transaction.

Creating a run and writing a run's buffered values are the two transactions a training loop
makes thousands of times. Measured per run of ``benchmarks/tracking.py`` (d) on SQLite, a
SQLAlchemy Core statement cost 20-40 µs of Python around 2-10 µs of SQLite work, so the
statements of those two transactions are written here as SQL text and executed on the DBAPI
cursor of the SQLAlchemy connection. SQLAlchemy still owns the connection, the transaction
(``BEGIN IMMEDIATE`` on SQLite), commit and rollback; driver errors are wrapped exactly as
SQLAlchemy wraps them (:meth:`sqlalchemy.exc.DBAPIError.instance`), so
:class:`~loopml.store.Database` translates and retries them as before.

The SQL is the same on SQLite and PostgreSQL (``INSERT ... ON CONFLICT`` exists in both) apart
from the placeholder and ``FOR UPDATE``; every identifier is double-quoted, which both accept
(``key``, ``value`` and ``user`` are keywords). Values are bound as the Core path bound them:
floats, ints, bools, strings, and the run's environment as ``json.dumps`` text. Column names
follow :mod:`loopml.store.models`; the contract tests run this on both databases.

Upserts off the hot path (registry, artifact index, run inputs) stay in SQLAlchemy Core:
:func:`upsert`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

__all__ = ["RUN_COLUMNS", "HotCursor", "upsert", "upsert_statement"]

# The columns create_run writes, in the order HotCursor.insert_run takes them.
RUN_COLUMNS = (
    "run_id",
    "experiment_id",
    "name",
    "status",
    "start_time",
    "heartbeat_at",
    "parent_run_id",
    "user",
    "source",
    "git_commit",
    "git_dirty",
    "environment",
    "artifact_uri",
    "lifecycle_stage",
    "summary",
)
_METRIC_COLUMNS = ("run_id", "key", "value", "is_nan", "step", "timestamp")


@dataclass(frozen=True)
class _SQL:
    mark: str
    experiment_exists: str
    run_exists: str
    insert_run: str
    run_summary: str
    params_of: str  # ends with "IN (", completed per call
    insert_params: str
    upsert_tags: str
    insert_metrics: str
    latest_of: str  # ends with "IN (", completed per call
    upsert_latest: str
    update_run: str
    end_run: str


@functools.cache
def _sql(dialect: str) -> _SQL:
    mark = "?" if dialect == "sqlite" else "%s"  # sqlite3: qmark; psycopg: format

    def insert(table: str, columns: Sequence[str]) -> str:
        names = ", ".join(f'"{c}"' for c in columns)
        return f'INSERT INTO "{table}" ({names}) VALUES ({", ".join(mark for _ in columns)})'

    def upsert_sql(table: str, columns: Sequence[str], keys: Sequence[str]) -> str:
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in keys)
        conflict = ", ".join(f'"{k}"' for k in keys)
        return f"{insert(table, columns)} ON CONFLICT ({conflict}) DO UPDATE SET {updates}"

    lock = " FOR UPDATE" if dialect == "postgresql" else ""
    return _SQL(
        mark=mark,
        experiment_exists=f'SELECT 1 FROM "experiments" WHERE "experiment_id" = {mark}',
        run_exists=f'SELECT 1 FROM "runs" WHERE "run_id" = {mark}',
        insert_run=insert("runs", RUN_COLUMNS),
        run_summary=f'SELECT "summary", "status" FROM "runs" WHERE "run_id" = {mark}{lock}',
        params_of=f'SELECT "key", "value" FROM "params" WHERE "run_id" = {mark} AND "key" IN (',
        insert_params=insert("params", ("run_id", "key", "value")),
        upsert_tags=upsert_sql("tags", ("run_id", "key", "value"), ("run_id", "key")),
        insert_metrics=insert("metrics", _METRIC_COLUMNS),
        latest_of=(
            f'SELECT "key", "step", "timestamp" FROM "latest_metrics" '
            f'WHERE "run_id" = {mark} AND "key" IN ('
        ),
        upsert_latest=upsert_sql("latest_metrics", _METRIC_COLUMNS, ("run_id", "key")),
        update_run=(
            f'UPDATE "runs" SET "summary" = {mark}, "heartbeat_at" = {mark} WHERE "run_id" = {mark}'
        ),
        end_run=(
            f'UPDATE "runs" SET "summary" = {mark}, "heartbeat_at" = {mark}, "status" = {mark}, '
            f'"end_time" = {mark} WHERE "run_id" = {mark}'
        ),
    )


class HotCursor:
    """The hot-path statements, on the DBAPI cursor of ``conn`` (inside its transaction)."""

    def __init__(self, conn: Connection) -> None:
        self._dialect = conn.dialect
        self._cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        self._sql = _sql(conn.dialect.name)

    # --- runs ---------------------------------------------------------------------------------

    def experiment_exists(self, experiment_id: int) -> bool:
        return bool(self._fetch(self._sql.experiment_exists, (experiment_id,)))

    def run_exists(self, run_id: str) -> bool:
        return bool(self._fetch(self._sql.run_exists, (run_id,)))

    def insert_run(self, values: Mapping[str, Any]) -> None:
        """Insert a run from ``values`` keyed by :data:`RUN_COLUMNS`."""
        row = [values[c] for c in RUN_COLUMNS]
        environment = RUN_COLUMNS.index("environment")
        row[environment] = json.dumps(row[environment])  # as SQLAlchemy's JSON type binds it
        self._run(self._sql.insert_run, tuple(row))

    def run_summary(self, run_id: str) -> tuple[str, str] | None:
        """(summary JSON, status) of the run, row-locked on PostgreSQL; None if it is absent."""
        rows = self._fetch(self._sql.run_summary, (run_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    def update_run(
        self, run_id: str, summary: str, heartbeat_at: int, end: tuple[str, int] | None = None
    ) -> None:
        if end is None:
            self._run(self._sql.update_run, (summary, heartbeat_at, run_id))
        else:
            self._run(self._sql.end_run, (summary, heartbeat_at, end[0], end[1], run_id))

    # --- params and tags ----------------------------------------------------------------------

    def params_of(self, run_id: str, keys: Sequence[str]) -> dict[str, str]:
        if not keys:
            return {}
        return dict(self._fetch(self._in_list(self._sql.params_of, len(keys)), (run_id, *keys)))

    def insert_params(self, run_id: str, params: Iterable[tuple[str, str]]) -> None:
        self._run_many(self._sql.insert_params, [(run_id, k, v) for k, v in params])

    def upsert_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        self._run_many(self._sql.upsert_tags, [(run_id, k, v) for k, v in tags.items()])

    # --- metrics ------------------------------------------------------------------------------

    def insert_metrics(self, rows: list[tuple[str, str, float, bool, int, int]]) -> None:
        """History rows as (run_id, key, value, is_nan, step, timestamp)."""
        self._run_many(self._sql.insert_metrics, rows)

    def latest_of(self, run_id: str, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
        """(step, timestamp) of the stored latest value of each of ``keys`` that has one."""
        if not keys:
            return {}
        query = self._in_list(self._sql.latest_of, len(keys))
        return {key: (step, ts) for key, step, ts in self._fetch(query, (run_id, *keys))}

    def upsert_latest(self, rows: list[tuple[str, str, float, bool, int, int]]) -> None:
        """Latest values as (run_id, key, value, is_nan, step, timestamp)."""
        self._run_many(self._sql.upsert_latest, rows)

    # --- execution ----------------------------------------------------------------------------

    def _in_list(self, head: str, count: int) -> str:
        return head + ", ".join(self._sql.mark for _ in range(count)) + ")"

    def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            self._cursor.execute(sql, params)
            return list(self._cursor.fetchall())
        except self._dialect.loaded_dbapi.Error as exc:
            raise self._wrapped(exc, sql, params) from exc

    def _run(self, sql: str, params: tuple[Any, ...]) -> None:
        try:
            self._cursor.execute(sql, params)
        except self._dialect.loaded_dbapi.Error as exc:
            raise self._wrapped(exc, sql, params) from exc

    def _run_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        try:
            self._cursor.executemany(sql, rows)
        except self._dialect.loaded_dbapi.Error as exc:
            raise self._wrapped(exc, sql, rows[:3]) from exc

    def _wrapped(self, exc: Exception, sql: str, params: Any) -> Exception:
        from sqlalchemy.exc import DBAPIError

        return DBAPIError.instance(
            sql, params, exc, self._dialect.loaded_dbapi.Error, dialect=self._dialect
        )


@functools.lru_cache(maxsize=32)
def upsert_statement(
    dialect: str, table: Table, keys: tuple[str, ...], update_cols: tuple[str, ...]
) -> Any:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET update_cols (or DO NOTHING), built once."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(table)
    if update_cols:
        return stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in update_cols}
        )
    return stmt.on_conflict_do_nothing(index_elements=list(keys))


def upsert(
    conn: Connection,
    model: Any,
    rows: list[dict[str, Any]],
    *,
    keys: tuple[str, ...],
    update_cols: tuple[str, ...],
) -> None:
    """Insert ``rows`` into the table of ORM class ``model``, updating on a key clash."""
    if rows:
        statement = upsert_statement(conn.dialect.name, model.__table__, keys, update_cols)
        conn.execute(statement, rows)
