"""Statements on the logging hot path, built once per dialect and run with bound parameters.

Building a SQLAlchemy statement (coercing operands, resolving ORM attributes, making the
``excluded`` proxy of an upsert) costs more than running it on SQLite, and a training loop
starts runs and flushes values thousands of times per process. The statements here are built on
first use and kept; each call only binds parameters, and SQLAlchemy's compiled cache does the
rest. Metric history rows, which come by the ten thousand, skip SQLAlchemy's per-row parameter
processing altogether and go to the driver's ``executemany`` as tuples.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

__all__ = ["METRIC_COLUMNS", "HotStatements", "hot_statements", "insert_metric_rows", "upsert"]

# The order of the tuples given to insert_metric_rows.
METRIC_COLUMNS = ("run_id", "key", "value", "is_nan", "step", "timestamp")


@dataclass(frozen=True)
class HotStatements:
    """Prebuilt statements; parameter names are given next to each."""

    experiment_exists: Any  # experiment_id
    run_exists: Any  # run_id
    insert_run: Any  # run columns
    insert_tags: Any  # run_id, key, value
    run_summary: Any  # run_id -> summary, status (row-locked on PostgreSQL)
    params_of: Any  # run_id, keys -> key, value
    insert_params: Any  # run_id, key, value
    latest_of: Any  # run_id, keys -> key, step, timestamp
    upsert_tags: Any  # run_id, key, value
    upsert_latest: Any  # run_id, key, value, is_nan, step, timestamp
    update_run: Any  # target_run_id, plus the columns to set
    insert_metrics_sql: str  # driver-level SQL; tuples in METRIC_COLUMNS order


@functools.cache
def hot_statements(dialect: str) -> HotStatements:
    from sqlalchemy import bindparam, select, update

    from loopml.store.models import Experiment, LatestMetric, Param, Run, Tag
    from loopml.store.models import Metric as MetricRow

    runs = _table(Run)
    run_summary = select(runs.c.summary, runs.c.status).where(runs.c.run_id == bindparam("run_id"))
    if dialect == "postgresql":
        run_summary = run_summary.with_for_update()
    return HotStatements(
        experiment_exists=select(Experiment.experiment_id).where(
            Experiment.experiment_id == bindparam("experiment_id")
        ),
        run_exists=select(runs.c.run_id).where(runs.c.run_id == bindparam("run_id")),
        insert_run=runs.insert(),
        insert_tags=_table(Tag).insert(),
        run_summary=run_summary,
        params_of=select(Param.key, Param.value).where(
            Param.run_id == bindparam("run_id"), Param.key.in_(bindparam("keys", expanding=True))
        ),
        insert_params=_table(Param).insert(),
        latest_of=select(LatestMetric.key, LatestMetric.step, LatestMetric.timestamp).where(
            LatestMetric.run_id == bindparam("run_id"),
            LatestMetric.key.in_(bindparam("keys", expanding=True)),
        ),
        upsert_tags=upsert_statement(dialect, _table(Tag), ("run_id", "key"), ("value",)),
        upsert_latest=upsert_statement(
            dialect,
            _table(LatestMetric),
            ("run_id", "key"),
            ("value", "is_nan", "step", "timestamp"),
        ),
        # The WHERE parameter may not share a column's name: names in the parameter dict
        # that match columns become the SET clause.
        update_run=update(runs).where(runs.c.run_id == bindparam("target_run_id")),
        insert_metrics_sql=_driver_insert(dialect, _table(MetricRow), METRIC_COLUMNS),
    )


@functools.lru_cache(maxsize=32)
def upsert_statement(
    dialect: str, table: Table, keys: tuple[str, ...], update_cols: tuple[str, ...]
) -> Any:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET update_cols (or DO NOTHING)."""
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
        statement = upsert_statement(conn.dialect.name, _table(model), keys, update_cols)
        conn.execute(statement, rows)


def insert_metric_rows(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert metric history rows, given as tuples in :data:`METRIC_COLUMNS` order."""
    if rows:
        conn.exec_driver_sql(hot_statements(conn.dialect.name).insert_metrics_sql, rows)


def _table(model: Any) -> Table:
    return model.__table__


def _driver_insert(dialect_name: str, table: Any, columns: tuple[str, ...]) -> str:
    from sqlalchemy.dialects.postgresql.base import PGDialect
    from sqlalchemy.dialects.sqlite.base import SQLiteDialect

    dialect = PGDialect() if dialect_name == "postgresql" else SQLiteDialect()
    quote = dialect.identifier_preparer.quote
    # qmark for sqlite3; psycopg takes %s placeholders with positional tuples.
    mark = "?" if dialect_name == "sqlite" else "%s"
    return (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join(mark for _ in columns)})"
    )
