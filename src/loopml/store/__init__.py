"""The metadata store: schema, connections and migrations (the bottom layer of loopml)."""

from loopml.store.database import Database

__all__ = ["Database"]
