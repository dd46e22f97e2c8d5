"""What commands share to reach the library: a client built from settings read at the edge."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from loopml.config import Settings

if TYPE_CHECKING:
    from loopml.tracking.client import Client


@contextmanager
def tracking_client() -> Iterator[Client]:
    """A :class:`~loopml.Client` on the ``LOOPML_*`` settings, flushed and closed afterwards."""
    from loopml.tracking.client import Client

    client = Client(Settings.from_env())
    try:
        yield client
    finally:
        client.close()
