"""What every source kind shares: the pydantic base, incremental read state, batching."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import polars as pl

__all__ = ["DEFAULT_BATCH_ROWS", "ReadState", "SourceBase", "rebatch"]

# One million rows of ~25 numeric columns is ~200 MB in Arrow: big enough that a typical
# file is one batch (fast, exact statistics), small enough that many batches fit in 2 GiB.
DEFAULT_BATCH_ROWS = 1_000_000


@dataclass
class ReadState:
    """Incremental bookkeeping handed to a reader.

    ``since`` is what the previous version recorded (None: read everything); the reader fills
    ``after`` with what this read covered (files seen, highest watermark), which the dataset
    store records with the new version.
    """

    since: dict[str, Any] | None = None
    after: dict[str, Any] = field(default_factory=dict)


class SourceBase(BaseModel):
    """Base of every source spec: frozen, and unknown keys are an error (typos surface)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def describe(self) -> str:  # pragma: no cover - every kind overrides it
        raise NotImplementedError

    def batches(self, *, batch_rows: int, state: ReadState) -> Iterator[pl.DataFrame]:
        """Yield the rows as polars frames of at most about ``batch_rows`` rows."""
        raise NotImplementedError  # pragma: no cover


def rebatch(frames: Iterable[pl.DataFrame], batch_rows: int) -> Iterator[pl.DataFrame]:
    """Regroup small frames into frames of about ``batch_rows`` rows (types relaxed to match)."""
    import polars as pl

    pending: list[pl.DataFrame] = []
    size = 0
    for frame in frames:
        if frame.height == 0:
            continue
        pending.append(frame)
        size += frame.height
        if size >= batch_rows:
            yield pl.concat(pending, how="vertical_relaxed")
            pending, size = [], 0
    if pending:
        yield pl.concat(pending, how="vertical_relaxed")
