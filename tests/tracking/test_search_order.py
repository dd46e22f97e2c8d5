"""Reading ``order_by`` clauses (the orderings themselves run in test_search_queries.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopml.errors import InvalidInputError
from loopml.tracking.search_order import OrderKey, format_order_key, parse_order_by
from loopml.tracking.search_syntax import ATTRIBUTES, Identifier, SearchSyntaxError


def test_clauses_name_an_identifier_and_an_optional_direction() -> None:
    assert parse_order_by(
        ["metrics.m1 DESC", "params.model", "attributes.start_time asc", "start_time", "tag.t Desc"]
    ) == (
        OrderKey(Identifier("metric", "m1"), ascending=False),
        OrderKey(Identifier("param", "model"), ascending=True),
        OrderKey(Identifier("attribute", "start_time"), ascending=True),
        OrderKey(Identifier("attribute", "start_time"), ascending=True),
        OrderKey(Identifier("tag", "t"), ascending=False),
    )


def test_quoted_keys_work_in_order_by_as_in_filters() -> None:
    assert parse_order_by(["metrics.`val loss` DESC", 'params."a-b"']) == (
        OrderKey(Identifier("metric", "val loss"), ascending=False),
        OrderKey(Identifier("param", "a-b")),
    )


def test_no_order_by_means_no_keys() -> None:
    assert parse_order_by(None) == ()
    assert parse_order_by([]) == ()


@pytest.mark.parametrize(
    ("clause", "message"),
    [
        ("metrics.m1 DESCC", r"Invalid order_by clause 'metrics.m1 DESCC': unexpected 'DESCC' at "
         r"position 11; expected ASC, DESC or the end of the clause"),
        ("metrics.m1 DESC ASC", r"unexpected 'ASC' at position 16; expected the end of the "
         r"clause"),
        ("metrics.m1, metrics.m2", r"unexpected ',' at position 10.*one key per list item"),
        ("", r"unexpected end of order_by clause at position 0; expected an identifier"),
        ("nope DESC", r"unknown attribute 'nope' \(at position 0\)"),
        ("metrics.", r"expected a key name after 'metrics.'"),
    ],
)  # fmt: skip
def test_a_bad_clause_is_reported_with_its_position(clause: str, message: str) -> None:
    with pytest.raises(SearchSyntaxError, match=message):
        parse_order_by([clause])


def test_order_by_must_be_a_list_of_strings() -> None:
    with pytest.raises(InvalidInputError, match="order_by must be a list of strings"):
        parse_order_by("metrics.m1 DESC")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="order_by must be a list of strings"):
        parse_order_by([3])  # type: ignore[list-item]


_IDENTIFIERS = st.builds(
    Identifier,
    st.sampled_from(["metric", "param", "tag"]),
    # Storable text only: NUL and lone surrogates are refused on purpose (test_search_filter).
    st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=10
    ),
) | st.builds(Identifier, st.just("attribute"), st.sampled_from(sorted(ATTRIBUTES)))


@given(key=st.builds(OrderKey, _IDENTIFIERS, st.booleans()))
def test_a_formatted_key_parses_back_to_itself(key: OrderKey) -> None:
    assert parse_order_by([format_order_key(key)]) == (key,)
