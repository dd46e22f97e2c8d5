"""The lexical layer of run search: tokens, identifiers and the error that points at a token.

Both the filter language (:mod:`loopml.tracking.search_filter`) and ``order_by`` clauses
(:mod:`loopml.tracking.search_order`) are read by hand-written scanners and recursive-descent
parsers built on this module, so every mistake is reported with the character position of the
token that caused it. Nothing here knows about SQL; it is pure Python and cheap to import.

Identifiers follow MLflow::

    metrics.rmse          params.model          tags.team           status
    metric.rmse           param.model           tag.team            attributes.start_time
    metrics.`my metric`   params."learning-rate"  tags.mlflow.source.type

An unprefixed name, or one prefixed ``attributes.`` / ``attribute.``, is a run attribute
(see :data:`ATTRIBUTES`). Keys containing anything but letters, digits, ``_`` and ``.`` are
quoted with backticks or double quotes; a quote inside a quoted key is doubled or escaped
with a backslash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from loopml.errors import InvalidInputError

__all__ = [
    "ATTRIBUTES",
    "AttributeSpec",
    "Identifier",
    "Kind",
    "SearchSyntaxError",
    "Token",
    "TokenKind",
    "TokenStream",
    "format_identifier",
    "quote_key",
    "tokenize",
]

Kind = Literal["metric", "param", "tag", "attribute"]


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    """A run attribute that searches may name: its column and how its values compare."""

    name: str
    column: str
    type: Literal["string", "number"]
    nullable: bool


ATTRIBUTES: dict[str, AttributeSpec] = {
    spec.name: spec
    for spec in (
        AttributeSpec("run_id", "run_id", "string", nullable=False),
        AttributeSpec("run_name", "name", "string", nullable=True),
        AttributeSpec("status", "status", "string", nullable=False),
        AttributeSpec("start_time", "start_time", "number", nullable=False),
        AttributeSpec("end_time", "end_time", "number", nullable=True),
        AttributeSpec("user_id", "user", "string", nullable=True),
        AttributeSpec("artifact_uri", "artifact_uri", "string", nullable=True),
        AttributeSpec("parent_run_id", "parent_run_id", "string", nullable=True),
        AttributeSpec("experiment_id", "experiment_id", "number", nullable=False),
    )
}
# Other spellings people bring from MLflow; ``created`` is MLflow's alias for start_time.
_ATTRIBUTE_ALIASES = {"user": "user_id", "created": "start_time"}

_PREFIXES: dict[str, Kind] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
}
_CANONICAL_PREFIX: dict[Kind, str] = {
    "metric": "metrics",
    "param": "params",
    "tag": "tags",
    "attribute": "attributes",
}

MAX_NESTING = 64


@dataclass(frozen=True, slots=True)
class Identifier:
    """What a comparison or an ordering is about: ``kind`` plus the metric/param/tag key or
    the canonical attribute name (``run_name``, ``user_id``...)."""

    kind: Kind
    key: str

    def __str__(self) -> str:
        return format_identifier(self)


class SearchSyntaxError(InvalidInputError):
    """A filter or order_by clause that cannot be read, pointing at the offending token.

    ``source`` is the text as given, ``position`` the 0-based character offset of the bad
    token and ``length`` its length; :meth:`caret` draws them for terminals.
    """

    def __init__(
        self,
        what: str,
        source: str,
        position: int,
        problem: str,
        *,
        length: int = 1,
        hint: str | None = None,
    ) -> None:
        super().__init__(
            f"Invalid {what} {source!r}: {problem}",
            hint=hint
            or (
                "write comparisons such as metrics.rmse < 0.5 and params.model = 'rf', "
                "joined by and/or"
                if what == "filter"
                else "write clauses such as metrics.rmse DESC or attributes.start_time ASC"
            ),
        )
        self.source = source
        self.position = position
        self.length = max(length, 1)

    def caret(self) -> str:
        """The source on one line and a ``^^^`` marker under the bad token on the next."""
        line = self.source.replace("\n", " ").replace("\t", " ")
        return f"{line}\n{' ' * self.position}{'^' * self.length}"


class TokenKind(Enum):
    WORD = "word"  # bare names and keywords (AND, IN, ...), told apart by the parser
    NUMBER = "number"
    STRING = "string"  # 'single quoted': always a value
    DQUOTED = "dquoted"  # "double quoted": a value, or a key after ``metrics.``
    BACKTICK = "backtick"  # `back quoted`: always a key
    OP = "operator"  # a run of < > = ! characters, checked by the parser
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    DOT = "."
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str  # the source slice, for messages
    value: str | int | float | None
    pos: int

    def keyword(self) -> str | None:
        """The upper-cased word when this is a bare word, else None."""
        return self.text.upper() if self.kind is TokenKind.WORD else None


_QUOTES = {"'": TokenKind.STRING, '"': TokenKind.DQUOTED, "`": TokenKind.BACKTICK}
_OP_CHARS = frozenset("<>=!")
_DIGITS = frozenset("0123456789")
_MAX_INT_DIGITS = 18
_PUNCTUATION = {"(": TokenKind.LPAREN, ")": TokenKind.RPAREN, ",": TokenKind.COMMA}
# After these a "." separates the parts of a dotted name rather than starting a number.
_NAME_PARTS = frozenset({TokenKind.WORD, TokenKind.DQUOTED, TokenKind.BACKTICK})


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def tokenize(source: str, what: str) -> list[Token]:
    """Split ``source`` into tokens, ending with an END token; ``what`` names it in errors."""
    _check_characters(source, what)
    tokens: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
            continue
        previous = tokens[-1].kind if tokens else None
        nxt = source[i + 1] if i + 1 < n else ""
        if ch in _PUNCTUATION:
            tokens.append(Token(_PUNCTUATION[ch], ch, None, i))
            i += 1
        elif ch == "." and not (nxt in _DIGITS and previous not in _NAME_PARTS):
            tokens.append(Token(TokenKind.DOT, ".", None, i))
            i += 1
        elif _is_name_char(ch) and (ch not in _DIGITS or previous is TokenKind.DOT):
            # A key part right after a dot may start with a digit: metrics.2nd_pass.
            end = i
            while end < n and _is_name_char(source[end]):
                end += 1
            tokens.append(Token(TokenKind.WORD, source[i:end], source[i:end], i))
            i = end
        elif ch in _OP_CHARS:
            end = i
            while end < n and source[end] in _OP_CHARS:
                end += 1
            tokens.append(Token(TokenKind.OP, source[i:end], source[i:end], i))
            i = end
        elif ch in _QUOTES:
            i = _scan_quoted(source, i, what, tokens)
        elif ch in _DIGITS or ch == "." or (ch in "+-" and _starts_number(source, i + 1)):
            i = _scan_number(source, i, what, tokens)
        else:
            raise SearchSyntaxError(what, source, i, f"unexpected character {ch!r} at position {i}")
    tokens.append(Token(TokenKind.END, "", None, n))
    return tokens


def _check_characters(source: str, what: str) -> None:
    """Refuse text no database can take: NUL (PostgreSQL text cannot hold it) and lone
    surrogates (not encodable as UTF-8), which would otherwise fail inside the driver."""
    for i, ch in enumerate(source):
        if ch == "\x00" or "\ud800" <= ch <= "\udfff":
            raise SearchSyntaxError(
                what,
                source,
                i,
                f"character {ch!r} at position {i} cannot be stored or searched",
                hint="remove NUL characters and unpaired surrogates from the text",
            )


def _starts_number(source: str, i: int) -> bool:
    head = source[i : i + 1]
    return head in _DIGITS or (head == "." and source[i + 1 : i + 2] in _DIGITS)


def _scan_number(source: str, start: int, what: str, tokens: list[Token]) -> int:
    n = len(source)
    i = start
    if source[i] in "+-":
        i += 1
    while i < n and source[i] in _DIGITS:
        i += 1
    is_float = False
    if i < n and source[i] == ".":
        is_float = True
        i += 1
        while i < n and source[i] in _DIGITS:
            i += 1
    if i < n and source[i] in "eE":
        exponent = i + 1
        if exponent < n and source[exponent] in "+-":
            exponent += 1
        if exponent < n and source[exponent] in _DIGITS:
            is_float = True
            i = exponent
            while i < n and source[i] in _DIGITS:
                i += 1
    if i < n and (_is_name_char(source[i]) or source[i] == "."):
        # "1abc", "1.2.3": one malformed number, not a number followed by a name.
        while i < n and (_is_name_char(source[i]) or source[i] == "."):
            i += 1
        bad = source[start:i]
        raise SearchSyntaxError(
            what, source, start, f"malformed number {bad!r} at position {start}", length=len(bad)
        )
    text = source[start:i]
    # Past 18 digits an integer could overflow the database driver's 64 bits; as a float it
    # compares the same way.
    value: int | float = (
        int(text) if not is_float and len(text.lstrip("+-")) <= _MAX_INT_DIGITS else float(text)
    )
    if not math.isfinite(value):
        raise SearchSyntaxError(
            what,
            source,
            start,
            f"number {text!r} at position {start} is out of range",
            length=len(text),
            hint="numbers must lie within ±1.8e308",
        )
    tokens.append(Token(TokenKind.NUMBER, text, value, start))
    return i


def _scan_quoted(source: str, start: int, what: str, tokens: list[Token]) -> int:
    """Read a quoted string or key. A quote is escaped by doubling it or with a backslash;
    ``\\\\`` is a backslash; any other backslash is kept as written, so LIKE patterns can
    escape ``%`` and ``_`` with ``\\%`` and ``\\_``."""
    quote = source[start]
    n = len(source)
    out: list[str] = []
    i = start + 1
    while i < n:
        ch = source[i]
        if ch == "\\" and i + 1 < n:
            nxt = source[i + 1]
            out.append(nxt if nxt in "\\'\"`" else ch + nxt)
            i += 2
        elif ch == quote:
            if i + 1 < n and source[i + 1] == quote:
                out.append(quote)
                i += 2
            else:
                i += 1
                tokens.append(Token(_QUOTES[quote], source[start:i], "".join(out), start))
                return i
        else:
            out.append(ch)
            i += 1
    raise SearchSyntaxError(
        what,
        source,
        start,
        f"unterminated {quote} quote starting at position {start}",
        hint=f"close the {quote}; write a {quote} inside it as {quote}{quote} or \\{quote}",
    )


class TokenStream:
    """A cursor over tokens, with the identifier grammar both parsers share."""

    def __init__(self, source: str, what: str) -> None:
        self.source = source
        self.what = what
        self.tokens = tokenize(source, what)
        self.index = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind is not TokenKind.END:
            self.index += 1
        return token

    def last_end(self) -> int:
        """The offset just past the last token taken."""
        token = self.tokens[max(self.index - 1, 0)]
        return token.pos + len(token.text)

    def accept_keyword(self, *words: str) -> Token | None:
        token = self.peek()
        if token.keyword() in words:
            return self.advance()
        return None

    def error(self, token: Token, expected: str, *, hint: str | None = None) -> SearchSyntaxError:
        found = f"end of {self.what}" if token.kind is TokenKind.END else repr(token.text)
        return SearchSyntaxError(
            self.what,
            self.source,
            token.pos,
            f"unexpected {found} at position {token.pos}; expected {expected}",
            length=len(token.text),
            hint=hint,
        )

    def fail(
        self, token: Token, problem: str, *, hint: str | None = None, length: int | None = None
    ) -> SearchSyntaxError:
        return SearchSyntaxError(
            self.what,
            self.source,
            token.pos,
            f"{problem} (at position {token.pos})",
            length=len(token.text) if length is None else length,
            hint=hint,
        )

    def identifier(self) -> Identifier:
        """``prefix.key`` or a bare attribute name, resolved and checked."""
        token = self.advance()
        if token.kind is not TokenKind.WORD:
            raise self.error(
                token,
                "an identifier such as metrics.rmse, params.model, tags.team or status",
                hint="quote keys after their prefix: metrics.`my metric`",
            )
        if self.peek().kind is not TokenKind.DOT:
            return self._attribute(token, token.text)
        kind = _PREFIXES.get(token.text.lower())
        if kind is None:
            raise self.fail(
                token,
                f"unknown prefix {token.text!r}",
                hint="use metrics., params., tags. or attributes. (or a bare attribute name)",
            )
        dot = self.advance()
        part = self.advance()
        if part.kind in (TokenKind.BACKTICK, TokenKind.DQUOTED):
            key = str(part.value)
        elif part.kind is TokenKind.WORD:
            parts = [part.text]
            while self.peek().kind is TokenKind.DOT and self.peek(1).kind is TokenKind.WORD:
                self.advance()
                parts.append(self.advance().text)
            key = ".".join(parts)
        else:
            raise self.error(
                part,
                f"a key name after {token.text + dot.text!r}",
                hint=f"quote keys with spaces or symbols: {token.text}.`my key`",
            )
        if kind == "attribute":
            return self._attribute(part, key)
        if not key:
            raise self.fail(part, f"empty {kind} key")
        return Identifier(kind, key)

    def _attribute(self, token: Token, name: str) -> Identifier:
        lowered = name.lower()
        canonical = _ATTRIBUTE_ALIASES.get(lowered, lowered)
        if canonical not in ATTRIBUTES:
            raise self.fail(
                token,
                f"unknown attribute {name!r}",
                hint=(
                    f"attributes are {', '.join(ATTRIBUTES)}; for a metric, param or tag "
                    f"write metrics.{name}, params.{name} or tags.{name}"
                ),
            )
        return Identifier("attribute", canonical)


def format_identifier(identifier: Identifier) -> str:
    """The canonical spelling of ``identifier``, which :class:`TokenStream` reads back."""
    prefix = _CANONICAL_PREFIX[identifier.kind]
    return f"{prefix}.{quote_key(identifier.key)}"


def quote_key(key: str) -> str:
    """``key`` as written after a prefix: bare when the tokenizer reads it back whole."""
    parts = key.split(".")
    if all(part and all(_is_name_char(ch) for ch in part) for part in parts):
        return key
    return "`" + key.replace("\\", "\\\\").replace("`", "``") + "`"
