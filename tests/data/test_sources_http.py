"""HTTP API sources against a real server on 127.0.0.1: pagination, retries, auth."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from loopml.data.errors import SourceUnavailableError
from loopml.data.sources import HttpSource, ReadState, read_source
from loopml.errors import InvalidInputError

from .conftest import Api

ITEMS = [{"id": i, "name": f"item{i}", "price": i * 2.5} for i in range(1, 8)]


def test_next_link_pagination_follows_links_in_the_body(api: Api) -> None:
    def page(query: dict[str, str], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        start = int(query.get("cursor", "0"))
        chunk = ITEMS[start : start + 3]
        nxt = f"/items?cursor={start + 3}" if start + 3 < len(ITEMS) else None
        return 200, {"data": {"items": chunk}, "links": {"next": nxt}}, {}

    api.routes["/items"] = page
    source = HttpSource(
        url=f"{api.url}/items",
        records="data.items",
        pagination={"kind": "next_link", "next": "links.next"},
    )
    table = pl.from_arrow(read_source(source))
    assert table["id"].to_list() == list(range(1, 8))
    assert len(api.calls) == 3


def test_next_link_pagination_can_follow_the_link_header(api: Api) -> None:
    def page(query: dict[str, str], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        start = int(query.get("from", "0"))
        extra = (
            {"Link": f'<{api.url}/h?from={start + 4}>; rel="next"'}
            if start + 4 < len(ITEMS)
            else {}
        )
        return 200, ITEMS[start : start + 4], extra

    api.routes["/h"] = page
    table = read_source(
        HttpSource(url=f"{api.url}/h", pagination={"kind": "next_link", "next": "header"})
    )
    assert table.num_rows == 7


def test_page_number_pagination_stops_at_an_empty_page(api: Api) -> None:
    def page(query: dict[str, str], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        number, size = int(query["page"]), int(query["per_page"])
        return 200, {"results": ITEMS[(number - 1) * size : number * size]}, {}

    api.routes["/p"] = page
    source = HttpSource(
        url=f"{api.url}/p",
        records="results",
        pagination={"kind": "page", "param": "page", "size_param": "per_page", "size": 3},
    )
    assert read_source(source).num_rows == 7
    assert [c[1]["page"] for c in api.calls] == ["1", "2", "3", "4"]


def test_server_errors_are_retried_with_backoff(api: Api) -> None:
    failures = {"left": 2}

    def flaky(query: dict[str, str], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if failures["left"]:
            failures["left"] -= 1
            return 503, {"error": "busy"}, {}
        return 200, ITEMS, {}

    api.routes["/flaky"] = flaky
    import time

    started = time.monotonic()
    table = read_source(HttpSource(url=f"{api.url}/flaky", retries=3, backoff=0.05))
    assert table.num_rows == 7
    assert len(api.calls) == 3
    assert time.monotonic() - started >= 0.05 + 0.1  # backoff doubles: 0.05 then 0.1


def test_a_service_that_keeps_failing_is_reported_unavailable(api: Api) -> None:
    api.routes["/down"] = lambda q, h: (500, {"error": "boom"}, {})
    with pytest.raises(
        SourceUnavailableError, match=r"http source .*/down.* after 3 attempts \(last: HTTP 500\)"
    ) as info:
        read_source(HttpSource(url=f"{api.url}/down", retries=2, backoff=0.01))
    assert "API is up" in (info.value.hint or "")


def test_an_unreachable_api_names_the_url() -> None:
    with pytest.raises(
        SourceUnavailableError, match=r"http source 'http://127\.0\.0\.1:1/x' cannot be reached"
    ):
        read_source(HttpSource(url="http://127.0.0.1:1/x", retries=1, backoff=0.01, timeout=2))


def test_the_auth_header_comes_from_the_environment(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def secured(query: dict[str, str], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if headers.get("authorization") != "Bearer s3cret":
            return 401, {"error": "who are you"}, {}
        return 200, ITEMS, {}

    api.routes["/secure"] = secured
    source = HttpSource(url=f"{api.url}/secure", auth_env="LOOPML_TEST_TOKEN")
    monkeypatch.delenv("LOOPML_TEST_TOKEN", raising=False)
    with pytest.raises(
        InvalidInputError, match=r"needs a token in the environment variable 'LOOPML_TEST_TOKEN'"
    ):
        read_source(source)
    monkeypatch.setenv("LOOPML_TEST_TOKEN", "wrong")
    with pytest.raises(InvalidInputError, match=r"refused the request \(HTTP 401\)") as info:
        read_source(source)
    assert "LOOPML_TEST_TOKEN" in (info.value.hint or "")
    monkeypatch.setenv("LOOPML_TEST_TOKEN", "s3cret")
    assert read_source(source).num_rows == 7


def test_a_watermark_field_reads_only_newer_records(api: Api) -> None:
    api.routes["/feed"] = lambda q, h: (
        200,
        [r for r in ITEMS if r["id"] > int(q.get("since", 0))],
        {},
    )
    source = HttpSource(url=f"{api.url}/feed", watermark="id", since_param="since")
    state = ReadState()
    assert read_source(source, state=state).num_rows == 7
    assert state.after["watermark"] == 7
    with pytest.raises(InvalidInputError, match="has no data"):
        read_source(source, state=ReadState(since=state.after))
    assert api.calls[-1][1] == {"since": "7"}


def test_a_non_json_answer_is_named(api: Api) -> None:
    api.routes["/html"] = lambda q, h: (200, b"<html>hello</html>", {})
    from loopml.data.errors import SourceFormatError

    with pytest.raises(SourceFormatError, match="not JSON"):
        read_source(HttpSource(url=f"{api.url}/html"))
