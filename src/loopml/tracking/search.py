"""Run search as SQL: filter trees and order keys become one SQLAlchemy ``SELECT`` over ``runs``.

:func:`build_search_statement` is what the tracking client executes. Filter strings and
``order_by`` clauses are parsed by :mod:`loopml.tracking.search_filter` and
:mod:`loopml.tracking.search_order` (cached per string); every value the user wrote reaches the
database as a bound parameter, never as SQL text.

How the SQL is shaped, and why (measured on SQLite with 10,000 runs x 5 metrics):

* A comparison on a metric, param or tag asks whether the run has a row of that table with
  the key and a passing value: ``run_id IN (SELECT run_id ...)`` on SQLite, ``EXISTS (...)``
  on PostgreSQL (see :class:`_KeyedTest` for the measurements behind the split).
* Ordering by a metric, param or tag LEFT JOINs one alias of its table on ``(run_id, key)``,
  the primary key, so each run gets at most one row and a missing key sorts as NULL, last.
* Results always end with ``start_time DESC, run_id`` so pages are stable.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Double,
    FromClause,
    Select,
    Table,
    Text,
    and_,
    exists,
    false,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from loopml.errors import InvalidInputError
from loopml.store.models import Base
from loopml.tracking.search_filter import And, Comparison, Expr, Not, Scalar, parse_filter
from loopml.tracking.search_order import OrderKey, parse_order_by
from loopml.tracking.search_syntax import ATTRIBUTES, Identifier

__all__ = [
    "LIFECYCLE_STAGES",
    "RUN_COLUMNS",
    "build_search_statement",
    "filter_clause",
    "order_clauses",
]

RUNS: Table = Base.metadata.tables["runs"]
_KEYED_TABLES: dict[str, Table] = {
    "metric": Base.metadata.tables["latest_metrics"],
    "param": Base.metadata.tables["params"],
    "tag": Base.metadata.tables["tags"],
}

RUN_COLUMNS = (
    "run_id",
    "experiment_id",
    "name",
    "status",
    "start_time",
    "end_time",
    "user",
    "parent_run_id",
    "artifact_uri",
    "lifecycle_stage",
    "summary",
    "git_commit",
    "heartbeat_at",
)
LIFECYCLE_STAGES = ("active", "deleted")
_ESCAPE = "\\"  # the LIKE escape character: one backslash


def build_search_statement(
    *,
    experiment_ids: Sequence[int | str] | None,
    filter_string: str | None = "",
    order_by: Sequence[str] | None = None,
    max_results: int | None = None,
    offset: int = 0,
    lifecycle_stage: str | None = "active",
) -> Select[Any]:
    """The ``SELECT`` of :data:`RUN_COLUMNS` for runs matching a search.

    ``experiment_ids`` None searches every experiment (an empty list matches nothing);
    ``lifecycle_stage`` None includes deleted runs. Without ``order_by`` runs come newest
    first. Raises :class:`~loopml.errors.InvalidInputError` for a bad filter, order_by clause
    or paging value, before any SQL runs.
    """
    if lifecycle_stage is not None and lifecycle_stage not in LIFECYCLE_STAGES:
        raise InvalidInputError(
            f"lifecycle_stage must be one of {', '.join(LIFECYCLE_STAGES)} or None, "
            f"got {lifecycle_stage!r}",
            hint="pass None to include deleted runs",
        )
    return _statement(
        None if experiment_ids is None else tuple(_experiment_ids(experiment_ids)),
        parse_filter(filter_string),
        parse_order_by(order_by),
        None if max_results is None else _non_negative("max_results", max_results),
        _non_negative("offset", offset),
        lifecycle_stage,
    )


# Statements are immutable, so equal searches share one: building costs ~0.6 ms, a hit ~1 us.
@functools.lru_cache(maxsize=256)
def _statement(
    experiment_ids: tuple[int, ...] | None,
    expr: Expr | None,
    order_keys: tuple[OrderKey, ...],
    max_results: int | None,
    offset: int,
    lifecycle_stage: str | None,
) -> Select[Any]:
    where: list[ColumnElement[bool]] = []
    if lifecycle_stage is not None:
        where.append(RUNS.c.lifecycle_stage == lifecycle_stage)
    if experiment_ids is not None:
        where.append(RUNS.c.experiment_id.in_(experiment_ids) if experiment_ids else false())
    if expr is not None:
        where.append(filter_clause(expr))
    ordering, source = order_clauses(order_keys)
    statement = (
        select(*(RUNS.c[name] for name in RUN_COLUMNS))
        .select_from(source)
        .where(*where)
        .order_by(*ordering)
    )
    if max_results is not None:
        statement = statement.limit(max_results)
    if offset:
        statement = statement.offset(offset)
    return statement


def filter_clause(expr: Expr) -> ColumnElement[bool]:
    """The WHERE condition over ``runs`` for a parsed filter."""
    if isinstance(expr, Comparison):
        return _comparison(expr)
    if isinstance(expr, Not):
        return not_(filter_clause(expr.operand))
    parts = [filter_clause(operand) for operand in expr.operands]
    return and_(*parts) if isinstance(expr, And) else or_(*parts)


def order_clauses(keys: Sequence[OrderKey]) -> tuple[list[ColumnElement[Any]], FromClause]:
    """ORDER BY expressions for ``keys`` (with the stable default tail) and the FROM clause:
    ``runs`` outer-joined to one alias per metric, param or tag being sorted on."""
    ordering: list[ColumnElement[Any]] = []
    source: FromClause = RUNS
    seen: set[Identifier] = set()
    for number, key in enumerate(keys):
        if key.identifier in seen:
            continue  # a later duplicate cannot change the order
        seen.add(key.identifier)
        column: ColumnElement[Any]
        if key.identifier.kind == "attribute":
            spec = ATTRIBUTES[key.identifier.key]
            column = RUNS.c[spec.column]
            if spec.type == "string":
                column = _CodepointOrder(column)
        else:
            table = _KEYED_TABLES[key.identifier.kind]
            alias = table.alias(f"order_{number}")
            on = and_(alias.c.run_id == RUNS.c.run_id, alias.c.key == key.identifier.key)
            if key.identifier.kind == "metric":
                on = and_(on, _is_number(alias))  # NaN sorts with the missing, last
                column = alias.c.value
            else:
                column = _CodepointOrder(alias.c.value)
            source = source.outerjoin(alias, on)
        ordering.append((column.asc() if key.ascending else column.desc()).nulls_last())
    for attribute, ascending in (("start_time", False), ("run_id", True)):
        identifier = Identifier("attribute", attribute)
        if identifier not in seen:
            column = RUNS.c[attribute]
            ordering.append(column.asc() if ascending else column.desc())
    return ordering, source


def _comparison(comparison: Comparison) -> ColumnElement[bool]:
    identifier, op, value = comparison.identifier, comparison.op, comparison.value
    if identifier.kind == "attribute":
        spec = ATTRIBUTES[identifier.key]
        column = RUNS.c[spec.column]
        if op == "IS NULL":
            return column.is_(None)
        if op == "IS NOT NULL":
            return column.is_not(None)
        test = _value_test(column, op, value, numeric=spec.type == "number")
        # Without this a NULL column makes the test NULL, and NOT(NULL) is NULL too: a run
        # with no end_time would match neither "end_time > 5" nor "NOT end_time > 5".
        return and_(column.is_not(None), test) if spec.nullable else test

    table = _KEYED_TABLES[identifier.kind]
    conditions: list[ColumnElement[bool]] = [table.c.key == identifier.key]
    if op not in ("IS NULL", "IS NOT NULL"):
        if identifier.kind == "metric":
            conditions.append(_is_number(table))
        conditions.append(
            _value_test(table.c.value, op, value, numeric=identifier.kind == "metric")
        )
    listed = select(table.c.run_id).where(*conditions)
    correlated = exists().where(table.c.run_id == RUNS.c.run_id, *conditions).correlate(RUNS)
    if op == "IS NULL":
        return _KeyedTest(RUNS.c.run_id.not_in(listed), not_(correlated))
    return _KeyedTest(RUNS.c.run_id.in_(listed), correlated)


def _value_test(
    column: ColumnElement[Any], op: str, value: object, *, numeric: bool
) -> ColumnElement[bool]:
    if op in ("IN", "NOT IN"):
        assert isinstance(value, tuple)
        members = [_bind(item, numeric=numeric) for item in value]
        return column.in_(members) if op == "IN" else column.not_in(members)
    assert isinstance(value, int | float | str)
    if op in ("LIKE", "NOT LIKE"):
        test: ColumnElement[bool] = _CaseSensitiveLike(
            column, literal(value), literal(_like_to_glob(str(value)))
        )
        return not_(test) if op == "NOT LIKE" else test
    if op == "ILIKE":
        return column.ilike(literal(value), escape=_ESCAPE)
    if op == "NOT ILIKE":
        return column.not_ilike(literal(value), escape=_ESCAPE)
    bound = _bind(value, numeric=numeric)
    comparisons = {
        "=": column.__eq__,
        "!=": column.__ne__,
        "<": column.__lt__,
        "<=": column.__le__,
        ">": column.__gt__,
        ">=": column.__ge__,
    }
    result: ColumnElement[bool] = comparisons[op](bound)
    return result


def _bind(value: Scalar, *, numeric: bool) -> ColumnElement[Any]:
    # Typed from the Python value, not the column: a float compared with a BIGINT column
    # would otherwise be sent as (and truncated to) a BIGINT by PostgreSQL's driver.
    if not numeric:
        return literal(str(value))
    if isinstance(value, float):
        return literal(value, Double())
    return literal(value, BigInteger())


def _is_number(table: FromClause) -> ColumnElement[bool]:
    return table.c.is_nan == false()


class _KeyedTest(FunctionElement[bool]):
    """Whether a run has a metric, param or tag row passing a test, in each backend's best form.

    SQLite gets ``run_id IN (SELECT run_id ...)``: it runs the uncorrelated subquery once
    through the ``key`` index and probes the result, which beats a correlated EXISTS by 3x
    on selective filters. PostgreSQL gets ``EXISTS`` (``NOT EXISTS`` for IS NULL): it plans
    both forms as semi-joins under AND, but under NOT or OR an IN subquery whose rows outgrow
    ``work_mem`` is re-scanned per run (seconds at scale), while EXISTS stays an index probe.
    """

    name = "keyed_test"
    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True  # a condition already: SQLite must not get "... = 1"


@compiles(_KeyedTest)
def _compile_exists(element: _KeyedTest, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses.clauses[1], **kw)


@compiles(_KeyedTest, "sqlite")
def _compile_in(element: _KeyedTest, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses.clauses[0], **kw)


class _CaseSensitiveLike(FunctionElement[bool]):
    """``value LIKE pattern ESCAPE '\\'``, case-sensitive on every backend.

    SQLite's LIKE ignores ASCII case (PostgreSQL's does not), so on SQLite this compiles to
    GLOB with the pattern translated by :func:`_like_to_glob`; both patterns are bound
    parameters and each dialect renders only its own.
    """

    name = "case_sensitive_like"
    type = Boolean()
    inherit_cache = True
    _is_implicitly_boolean = True


@compiles(_CaseSensitiveLike)
def _compile_like(element: _CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    value, pattern, _glob = element.clauses.clauses
    like = compiler.process(value.like(pattern, escape=_ESCAPE), **kw)
    return f"({like})"


@compiles(_CaseSensitiveLike, "sqlite")
def _compile_glob(element: _CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    value, _pattern, glob = element.clauses.clauses
    return f"({compiler.process(value, **kw)} GLOB {compiler.process(glob, **kw)})"


class _CodepointOrder(FunctionElement[str]):
    """A text column sorted by code point on every backend: SQLite always compares text
    bytewise, PostgreSQL by the database's collation unless told ``COLLATE "C"``."""

    name = "codepoint_order"
    type = Text()
    inherit_cache = True


