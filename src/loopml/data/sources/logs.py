"""Application logs: JSON lines, or plain text parsed by a regex with named groups.

A line the pattern does not match is not dropped: it becomes a row whose ``_unparsed`` column
holds the raw line, and ingestion quarantines it with reason ``unparsed_line``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from loopml.data.errors import SourceFormatError
from loopml.data.sources.base import ReadState, SourceBase, read_chunk, rebatch
from loopml.data.sources.files import FileEntry, FileSource

if TYPE_CHECKING:
    import polars as pl

__all__ = ["PRESETS", "UNPARSED", "LogSource"]

UNPARSED = "_unparsed"

# Web-server access logs (NCSA common / combined formats).
PRESETS = {
    "common": r'^(?P<host>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<method>\S+) '
    r'(?P<path>\S+) (?P<protocol>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-)$',
    "combined": r'^(?P<host>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<method>\S+) '
    r'(?P<path>\S+) (?P<protocol>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'"(?P<referrer>[^"]*)" "(?P<agent>[^"]*)"$',
}


class LogSource(SourceBase):
    """Log files by path or glob; ``format: regex`` needs ``pattern`` (or a preset name)."""

    type: Literal["log"] = "log"
    path: str
    format: Literal["json", "regex"] = "json"
    pattern: str | None = None

    @model_validator(mode="after")
    def _pattern_for_regex(self) -> LogSource:
        if self.pattern is not None and self.format == "json":
            object.__setattr__(self, "format", "regex")
        if self.format == "regex":
            if not self.pattern:
                raise ValueError("format regex needs a pattern with named groups")
            try:
                compiled = re.compile(PRESETS.get(self.pattern, self.pattern))
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regex: {exc}") from None
            if not compiled.groupindex:
                raise ValueError("pattern needs named groups such as (?P<status>\\d+)")
        return self

    def describe(self) -> str:
        return f"log source {self.path!r}"

    def batches(self, *, batch_rows: int, state: ReadState) -> Iterator[pl.DataFrame]:
        entries = FileSource(path=self.path, format="csv").resolve()
        seen = set((state.since or {}).get("files", []))
        state.after["files"] = sorted(seen | {e.key for e in entries})
        todo = [e for e in entries if e.key not in seen]
        frames = (f for e in todo for f in self._read(e, batch_rows))
        yield from rebatch(frames, batch_rows)

    def _lines(self, entry: FileEntry) -> pl.LazyFrame:
        import polars as pl

        return pl.scan_csv(
            entry.path,
            has_header=False,
            separator="\x1f",
            quote_char=None,
            schema={"line": pl.String},
        ).filter(pl.col("line").str.strip_chars().str.len_bytes() > 0)

    def _read(self, entry: FileEntry, batch_rows: int) -> Iterator[pl.DataFrame]:
        import polars as pl

        if entry.size == 0:
            return
        try:
            if self.format == "regex":
                pattern = PRESETS.get(self.pattern or "", self.pattern or "")
                line = pl.col("line").str.strip_chars_end("\r")
                query = self._lines(entry).select(
                    line.str.extract_groups(pattern).struct.unnest(),
                    pl.when(line.str.contains(pattern)).then(None).otherwise(line).alias(UNPARSED),
                )
                yield from query.collect_batches(chunk_size=read_chunk(batch_rows))
            else:
                yield from self._read_json(entry, batch_rows)
        except pl.exceptions.ComputeError as exc:
            raise SourceFormatError(
                f"{self.describe()}: {entry.path!r} cannot be read: {str(exc).splitlines()[0]}",
                hint="check the file's encoding (UTF-8 expected) and format",
            ) from exc

    def _read_json(self, entry: FileEntry, batch_rows: int) -> Iterator[pl.DataFrame]:
        import orjson
        import polars as pl

        try:
            yield from pl.scan_ndjson(entry.path, infer_schema_length=10_000).collect_batches(
                chunk_size=read_chunk(batch_rows)
            )
            return
        except pl.exceptions.ComputeError:
            pass  # some line is not JSON: fall back to per-line parsing, keeping bad lines
        for lines in self._lines(entry).collect_batches(chunk_size=read_chunk(batch_rows)):
            records, bad = [], []
            for text in lines["line"]:
                try:
                    value = orjson.loads(text)
                    ok = isinstance(value, dict)
                except orjson.JSONDecodeError:
                    ok = False
                records.append(value if ok else {})
                bad.append(None if ok else text)
            frame = pl.DataFrame(records, infer_schema_length=None)
            yield frame.with_columns(pl.Series(UNPARSED, bad, dtype=pl.String))
