"""Side tables written beside each version: the quarantine and the change log.

``quarantine.parquet``: every row cleaning removed, with its original values (as text, so rows
of any type fit one table), the source row number ``_row`` and the reason code ``_reason``.
``changes.parquet``: every value cleaning changed in a kept row: row, key, column, old, new,
reason. Both are written in batches while the version streams, so they never need memory for
more than one batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.data.clean_engine import REASON, ROW

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = ["SideWriter", "quarantine_rows"]


def quarantine_rows(raw: pl.DataFrame, removed: pl.DataFrame) -> pl.DataFrame:
    """The original rows of ``raw`` named in ``removed`` (ROW, REASON), all values as text."""
    import polars as pl

    if removed.height == 0:
        return pl.DataFrame()
    originals = raw.join(removed, on=ROW, how="inner").sort(ROW)
    values = [pl.col(c).cast(pl.String) for c in raw.columns if c != ROW]
    return originals.select(pl.col(ROW).cast(pl.Int64), pl.col(REASON), *values)


class SideWriter:
    """Appends frames to one Parquet file; the file exists only if something was written."""

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        self.uri = uri
        self.storage_options = storage_options or {}
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._handle: Any = None

    def write(self, frame: pl.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if frame.height == 0:
            return
        table = frame.to_arrow()
        if self._writer is None:
            import fsspec

            self._schema = table.schema
            self._handle = fsspec.open(
                self.uri, "wb", auto_mkdir=True, **self.storage_options
            ).open()
            self._writer = pq.ParquetWriter(self._handle, self._schema)
        assert self._schema is not None
        if table.schema != self._schema:
            # later batches may lack a column or differ in nullability: align by name, as text
            table = pa.table(
                {
                    f.name: (
                        table.column(f.name).cast(f.type)
                        if f.name in table.column_names
                        else pa.nulls(table.num_rows, f.type)
                    )
                    for f in self._schema
                }
            )
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> str | None:
        """Finish the file; returns its URI, or None if nothing was written."""
        if self._writer is None:
            return None
        self._writer.close()
        self._handle.close()
        return self.uri
