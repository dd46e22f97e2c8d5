"""``order_by`` clauses for run search: ``"metrics.rmse"``, ``"params.model DESC"``,
``"attributes.start_time ASC"``, ``"start_time"``.

Each clause is an identifier (the same grammar as in filters) and an optional, case-insensitive
``ASC`` (the default) or ``DESC``. Runs lacking the metric, param, tag or attribute, and runs
whose metric is NaN, sort last in both directions, as in MLflow.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from loopml.errors import InvalidInputError
from loopml.tracking.search_syntax import Identifier, TokenKind, TokenStream, format_identifier

__all__ = ["OrderKey", "format_order_key", "parse_order_by"]


@dataclass(frozen=True, slots=True)
class OrderKey:
    identifier: Identifier
    ascending: bool = True


def parse_order_by(order_by: Sequence[str] | None) -> tuple[OrderKey, ...]:
    """Read ``order_by`` clauses; raises
    :class:`~loopml.tracking.search_syntax.SearchSyntaxError` pointing at a bad one."""
    if order_by is None:
        return ()
    if isinstance(order_by, str) or not all(isinstance(item, str) for item in order_by):
        raise InvalidInputError(
            f"order_by must be a list of strings, got {order_by!r}",
            hint='pass e.g. ["metrics.rmse ASC", "start_time DESC"]',
        )
    return tuple(_parse_clause(clause) for clause in order_by)


@functools.lru_cache(maxsize=256)
def _parse_clause(clause: str) -> OrderKey:
    stream = TokenStream(clause, "order_by clause")
    if stream.peek().kind is TokenKind.END:
        raise stream.error(stream.peek(), "an identifier such as metrics.rmse or start_time")
    identifier = stream.identifier()
    direction = stream.accept_keyword("ASC", "DESC")
    end = stream.peek()
    if end.kind is not TokenKind.END:
        expected = "the end of the clause" if direction else "ASC, DESC or the end of the clause"
        raise stream.error(end, expected, hint="give one key per list item")
    return OrderKey(identifier, ascending=direction is None or direction.keyword() == "ASC")


def format_order_key(key: OrderKey) -> str:
    """The canonical clause for ``key``, which :func:`parse_order_by` reads back equal."""
    return f"{format_identifier(key.identifier)} {'ASC' if key.ascending else 'DESC'}"
