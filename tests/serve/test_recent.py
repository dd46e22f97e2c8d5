"""Recent request ids: what feedback looks up before it reads the log on disk."""

from __future__ import annotations

import gc
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.serve.recent import RecentIds


def test_an_answered_id_is_known_with_its_model_version_and_rows() -> None:
    recent = RecentIds(1000)
    recent.add("a", "churn", "3", 1)
    recent.add("b", "churn", "4", 100)
    recent.add("c", "fraud", "3", 2**39)
    assert recent.get("a") == ("churn", "3", 1)
    assert recent.get("b") == ("churn", "4", 100)
    assert recent.get("c") == ("fraud", "3", 2**39)
    assert recent.get("d") is None
    assert "a" in recent
    assert "d" not in recent
    assert len(recent) == 3


@settings(max_examples=60, deadline=None)
@given(limit=st.integers(RecentIds.GENERATIONS, 5000), added=st.integers(0, 20_000))
def test_the_newest_ids_are_kept_up_to_the_limit(limit: int, added: int) -> None:
    recent = RecentIds(limit)
    for i in range(added):
        recent.add(f"id-{i}", "m", "1", i % 7)
    kept = [i for i in range(added) if f"id-{i}" in recent]
    assert len(recent) == len(kept) <= limit
    # What is kept is always the newest ids, at least fifteen sixteenths of the limit of them.
    assert kept == list(range(added - len(kept), added))
    assert len(kept) >= min(added, limit // RecentIds.GENERATIONS * 15)
    assert len(kept) < limit // RecentIds.GENERATIONS * RecentIds.GENERATIONS
    if kept:
        assert recent.get(f"id-{added - 1}") == ("m", "1", (added - 1) % 7)


def test_fewer_than_one_id_per_generation_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        RecentIds(15)


@pytest.mark.skipif(
    sys.version_info >= (3, 14), reason="CPython 3.14's incremental collector tracks every dict"
)
def test_a_million_ids_are_invisible_to_the_garbage_collector() -> None:
    """A full collection would otherwise walk every entry, some 15 ms at a million ids,
    while requests wait for the GIL."""
    recent = RecentIds(1_000_000)
    for i in range(200_000):
        recent.add(f"{i:x}", "churn", "3", i % 5)
    assert not any(gc.is_tracked(generation) for generation in recent._generations)
