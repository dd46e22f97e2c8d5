"""The filter language on its own: what filters parse to, how mistakes are reported, and
properties that must hold for any input (no database here; see test_search_queries.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from loopml.errors import InvalidInputError
from loopml.tracking.search import build_search_statement
from loopml.tracking.search_filter import (
    And,
    Comparison,
    Expr,
    Not,
    Or,
    allowed_ops,
    format_filter,
    parse_filter,
    value_type,
)
from loopml.tracking.search_syntax import ATTRIBUTES, Identifier, SearchSyntaxError


def metric(key: str) -> Identifier:
    return Identifier("metric", key)


def param(key: str) -> Identifier:
    return Identifier("param", key)


def tag(key: str) -> Identifier:
    return Identifier("tag", key)


def attr(key: str) -> Identifier:
    return Identifier("attribute", key)


# --- what filters parse to ------------------------------------------------------------------


def test_the_mlflow_example_parses_to_four_anded_comparisons() -> None:
    expr = parse_filter(
        "metrics.rmse < 0.5 and params.model = 'rf' and tags.team = 'risk' and status = 'FINISHED'"
    )
    assert expr == And(
        (
            Comparison(metric("rmse"), "<", 0.5),
            Comparison(param("model"), "=", "rf"),
            Comparison(tag("team"), "=", "risk"),
            Comparison(attr("status"), "=", "FINISHED"),
        )
    )


def test_an_empty_or_blank_filter_means_no_filter() -> None:
    assert parse_filter("") is None
    assert parse_filter("  \n\t ") is None
    assert parse_filter(None) is None


@pytest.mark.parametrize(
    ("text", "identifier"),
    [
        ("metrics.a", metric("a")),
        ("metric.a", metric("a")),
        ("METRICS.a", metric("a")),
        ("params.a", param("a")),
        ("param.a", param("a")),
        ("tags.a", tag("a")),
        ("tag.a", tag("a")),
        ("attributes.status", attr("status")),
        ("attribute.status", attr("status")),
        ("status", attr("status")),
        ("attributes.`status`", attr("status")),
        ("Status", attr("status")),
        ("user", attr("user_id")),
        ("user_id", attr("user_id")),
        ("created", attr("start_time")),
        ("run_name", attr("run_name")),
        ("metrics.`my metric`", metric("my metric")),
        ('metrics."a b"', metric("a b")),
        ("metrics.`with``tick`", metric("with`tick")),
        ('metrics."with""quote"', metric('with"quote')),
        ("tags.mlflow.source.type", tag("mlflow.source.type")),
        ("metrics.2nd_pass", metric("2nd_pass")),
        ("params.and", param("and")),
        ("metrics.précision", metric("précision")),
    ],
)
def test_identifiers_resolve_prefixes_aliases_and_quoted_keys(
    text: str, identifier: Identifier
) -> None:
    operator_and_value = "= 1" if value_type(identifier) == "number" else "= '1'"
    expr = parse_filter(f"{text} {operator_and_value}")
    assert isinstance(expr, Comparison)
    assert expr.identifier == identifier


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("0.5", 0.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("-1", -1),
        ("+2", 2),
        ("-1.5e-3", -1.5e-3),
        ("1E6", 1e6),
        ("7", 7),
        ("123456789012345678901234", 1.2345678901234568e23),
    ],
)
def test_numbers_may_be_signed_fractional_or_exponential(literal: str, value: float) -> None:
    expr = parse_filter(f"metrics.m>{literal}")
    assert expr == Comparison(metric("m"), ">", value)
    assert isinstance(expr.value, int) == isinstance(value, int)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'rf'", "rf"),
        ('"rf"', "rf"),
        ("'it''s'", "it's"),
        (r"'it\'s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        (r"'back\\slash'", "back\\slash"),
        (r"'50\%'", "50\\%"),
        ("'a;--b'", "a;--b"),
        ("''", ""),
    ],
)
def test_strings_take_either_quote_and_escape_quotes_by_doubling_or_backslash(
    literal: str, value: str
) -> None:
    assert parse_filter(f"params.p = {literal}") == Comparison(param("p"), "=", value)


def test_every_comparator_parses_case_insensitively() -> None:
    cases = {
        "metrics.m = 1": "=",
        "metrics.m != 1": "!=",
        "metrics.m < 1": "<",
        "metrics.m <= 1": "<=",
        "metrics.m > 1": ">",
        "metrics.m >= 1": ">=",
        "params.p like 'a%'": "LIKE",
        "params.p ILike 'a%'": "ILIKE",
        "params.p not like 'a%'": "NOT LIKE",
        "params.p NOT ILIKE 'a%'": "NOT ILIKE",
        "params.p in ('a')": "IN",
        "params.p not in ('a')": "NOT IN",
        "params.p is null": "IS NULL",
        "params.p Is Not Null": "IS NOT NULL",
    }
    for text, op in cases.items():
        expr = parse_filter(text)
        assert isinstance(expr, Comparison), text
        assert expr.op == op, text


def test_in_lists_keep_their_values_in_order_and_allow_a_trailing_comma() -> None:
    assert parse_filter("run_id IN ('b', 'a',)") == Comparison(attr("run_id"), "IN", ("b", "a"))
    assert parse_filter("metrics.m NOT IN (1, -2.5)") == Comparison(
        metric("m"), "NOT IN", (1, -2.5)
    )


def test_and_binds_tighter_than_or_and_parentheses_regroup() -> None:
    a, b, c = (Comparison(metric(k), ">", 1) for k in "abc")
    assert parse_filter("metrics.a > 1 or metrics.b > 1 AND metrics.c > 1") == Or((a, And((b, c))))
    assert parse_filter("(metrics.a > 1 OR metrics.b > 1) and metrics.c > 1") == And(
        (Or((a, b)), c)
    )
    assert parse_filter("metrics.a > 1 and (metrics.b > 1 and metrics.c > 1)") == And((a, b, c))
    assert parse_filter("not metrics.a > 1 and metrics.b > 1") == And((Not(a), b))
    assert parse_filter("NOT (metrics.a > 1 or metrics.b > 1)") == Not(Or((a, b)))


def test_comparators_are_limited_to_what_each_kind_holds() -> None:
    assert "<" not in allowed_ops(param("p"))
    assert "LIKE" not in allowed_ops(metric("m"))
    assert "IS NULL" not in allowed_ops(attr("status"))
    assert "IS NULL" in allowed_ops(attr("end_time"))
    assert {spec.type for spec in ATTRIBUTES.values()} == {"string", "number"}


# --- how mistakes are reported --------------------------------------------------------------


def test_a_bad_comparator_is_named_with_its_position() -> None:
    with pytest.raises(SearchSyntaxError) as caught:
        parse_filter("metrics.rmse << 0.5")
    error = caught.value
    assert error.message == (
        "Invalid filter 'metrics.rmse << 0.5': unexpected '<<' at position 13; expected a "
        "comparator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, IS NULL)"
    )
    assert (error.position, error.length) == (13, 2)
    assert error.caret() == "metrics.rmse << 0.5\n             ^^"
    assert isinstance(error, InvalidInputError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.x = 'abc'", r"metrics.x holds numbers; compare it with a number, not the "
         r"string 'abc' \(at position 12\)"),
        ("params.a > 3", r"'>' does not apply to params.a, which holds text \(at position 9\)"),
        ("params.a = 3", r"params.a holds text; compare it with a quoted string, not the bare "
         r"number 3 .*quote it: '3'"),
        ("tags.t <= 'x'", r"'<=' does not apply to tags.t"),
        ("metrics.m LIKE '1%'", r"'LIKE' does not apply to metrics.m, which holds numbers"),
        ("start_time > '2024'", r"attributes.start_time holds numbers"),
        ("status IS NULL", r"'IS NULL' does not apply to attributes.status, which holds text "
         r"and is never null"),
        ("status = FINISHED", r"unexpected 'FINISHED' at position 9; expected a quoted "
         r"string.*quote it: 'FINISHED'"),
        ("tags.t = NULL", r"expected a quoted string.*write tags.t IS NULL"),
        ("metrics.m IN (1, 'a')", r"not the string 'a' \(at position 17\)"),
    ],
)  # fmt: skip
def test_type_mistakes_say_what_the_identifier_holds(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_filter(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.x >", r"unexpected end of filter at position 11; expected a number"),
        ("metrics.x > 1 metrics.y < 2", r"unexpected 'metrics' at position 14; expected AND, "
         r"OR or the end of the filter"),
        ("(metrics.x > 1", r"unexpected end of filter at position 14; expected '\)' to close "
         r"the '\(' at position 0"),
        ("metrics.x > 1)", r"unexpected '\)' at position 13"),
        ("metrics.x > 1abc", r"malformed number '1abc' at position 12"),
        ("metrics.x > 1.2.3", r"malformed number '1.2.3'"),
        ("metrics.x > 1e999", r"number '1e999' at position 12 is out of range"),
        ("params.p = 'abc", r"unterminated ' quote starting at position 11"),
        ("metrics.`abc = 1", r"unterminated ` quote starting at position 8"),
        ("metrics.x == 1", r"unexpected '==' at position 10.*write = instead of =="),
        ("metrics.x <> 1", r"write != instead of <>"),
        ("metrics.x ! 1", r"unexpected '!' at position 10"),
        ("metrics.x > 1 && metrics.y > 1", r"unexpected character '&' at position 14"),
        ("foo = 1", r"unknown attribute 'foo' \(at position 0\).*write metrics.foo"),
        ("metricz.x = 1", r"unknown prefix 'metricz' \(at position 0\)"),
        ("attributes.nope = 'a'", r"unknown attribute 'nope' \(at position 11\)"),
        ("metrics. = 1", r"unexpected '=' at position 9; expected a key name after 'metrics.'"),
        ("metrics.`` = 1", r"empty metric key \(at position 8\)"),
        ("'rf' = params.model", r"unexpected \"'rf'\" at position 0; expected an identifier"),
        ("= 1", r"unexpected '=' at position 0; expected an identifier"),
        ("metrics.x IN ()", r"unexpected '\)' at position 14; expected a number"),
        ("metrics.x IN 1", r"expected '\(' starting the list of values after IN"),
        ("params.p IN ('a' 'b')", r"expected ',' or '\)' to close the '\(' at position 12"),
        ("params.p NOT = 'a'", r"unexpected '=' at position 13; expected LIKE, ILIKE or IN after "
         r"NOT"),
        ("params.p IS 'a'", r"expected NULL after IS"),
        ("params.p IS NOT 'a'", r"expected NULL after IS NOT"),
        (r"params.p LIKE 'a\'", r"unterminated ' quote starting at position 14"),
        (r"params.p LIKE 'a\\'", r"the LIKE pattern 'a\\\\' ends with an unpaired escape"),
        ("metrics.x > 1 AND", r"unexpected end of filter at position 17; expected an "
         r"identifier"),
    ],
)  # fmt: skip
def test_syntax_mistakes_point_at_the_token(text: str, message: str) -> None:
    with pytest.raises(SearchSyntaxError, match=message):
        parse_filter(text)


def test_a_filter_that_nests_too_deeply_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(SearchSyntaxError, match="nests deeper than 64 levels"):
        parse_filter("(" * 5000 + "metrics.x > 1" + ")" * 5000)
    with pytest.raises(SearchSyntaxError, match="nests deeper than 64 levels"):
        parse_filter("NOT " * 5000 + "metrics.x > 1")
    assert parse_filter("(" * 60 + "metrics.x > 1" + ")" * 60) is not None


@pytest.mark.parametrize("bad", ["\x00", "\ud800"])
def test_characters_no_database_can_store_are_refused_before_the_driver_sees_them(
    bad: str,
) -> None:
    with pytest.raises(SearchSyntaxError, match="at position 13 cannot be stored or searched"):
        parse_filter(f"params.p = 'a{bad}'")


def test_a_filter_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="filter_string must be a string, got int"):
        parse_filter(3)  # type: ignore[arg-type]


def test_the_error_quotes_a_filter_holding_single_quotes_unambiguously() -> None:
    with pytest.raises(SearchSyntaxError) as caught:
        parse_filter("params.p = 'a' x")
    assert caught.value.message.startswith("Invalid filter \"params.p = 'a' x\": ")
    assert caught.value.caret().splitlines()[1] == " " * 15 + "^"


# --- properties for any input ---------------------------------------------------------------

_TOKENS = [
    "metrics.x", "params.`a b`", "tags.t", "status", "start_time", "end_time", "(", ")", "AND",
    "or", "NOT", "not", "=", "<", "<=", "!=", ">", ">=", "IN", "LIKE", "ilike", "IS", "NULL",
    "'s'", '"d"', "1", "-2.5e3", ".5", ",", ".", "`", "'", '"', "\\", "%", "attributes.",
]  # fmt: skip


def _assert_only_invalid_input(text: str) -> None:
    try:
        expr = parse_filter(text)
    except InvalidInputError:
        return
    statement = build_search_statement(experiment_ids=[1], filter_string=text)
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        str(statement.compile(dialect=dialect))
    assert parse_filter(format_filter(expr)) == expr


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.characters(), max_size=60))
def test_arbitrary_text_raises_nothing_but_invalid_input(text: str) -> None:
    _assert_only_invalid_input(text)


@settings(max_examples=500, deadline=None)
@given(parts=st.lists(st.sampled_from(_TOKENS), max_size=14), glue=st.sampled_from([" ", ""]))
def test_token_soup_raises_nothing_but_invalid_input(parts: list[str], glue: str) -> None:
    _assert_only_invalid_input(glue.join(parts))


# Generated trees: any key, any string, any finite number, every comparator its kind allows.
_STORABLE = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
_KEYS = st.text(_STORABLE, min_size=1, max_size=12)
_STRINGS = st.text(_STORABLE, max_size=12)
_NUMBERS = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**17), 10**17)


def _no_trailing_escape(text: str) -> bool:
    return (len(text) - len(text.rstrip("\\"))) % 2 == 0


@st.composite
def _comparison(draw: st.DrawFn) -> Comparison:
    kind = draw(st.sampled_from(["metric", "param", "tag", "attribute"]))
    key = draw(st.sampled_from(sorted(ATTRIBUTES)) if kind == "attribute" else _KEYS)
    identifier = Identifier(kind, key)  # type: ignore[arg-type]
    op = draw(st.sampled_from(allowed_ops(identifier)))
    scalars = _NUMBERS if value_type(identifier) == "number" else _STRINGS
    if op in ("IS NULL", "IS NOT NULL"):
        return Comparison(identifier, op, None)
    if op in ("IN", "NOT IN"):
        return Comparison(identifier, op, tuple(draw(st.lists(scalars, min_size=1, max_size=3))))
    if "LIKE" in op:
        return Comparison(identifier, op, draw(_STRINGS.filter(_no_trailing_escape)))
    return Comparison(identifier, op, draw(scalars))


def _group(kind: type[And] | type[Or], children: list[Expr]) -> Expr:
    # The parser flattens a group nested in its own kind; generate trees already flat.
    flat: list[Expr] = []
    for child in children:
        flat.extend(child.operands if isinstance(child, kind) else (child,))
    return kind(tuple(flat))


def _combine(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    pairs = st.lists(children, min_size=2, max_size=3)
    return (
        st.builds(Not, children)
        | pairs.map(lambda xs: _group(And, xs))
        | pairs.map(lambda xs: _group(Or, xs))
    )


@settings(max_examples=400, deadline=None)
@given(expr=st.recursive(_comparison(), _combine, max_leaves=8))
def test_formatting_a_tree_and_parsing_it_back_gives_the_same_tree(expr: Expr) -> None:
    text = format_filter(expr)
    assert parse_filter(text) == expr, text
