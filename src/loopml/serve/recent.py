"""The request ids a server answered lately, so that feedback finds them without the disk."""

from __future__ import annotations

import collections

__all__ = ["RecentIds"]

_ROWS_BITS = 40  # rows per request fit below this; the model version's number goes above
_MAX_ROWS = (1 << _ROWS_BITS) - 1  # far beyond any request the body-size limit lets in


class RecentIds:
    """The newest answered request ids, each with the model name, version and number of rows
    that answered it: at most ``limit`` of them, and at least fifteen sixteenths of ``limit``
    rounded down to a multiple of 16 (``limit`` must be 16 or more).

    Built to cost a busy server nothing it would notice, with a million ids:

    - sixteen insertion-only dictionaries ("generations"), newest last: ids go into the
      newest until it holds ``limit / 16``, then the oldest generation is dropped whole. One
      dictionary trimmed from the front would keep exactly ``limit``, but its deleted slots
      force a full rehash every few tens of seconds, one C call that holds the GIL for some
      80 ms while every request waits; here the largest step is one generation (a few ms);
    - values are plain integers (which model version, and how many rows), never tuples:
      up to CPython 3.13, a dictionary holding only strings and integers is invisible to the
      cyclic garbage collector, which would otherwise walk all million entries at every full
      collection (3.14's incremental collector tracks every dictionary, in smaller steps).

    Used from the event loop's thread only.
    """

    GENERATIONS = 16

    def __init__(self, limit: int) -> None:
        if limit < self.GENERATIONS:
            raise ValueError(f"keep at least {self.GENERATIONS} recent request ids, not {limit}")
        self._size = limit // self.GENERATIONS
        self._current: dict[str, int] = {}
        self._generations: collections.deque[dict[str, int]] = collections.deque([self._current])
        self._numbers: dict[tuple[str, str], int] = {}  # (model, version) -> its number
        self._versions: list[tuple[str, str]] = []  # number -> (model, version)

    def add(self, request_id: str, model: str, version: str, rows: int) -> None:
        """Remember that ``model`` ``version`` answered ``request_id`` with ``rows`` rows."""
        number = self._numbers.get((model, version))
        if number is None:
            number = self._numbers[(model, version)] = len(self._versions)
            self._versions.append((model, version))
        current = self._current
        current[request_id] = (number << _ROWS_BITS) | min(rows, _MAX_ROWS)
        if len(current) >= self._size:
            self._current = {}
            self._generations.append(self._current)
            if len(self._generations) > self.GENERATIONS:
                self._generations.popleft()

    def get(self, request_id: str) -> tuple[str, str, int] | None:
        """``(model, version, rows)`` for ``request_id``; ``None`` if unknown or forgotten."""
        for generation in reversed(self._generations):
            value = generation.get(request_id)
            if value is not None:
                model, version = self._versions[value >> _ROWS_BITS]
                return model, version, value & _MAX_ROWS
        return None

    def __contains__(self, request_id: object) -> bool:
        return isinstance(request_id, str) and self.get(request_id) is not None

    def __len__(self) -> int:
        return sum(len(generation) for generation in self._generations)
