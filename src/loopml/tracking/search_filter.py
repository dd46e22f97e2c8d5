"""The run filter language: MLflow's search syntax, plus OR, NOT and parentheses.

A filter is read into a small immutable tree (:class:`Comparison`, :class:`And`, :class:`Or`,
:class:`Not`) by a recursive-descent parser; :mod:`loopml.tracking.search` turns the tree into
SQL with bound parameters. The grammar, keywords being case-insensitive::

    filter      := [ or ] END
    or          := and ( OR and )*
    and         := unary ( AND unary )*
    unary       := NOT unary | '(' or ')' | comparison
    comparison  := identifier ( '=' | '!=' | '<' | '<=' | '>' | '>=' ) literal
                 | identifier [ NOT ] ( LIKE | ILIKE ) string
                 | identifier [ NOT ] IN '(' literal ( ',' literal )* [ ',' ] ')'
                 | identifier IS [ NOT ] NULL

What compares with what (as MLflow does):

* ``metrics.*`` hold numbers: ``= != < <= > >=`` and ``IN`` against numeric literals. A NaN
  value satisfies no comparison.
* ``params.*`` and ``tags.*`` hold text: ``= != LIKE ILIKE IN`` against quoted strings.
* attributes compare by column type: ``start_time``, ``end_time`` and ``experiment_id`` like
  metrics, the others like params.
* A comparison on a metric, param or tag holds only for runs that have the key, negated
  comparators (``!=``, ``NOT LIKE``, ``NOT IN``) included; ``IS NULL`` / ``IS NOT NULL`` ask
  whether the key is absent / present. ``NOT (...)`` is logical negation, so
  ``NOT metrics.x > 1`` also holds for runs without ``x``.

LIKE patterns use ``%`` and ``_``, with ``\\`` escaping them; LIKE is case-sensitive and
ILIKE case-insensitive on every backend.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from loopml.errors import InvalidInputError
from loopml.tracking.search_syntax import (
    ATTRIBUTES,
    MAX_NESTING,
    Identifier,
    Token,
    TokenKind,
    TokenStream,
    format_identifier,
)

__all__ = [
    "And",
    "Comparison",
    "Expr",
    "Not",
    "Or",
    "allowed_ops",
    "format_filter",
    "parse_filter",
    "value_type",
]

Scalar = int | float | str
Value = Scalar | tuple[Scalar, ...] | None

_ORDERING = ("<", "<=", ">", ">=")
_EQUALITY = ("=", "!=")
_PATTERN = ("LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE")
_MEMBERSHIP = ("IN", "NOT IN")
_NULLNESS = ("IS NULL", "IS NOT NULL")
_NUMERIC_OPS = _EQUALITY + _ORDERING + _MEMBERSHIP
_STRING_OPS = _EQUALITY + _PATTERN + _MEMBERSHIP
_ALL_OPS = _EQUALITY + _ORDERING + _PATTERN + _MEMBERSHIP + _NULLNESS
_EXPECTED_COMPARATOR = "a comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL)"


@dataclass(frozen=True, slots=True)
class Comparison:
    """``identifier op value``; ``value`` is a tuple for IN / NOT IN and None for IS NULL."""

    identifier: Identifier
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr


Expr = Comparison | And | Or | Not


def parse_filter(filter_string: str | None) -> Expr | None:
    """Read a filter string into an expression tree; None when the filter is empty.

    Raises :class:`~loopml.tracking.search_syntax.SearchSyntaxError` (an
    :class:`~loopml.errors.InvalidInputError`) naming the bad token and its position.
    Results are cached per string, so repeated searches parse once.
    """
    if filter_string is None:
        return None
    if not isinstance(filter_string, str):
        raise InvalidInputError(
            f"filter_string must be a string, got {type(filter_string).__name__}",
            hint="pass a filter such as \"metrics.rmse < 0.5 and params.model = 'rf'\"",
        )
    return _parse_cached(filter_string)


@functools.lru_cache(maxsize=512)
def _parse_cached(filter_string: str) -> Expr | None:
    return _FilterParser(filter_string).parse()


def allowed_ops(identifier: Identifier) -> tuple[str, ...]:
    """The comparators that apply to ``identifier``."""
    if identifier.kind == "metric":
        return _NUMERIC_OPS + _NULLNESS
    if identifier.kind in ("param", "tag"):
        return _STRING_OPS + _NULLNESS
    spec = ATTRIBUTES[identifier.key]
    ops = _NUMERIC_OPS if spec.type == "number" else _STRING_OPS
    return ops + _NULLNESS if spec.nullable else ops


def value_type(identifier: Identifier) -> str:
    """``"number"`` or ``"string"``: what the literals compared with ``identifier`` must be."""
    if identifier.kind == "metric":
        return "number"
    if identifier.kind == "attribute":
        return ATTRIBUTES[identifier.key].type
    return "string"


class _FilterParser:
    def __init__(self, source: str) -> None:
        self.stream = TokenStream(source, "filter")
        self.depth = 0

    def parse(self) -> Expr | None:
        stream = self.stream
        if stream.peek().kind is TokenKind.END:
            return None
        expr = self.parse_or()
        end = stream.peek()
        if end.kind is not TokenKind.END:
            raise stream.error(end, "AND, OR or the end of the filter")
        return expr

    def parse_or(self) -> Expr:
        operands = [self.parse_and()]
        while self.stream.accept_keyword("OR"):
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else Or(_flatten(Or, operands))

    def parse_and(self) -> Expr:
        operands = [self.parse_unary()]
        while self.stream.accept_keyword("AND"):
            operands.append(self.parse_unary())
        return operands[0] if len(operands) == 1 else And(_flatten(And, operands))

    def parse_unary(self) -> Expr:
        stream = self.stream
        token = stream.peek()
        if token.keyword() == "NOT" or token.kind is TokenKind.LPAREN:
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise stream.fail(token, f"the filter nests deeper than {MAX_NESTING} levels")
            try:
                if stream.accept_keyword("NOT"):
                    return Not(self.parse_unary())
                stream.advance()
                inner = self.parse_or()
                close = stream.advance()
                if close.kind is not TokenKind.RPAREN:
                    raise stream.error(close, f"')' to close the '(' at position {token.pos}")
                return inner
            finally:
                self.depth -= 1
        return self.parse_comparison()

    def parse_comparison(self) -> Comparison:
        stream = self.stream
        identifier = stream.identifier()
        op_token, op = self.parse_comparator()
        allowed = allowed_ops(identifier)
        if op not in allowed:
            raise stream.fail(
                op_token,
                f"{op!r} does not apply to {format_identifier(identifier)}, which "
                f"{_describe(identifier, with_nullness=op in _NULLNESS)}",
                hint=f"use one of {', '.join(allowed)}"
                + (
                    "; to compare numerically, log the value as a metric"
                    if identifier.kind in ("param", "tag") and op in _ORDERING
                    else ""
                ),
                length=stream.last_end() - op_token.pos,
            )
        if op in _NULLNESS:
            return Comparison(identifier, op, None)
        if op in _MEMBERSHIP:
            return Comparison(identifier, op, self.parse_list(identifier))
        value = self.parse_literal(identifier, op)
        return Comparison(identifier, op, value)

    def parse_comparator(self) -> tuple[Token, str]:
        stream = self.stream
        token = stream.advance()
        if token.kind is TokenKind.OP and token.text in _ALL_OPS:
            return token, token.text
        word = token.keyword()
        if word in ("LIKE", "ILIKE", "IN"):
            return token, str(word)
        if word == "NOT":
            follow = stream.advance()
            if follow.keyword() in ("LIKE", "ILIKE", "IN"):
                return token, f"NOT {follow.keyword()}"
            raise stream.error(follow, "LIKE, ILIKE or IN after NOT")
        if word == "IS":
            negated = stream.accept_keyword("NOT") is not None
            null = stream.advance()
            if null.keyword() != "NULL":
                raise stream.error(null, "NULL after IS" + (" NOT" if negated else ""))
            return token, "IS NOT NULL" if negated else "IS NULL"
        hint = None
        if token.kind is TokenKind.OP and token.text in ("==", "<>"):
            hint = f"write {'=' if token.text == '==' else '!='} instead of {token.text}"
        raise stream.error(token, _EXPECTED_COMPARATOR, hint=hint)

    def parse_list(self, identifier: Identifier) -> tuple[Scalar, ...]:
        stream = self.stream
        open_paren = stream.advance()
        if open_paren.kind is not TokenKind.LPAREN:
            raise stream.error(open_paren, "'(' starting the list of values after IN")
        values = [self.parse_literal(identifier, "IN")]
        while stream.peek().kind is TokenKind.COMMA:
            stream.advance()
            if stream.peek().kind is TokenKind.RPAREN:
                break
            values.append(self.parse_literal(identifier, "IN"))
        close = stream.advance()
        if close.kind is not TokenKind.RPAREN:
            raise stream.error(close, f"',' or ')' to close the '(' at position {open_paren.pos}")
        return tuple(values)

    def parse_literal(self, identifier: Identifier, op: str) -> Scalar:
        stream = self.stream
        token = stream.advance()
        wanted = value_type(identifier)
        name = format_identifier(identifier)
        if token.kind is TokenKind.NUMBER:
            if wanted == "string":
                stored = (
                    " (params and tags are stored as text)"
                    if identifier.kind != "attribute"
                    else ""
                )
                raise stream.fail(
                    token,
                    f"{name} {_describe(identifier)}; compare it with a quoted string, "
                    f"not the bare number {token.text}",
                    hint=f"quote it: '{token.text}'{stored}",
                )
            assert isinstance(token.value, int | float)
            return token.value
        if token.kind in (TokenKind.STRING, TokenKind.DQUOTED):
            text = str(token.value)
            if wanted == "number":
                raise stream.fail(
                    token,
                    f"{name} {_describe(identifier)}; compare it with a number, "
                    f"not the string {token.text}",
                    hint="write the number without quotes",
                )
            if op in _PATTERN and _ends_with_escape(text):
                raise stream.fail(
                    token,
                    f"the LIKE pattern {token.text} ends with an unpaired escape '\\'",
                    hint="write '\\\\' for a literal backslash",
                )
            return text
        expected = "a number" if wanted == "number" else "a quoted string"
        hint = None
        if token.keyword() == "NULL":
            hint = f"write {name} IS NULL or {name} IS NOT NULL"
        elif token.kind is TokenKind.WORD and wanted == "string":
            hint = f"quote it: '{token.text}'"
        raise stream.error(token, expected, hint=hint)


def _describe(identifier: Identifier, *, with_nullness: bool = False) -> str:
    holds = "holds numbers" if value_type(identifier) == "number" else "holds text"
    if with_nullness:
        return holds + " and is never null"
    return holds


def _ends_with_escape(pattern: str) -> bool:
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return trailing % 2 == 1


def _flatten(kind: type[And] | type[Or], operands: list[Expr]) -> tuple[Expr, ...]:
    """``(a AND b) AND c`` -> ``And(a, b, c)``, so equal filters give equal trees."""
    flat: list[Expr] = []
    for operand in operands:
        if isinstance(operand, kind):
            flat.extend(operand.operands)
        else:
            flat.append(operand)
    return tuple(flat)


def format_filter(expr: Expr | None) -> str:
    """The canonical filter string for ``expr``; :func:`parse_filter` reads it back equal."""
    if expr is None:
        return ""
    return _format(expr, parent=None)


def _format(expr: Expr, parent: type | None) -> str:
    if isinstance(expr, Comparison):
        return _format_comparison(expr)
    if isinstance(expr, Not):
        return f"NOT {_format(expr.operand, Not)}"
    joiner = " AND " if isinstance(expr, And) else " OR "
    text = joiner.join(_format(operand, type(expr)) for operand in expr.operands)
    # And binds tighter than Or, so only an Or under an And, or anything under a Not, or a
    # group nested in its own kind (kept so the tree reads back the same) needs parentheses.
    return text if parent is None or (parent is Or and isinstance(expr, And)) else f"({text})"


def _format_comparison(comparison: Comparison) -> str:
    name = format_identifier(comparison.identifier)
    if comparison.value is None:
        return f"{name} {comparison.op}"
    if isinstance(comparison.value, tuple):
        return f"{name} {comparison.op} ({', '.join(map(_format_literal, comparison.value))})"
    return f"{name} {comparison.op} {_format_literal(comparison.value)}"


def _format_literal(value: Scalar) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)
