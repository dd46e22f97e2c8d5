"""Where data comes from: source specs as they appear in ``loopml.yaml``, and their readers.

A source is a small pydantic model with a ``type`` field; :data:`SourceSpec` is the union of
all kinds, so a project file can say::

    sources:
      - {type: file, path: "data/*.csv"}
      - {type: sql, url: "postgresql+psycopg://db/shop", query: "select * from orders",
         watermark: updated_at}
      - {type: http, url: "https://api.example.com/v1/items", records: data.items,
         pagination: {kind: next_link, next: links.next}, auth_env: API_TOKEN}
      - {type: log, path: "logs/access.log", format: regex, pattern: '(?P<ip>\\S+) ...'}

Readers yield polars data frames in bounded batches so that inputs larger than memory stream
through validation, cleaning and storage; :func:`read_source` gathers them into one Arrow table
for callers that want everything at once. Heavy libraries load only when a source is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, TypeAdapter

from loopml.data.sources.base import DEFAULT_BATCH_ROWS, ReadState
from loopml.data.sources.files import FileSource
from loopml.data.sources.http_api import HttpSource, Pagination
from loopml.data.sources.logs import LogSource
from loopml.data.sources.sql import SqlSource
from loopml.data.spec_errors import describe_validation_error
from loopml.errors import InvalidInputError

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "FileSource",
    "HttpSource",
    "LogSource",
    "Pagination",
    "ReadState",
    "SourceSpec",
    "describe_source",
    "iter_batches",
    "parse_source",
    "read_source",
]

SourceSpec = Annotated[FileSource | SqlSource | HttpSource | LogSource, Field(discriminator="type")]
"""Any source, told apart by its ``type`` field (``file``, ``sql``, ``http``, ``log``)."""

_ADAPTER: TypeAdapter[Any] = TypeAdapter(SourceSpec)


def parse_source(value: Any, **options: Any) -> FileSource | SqlSource | HttpSource | LogSource:
    """Turn a mapping (from YAML), a spec, or a command-line string into a source spec.

    A string is read as: ``sqlite://``/``postgresql://``/``mysql://`` URL → SQL (needs
    ``query=``); ``http(s)://`` URL not ending in a file extension → HTTP API; a path ending in
    ``.log`` or given ``format='regex'``/``pattern=`` → log file; anything else → file (path,
    glob or fsspec URL). Keyword ``options`` fill the remaining fields.
    """
    if isinstance(value, FileSource | SqlSource | HttpSource | LogSource):
        return value
    if isinstance(value, dict):
        try:
            spec: FileSource | SqlSource | HttpSource | LogSource = _ADAPTER.validate_python(value)
            return spec
        except Exception as exc:  # pydantic's ValidationError, translated for people
            raise InvalidInputError(
                f"source {value!r} is not a valid source spec: {describe_validation_error(exc)}",
                hint="give type: file|sql|http|log with its fields (see loopml.data.sources)",
            ) from None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(
            f"source {value!r} is not a path, URL or source spec",
            hint="pass a file path or glob, a SQL URL with a query, or an http(s) URL",
        )
    options = {k: v for k, v in options.items() if v is not None}
    kind = options.pop("type", None) or _guess_kind(value, options)
    field = {"sql": "url", "http": "url"}.get(kind, "path")
    return parse_source({"type": kind, field: value, **options})


def _guess_kind(text: str, options: dict[str, Any]) -> str:
    lowered = text.lower()
    scheme = lowered.split("://", 1)[0] if "://" in lowered else ""
    if scheme.split("+", 1)[0] in {"sqlite", "postgresql", "postgres", "mysql", "mssql", "oracle"}:
        return "sql"
    if "query" in options or "table" in options:
        return "sql"
    file_like = lowered.rsplit("?", 1)[0].endswith(
        (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json", ".gz")
    )
    if scheme in {"http", "https"} and not file_like:
        return "http"
    if "pattern" in options or options.get("format") == "regex" or lowered.endswith(".log"):
        return "log"
    return "file"


def describe_source(spec: FileSource | SqlSource | HttpSource | LogSource) -> str:
    """A short human description used in messages ("file source 'data/*.csv'")."""
    return spec.describe()


def iter_batches(
    spec: FileSource | SqlSource | HttpSource | LogSource | str | dict[str, Any],
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    state: ReadState | None = None,
) -> Iterator[pl.DataFrame]:
    """Yield the source's rows as polars frames of at most about ``batch_rows`` rows.

    ``state`` (optional) carries incremental bookkeeping: with ``state.since`` set, only files
    not seen before, or rows past the watermark, are read; ``state.after`` is filled with the
    position to resume from next time.
    """
    source = parse_source(spec)
    yield from source.batches(batch_rows=batch_rows, state=state or ReadState())


def read_source(
    spec: FileSource | SqlSource | HttpSource | LogSource | str | dict[str, Any],
    *,
    state: ReadState | None = None,
) -> pa.Table:
    """Read a whole source into one Arrow table (use :func:`iter_batches` for big inputs)."""
    import polars as pl

    source = parse_source(spec)
    frames = list(source.batches(batch_rows=DEFAULT_BATCH_ROWS, state=state or ReadState()))
    if not frames:
        raise InvalidInputError(
            f"{source.describe()} has no data", hint="check that the source holds rows"
        )
    return pl.concat(frames, how="vertical_relaxed").to_arrow()
