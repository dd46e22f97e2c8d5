"""Files: CSV, Parquet and JSON lines, by path, glob or fsspec URL, read in batches by polars."""

from __future__ import annotations

import glob as globlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from loopml.data.errors import SourceFormatError, SourceNotFoundError
from loopml.data.sources.base import ReadState, SourceBase, read_chunk, rebatch

if TYPE_CHECKING:
    import polars as pl

__all__ = ["FileEntry", "FileSource", "csv_shape_problem"]

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


@dataclass(frozen=True)
class FileEntry:
    """One file a source resolves to; (path, size, mtime) decides whether it is new."""

    path: str
    size: int
    mtime: float

    @property
    def key(self) -> str:
        return f"{self.path}|{self.size}|{self.mtime}"


class FileSource(SourceBase):
    """CSV / Parquet / JSON-lines files: a path, a glob (``data/*.csv``) or an fsspec URL."""

    type: Literal["file"] = "file"
    path: str
    format: Literal["auto", "csv", "parquet", "jsonl"] = "auto"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"
    storage_options: dict[str, Any] = Field(default_factory=dict)
    # Rows looked at to choose each CSV column's type; a later value that does not fit makes
    # the column text (and cleaning's coercion or the contract decides what it becomes).
    infer_rows: int = Field(default=10_000, ge=1)

    def describe(self) -> str:
        return f"file source {self.path!r}"

    # -- listing ---------------------------------------------------------------------------

    def resolve(self) -> list[FileEntry]:
        """The files this source names right now, sorted by path."""
        if _is_remote(self.path):
            return self._resolve_remote()
        path = os.path.expanduser(self.path.removeprefix("file://"))
        if globlib.has_magic(path):
            names = sorted(p for p in globlib.glob(path, recursive=True) if os.path.isfile(p))
            if not names:
                raise SourceNotFoundError(
                    f"{self.describe()} matches no files",
                    hint="check the pattern and the working directory; "
                    "use ** to search sub-folders",
                )
        elif os.path.isdir(path):
            names = sorted(
                os.path.join(path, n)
                for n in os.listdir(path)
                if os.path.splitext(n)[1].lower() in FORMATS and not n.startswith(".")
            )
            if not names:
                raise SourceNotFoundError(
                    f"{self.describe()} is a folder with no .csv/.parquet/.jsonl files",
                    hint="point at a file or a glob such as folder/*.csv",
                )
        elif os.path.exists(path):
            names = [path]
        else:
            raise SourceNotFoundError(
                f"{self.describe()}: no such file {os.path.abspath(path)!r}",
                hint="check the path (relative paths start from the current directory)",
            )
        entries = []
        for name in names:
            stat = os.stat(name)
            entries.append(FileEntry(os.path.abspath(name), stat.st_size, stat.st_mtime))
        return entries

    def _resolve_remote(self) -> list[FileEntry]:
        import fsspec

        try:
            fs, _, paths = fsspec.get_fs_token_paths(
                self.path, storage_options=self.storage_options or None
            )
            entries = []
            for p in sorted(paths):
                info = fs.info(p)
                mtime = info.get("mtime") or info.get("LastModified") or info.get("created") or 0
                entries.append(
                    FileEntry(fs.unstrip_protocol(p), int(info.get("size") or 0), _ts(mtime))
                )
        except FileNotFoundError:
            entries = []
        except Exception as exc:
            raise SourceNotFoundError(
                f"{self.describe()} cannot be listed: {type(exc).__name__}: {exc}",
                hint="check the URL and the storage options (credentials, endpoint)",
            ) from exc
        if not entries:
            raise SourceNotFoundError(
                f"{self.describe()} matches no files", hint="check the URL or pattern"
            )
        return entries

    # -- reading ---------------------------------------------------------------------------

    def batches(self, *, batch_rows: int, state: ReadState) -> Iterator[pl.DataFrame]:
        entries = self.resolve()
        seen = set((state.since or {}).get("files", []))
        state.after["files"] = sorted(seen | {e.key for e in entries})
        todo = [e for e in entries if e.key not in seen]
        frames = (frame for entry in todo for frame in self._read_file(entry, batch_rows))
        yield from rebatch(frames, batch_rows)

    def format_of(self, path: str) -> str:
        if self.format != "auto":
            return self.format
        stem = path.rsplit("?", 1)[0].lower().removesuffix(".gz")
        ext = os.path.splitext(stem)[1]
        if ext not in FORMATS:
            raise SourceFormatError(
                f"{self.describe()}: cannot tell the format of {path!r} from its extension",
                hint="name the format: --format csv|parquet|jsonl (format: in loopml.yaml)",
            )
        return FORMATS[ext]

    def _read_file(self, entry: FileEntry, batch_rows: int) -> Iterator[pl.DataFrame]:
        if entry.size == 0:
            raise SourceFormatError(
                f"{self.describe()}: file {entry.path!r} is empty (0 bytes)",
                hint="check the export that produced it, or remove it from the folder",
            )
        fmt = self.format_of(entry.path)
        if fmt == "csv":
            yield from self._read_csv(entry, batch_rows)
        elif fmt == "parquet":
            yield from self._guard(entry, lambda: self._scan("parquet", entry), batch_rows)
        else:
            yield from self._guard(entry, lambda: self._scan("jsonl", entry), batch_rows)

    def _scan(self, fmt: str, entry: FileEntry, **kw: Any) -> Any:
        import polars as pl

        if _is_remote(entry.path):
            data = _fetch(entry.path, self.storage_options)
            if fmt == "parquet":
                return pl.read_parquet(data).lazy()
            if fmt == "jsonl":
                return pl.read_ndjson(data).lazy()
            return pl.read_csv(data, **kw).lazy()
        if fmt == "parquet":
            return pl.scan_parquet(entry.path)
        if fmt == "jsonl":
            with open(entry.path, "rb") as fh:
                head = fh.read(64).lstrip()
            if head.startswith(b"["):  # a JSON array rather than JSON lines
                return pl.read_json(entry.path).lazy()
            return pl.scan_ndjson(entry.path, infer_schema_length=self.infer_rows)
        return pl.scan_csv(entry.path, **kw)

    def _read_csv(self, entry: FileEntry, batch_rows: int) -> Iterator[pl.DataFrame]:
        import polars as pl

        local = not _is_remote(entry.path)
        if local:
            problem = csv_shape_problem(entry.path, self.delimiter, self.encoding)
            if problem:
                raise SourceFormatError(
                    f"{self.describe()}: {entry.path!r} {problem}",
                    hint="fix or remove that line (ragged rows usually mean an unquoted "
                    "delimiter inside a value)",
                )
        overrides: dict[str, Any] = {}
        # Retry with the offending column read as text when a late value does not fit the
        # type inferred from the first rows; cleaning/contract then decide about it.
        for _ in range(64):
            kw: dict[str, Any] = {
                "separator": self.delimiter,
                "infer_schema_length": self.infer_rows,
                "schema_overrides": overrides or None,
            }
            yielded = False
            try:
                if self.encoding.lower().replace("-", "") not in {"utf8", "utf8lossy"}:
                    frame = pl.read_csv(_decode(entry.path, self.encoding, self), **kw)
                    yielded = True
                    yield frame
                    return
                for frame in self._scan("csv", entry, **kw).collect_batches(
                    chunk_size=read_chunk(batch_rows)
                ):
                    yielded = True
                    yield frame
                return
            except pl.exceptions.ComputeError as exc:
                text = str(exc)
                column = re.search(
                    r"could not parse `(.*?)` as dtype `(\w+)` at column '(.*?)'", text
                )
                if column and not yielded:
                    overrides[column.group(3)] = pl.String
                    continue
                raise _translate(self, entry, exc) from exc
            except pl.exceptions.NoDataError as exc:
                raise _translate(self, entry, exc) from exc
        raise SourceFormatError(  # pragma: no cover - needs 64 retyped columns
            f"{self.describe()}: too many columns change type within {entry.path!r}",
            hint="declare column types in the contract",
        )

    def _guard(self, entry: FileEntry, scan: Any, batch_rows: int) -> Iterator[pl.DataFrame]:
        try:
            yield from scan().collect_batches(chunk_size=read_chunk(batch_rows))
        except Exception as exc:
            if isinstance(exc, SourceFormatError):
                raise
            raise _translate(self, entry, exc) from exc