@compiles(_CodepointOrder)
def _compile_plain_order(element: _CodepointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses.clauses[0], **kw)


@compiles(_CodepointOrder, "postgresql")
def _compile_c_order(element: _CodepointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return f'{compiler.process(element.clauses.clauses[0], **kw)} COLLATE "C"'


def _like_to_glob(pattern: str) -> str:
    """A LIKE pattern (``%``, ``_``, ``\\`` escaping) as the GLOB pattern matching the same."""
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            out.append(_glob_literal(next(chars, "\\")))
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        else:
            out.append(_glob_literal(ch))
    return "".join(out)


def _glob_literal(ch: str) -> str:
    return f"[{ch}]" if ch in "*?[" else ch


def _experiment_ids(experiment_ids: Sequence[int | str]) -> list[int]:
    if isinstance(experiment_ids, str | int):
        experiment_ids = [experiment_ids]
    ids: list[int] = []
    for item in experiment_ids:
        # MLflow callers pass ids as strings; anything but digits (or a real int) is a mistake.
        if isinstance(item, int) and not isinstance(item, bool):
            ids.append(item)
        elif isinstance(item, str) and item.strip().isdigit():
            ids.append(int(item))
        else:
            raise InvalidInputError(
                f"experiment id {item!r} is not an integer",
                hint="pass experiment ids as returned by get_experiment_by_name",
            )
    return ids


def _non_negative(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInputError(
            f"{name} must be a non-negative integer, got {value!r}",
            hint=f"omit {name} or pass 0 or more",
        )
    return value
