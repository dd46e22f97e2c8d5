"""Incremental ingestion: what the previous version read, and how to read only what is new.

Each version records the :class:`~loopml.data.sources.base.ReadState` its read ended with
(files seen as ``path|size|mtime`` keys, or the highest watermark value) in the ``source``
column of ``dataset_versions``. The next incremental ingestion hands that record to the reader
as ``since``: file sources skip files already seen, SQL sources add ``WHERE watermark >
:after``, HTTP sources filter on the watermark field (and pass it as ``since_param``).
"""

from __future__ import annotations

from typing import Any

from loopml.data.sources.base import ReadState
from loopml.data.sources.files import FileSource
from loopml.data.sources.http_api import HttpSource
from loopml.data.sources.logs import LogSource
from loopml.data.sources.sql import SqlSource
from loopml.errors import InvalidInputError

__all__ = ["start_state", "supports_incremental"]


def supports_incremental(spec: FileSource | SqlSource | HttpSource | LogSource) -> bool:
    """Files and logs always can; SQL and HTTP sources need a ``watermark`` column/field."""
    if isinstance(spec, FileSource | LogSource):
        return True
    return spec.watermark is not None


def start_state(
    spec: FileSource | SqlSource | HttpSource | LogSource,
    previous: dict[str, Any] | None,
    *,
    incremental: bool,
) -> ReadState:
    """The read state for a new ingestion given the previous version's recorded ``source``."""
    if not incremental:
        return ReadState()
    if not supports_incremental(spec):
        raise InvalidInputError(
            f"{spec.describe()} cannot be read incrementally: it has no watermark",
            hint="set watermark: to a column that only grows (an id or updated_at)",
        )
    since = (previous or {}).get("state") if previous else None
    return ReadState(since=since or None)