def _translate(source: FileSource, entry: FileEntry, exc: Exception) -> SourceFormatError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = text.lower()
    where = f"{source.describe()}: {entry.path!r}"
    if "utf-8" in lowered or "utf8" in lowered:
        return SourceFormatError(
            f"{where} is not valid UTF-8 text",
            hint="give its encoding, e.g. --encoding latin-1 (encoding: in loopml.yaml)",
        )
    if "empty" in lowered:
        return SourceFormatError(
            f"{where} is empty (no header, no rows)",
            hint="check the export that produced it, or remove it",
        )
    if "could not parse" in lowered:
        match = re.search(r"could not parse `(.*?)` as dtype `(\w+)` at column '(.*?)'", text)
        detail = (
            f"column {match.group(3)!r} holds {match.group(1)!r}, not {match.group(2)}"
            if match
            else text
        )
        return SourceFormatError(
            f"{where}: {detail} (a value past the first batch does not fit the column's type)",
            hint="declare the column as string in the contract, or fix the value",
        )
    return SourceFormatError(
        f"{where} cannot be read as {source.format_of(entry.path)}: {text}",
        hint="check that the file is complete and of the format its extension says",
    )


def csv_shape_problem(path: str, delimiter: str, encoding: str) -> str | None:
    """Describe the first line whose field count differs from the header's, if any.

    Counting delimiters per line in polars is about 0.5 s per 400 MB; lines with quotes are
    counted after removing quoted sections, and lines with an odd number of quotes (a value
    spanning lines) are skipped rather than guessed at.
    """
    import polars as pl

    if encoding.lower().replace("-", "") not in {"utf8", "utf8lossy"}:
        return None  # decoded in Python later; the parser reports ragged rows there
    try:
        lines = pl.scan_csv(
            path,
            has_header=False,
            separator="\x1f",
            quote_char=None,
            schema={"line": pl.String},
            encoding="utf8-lossy",
        )
        line = pl.col("line").str.strip_chars_end("\r")
        quotes = line.str.count_matches('"', literal=True)
        unquoted = pl.when(quotes > 0).then(line.str.replace_all(r'"[^"]*"', "")).otherwise(line)
        counted = lines.with_row_index("n", offset=1).select(
            "n",
            (unquoted.str.count_matches(delimiter, literal=True) + 1).alias("fields"),
            ((quotes % 2) == 1).alias("odd"),
            (line.str.len_bytes() == 0).alias("blank"),
        )
        counted = counted.filter(~pl.col("blank"))
        header = counted.head(1).collect()
        if header.height == 0:
            return None
        expected = int(header["fields"][0])
        bad = (
            counted.filter(~pl.col("odd") & (pl.col("fields") != expected))
            .head(1)
            .collect(engine="streaming")
        )
    except pl.exceptions.NoDataError:
        return None
    if bad.height == 0:
        return None
    got, number = int(bad["fields"][0]), int(bad["n"][0])
    return f"line {number} has {got} fields where the header has {expected} (ragged row)"


def _decode(path: str, encoding: str, source: FileSource) -> bytes:
    try:
        with open(path, encoding=encoding) as fh:
            return fh.read().encode("utf-8")
    except LookupError:
        raise SourceFormatError(
            f"{source.describe()}: encoding {encoding!r} is unknown",
            hint="use a Python codec name such as utf-8, latin-1 or cp1252",
        ) from None
    except UnicodeDecodeError as exc:
        raise SourceFormatError(
            f"{source.describe()}: {path!r} is not valid {encoding} text (byte {exc.start})",
            hint="give the file's real encoding with --encoding",
        ) from None


def _fetch(url: str, storage_options: dict[str, Any]) -> bytes:
    import fsspec

    with fsspec.open(url, "rb", **storage_options) as fh:
        data: bytes = fh.read()
        return data


def _is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _ts(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    timestamp = getattr(value, "timestamp", None)
    return float(timestamp()) if callable(timestamp) else 0.0
