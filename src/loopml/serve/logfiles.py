"""Where the prediction log's Parquet files live: a local folder or an object store.

The log is written in two steps (see :mod:`loopml.serve.predlog`): a spool of Arrow streams
on the server's own disk, then Parquet files published to the log's location. The location
may be a local folder or any fsspec URL (``s3://bucket/serving/logs``, ``gs://...``,
``memory://...``): the Hive layout and the file names are the same everywhere, so DuckDB,
polars, Spark or Trino read either with the same query. The spool always stays local: it is
what survives ``kill -9``, and object stores have no append.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loopml.errors import ConfigError

__all__ = ["LogLocation", "is_url", "write_parquet"]


def is_url(target: str | Path) -> bool:
    """Whether ``target`` names an fsspec URL (``s3://...``) rather than a local path."""
    return isinstance(target, str) and "://" in target and not target.startswith("file://")


class LogLocation:
    """The root the log's Parquet files are published under, with the operations the log
    needs: write one file atomically, list a table's files, open them as a dataset."""

    def __init__(
        self, target: str | Path, *, storage_options: Mapping[str, Any] | None = None
    ) -> None:
        text = str(target)
        if text.startswith("file://"):
            text = text[len("file://") :]
        self.url = text
        self.local: Path | None = None if is_url(text) else Path(text)
        self._options = dict(storage_options or {})
        self._fs: Any = None
        self._root = ""
        if self.local is None:
            self._open_remote()

    @classmethod
    def of(
        cls, target: str | Path | LogLocation, *, storage_options: Mapping[str, Any] | None = None
    ) -> LogLocation:
        """``target`` itself if it is a location already, else the location it names."""
        if isinstance(target, LogLocation):
            return target
        return cls(target, storage_options=storage_options)

    def _open_remote(self) -> None:
        try:
            from fsspec.core import url_to_fs
        except ImportError as exc:  # pragma: no cover - fsspec is a core dependency
            raise ConfigError("a remote prediction log needs fsspec") from exc
        try:
            self._fs, self._root = url_to_fs(self.url, **self._options)
        except (ImportError, ValueError) as exc:
            scheme = self.url.split("://", 1)[0]
            hint = "pip install 'loopml[s3]'" if scheme in ("s3", "s3a") else None
            raise ConfigError(
                f"cannot open the prediction log location {self.url!r}: {exc}", hint=hint
            ) from exc
        self._root = self._root.rstrip("/")

    def __str__(self) -> str:
        return self.url

    def default_spool(self, home: Path) -> Path:
        """The local spool folder: inside the log folder, or under ``home`` for a URL.

        Named after the URL, so a restarted server finds (and recovers) the spool its
        killed predecessor left for the same log.
        """
        if self.local is not None:
            return self.local / "_spool"
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        return home / "serving" / "spool" / digest

    # ---- writing ---------------------------------------------------------------------

    def check_writable(self) -> None:
        """Fail now, with a clear error, if files cannot be published here.

        A server that found out at its first roll would keep answering while its log piled
        up in the spool; checking at start turns a wrong bucket or missing credentials into
        an error before the port is bound.
        """
        if self.local is not None:
            try:
                self.local.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot create the prediction log folder {self.url!r}: {exc.strerror}",
                    hint="choose a writable folder with --log-dir",
                ) from None
            return
        probe = f"{self._root}/_loopml_write_check"
        try:
            self._fs.pipe_file(probe, b"")
            self._fs.rm_file(probe)
        except Exception as exc:  # each filesystem raises its own errors
            raise ConfigError(
                f"cannot write the prediction log to {self.url!r}: {type(exc).__name__}: "
                f"{str(exc)[:200]}",
                hint="check the bucket exists and the credentials and endpoint "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL for S3)",
            ) from None

    def publish(self, table: Any, kind: str, model: str, date: str, file_name: str) -> None:
        """Write ``table`` as ``<kind>/model=<model>/date=<date>/<file_name>``, all or nothing.

        Locally through a temporary file and a rename; on an object store a single upload,
        which becomes visible only once complete. The same name written twice overwrites.
        """
        relative = f"{kind}/model={model}/date={date}/{file_name}"
        if self.local is not None:
            final = self.local / relative
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_suffix(".parquet.tmp")
            write_parquet(table, tmp)
            os.replace(tmp, final)
            return
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        write_parquet(table, sink)
        self._fs.pipe_file(f"{self._root}/{relative}", sink.getvalue().to_pybytes())

    # ---- reading ---------------------------------------------------------------------

    def files(self, kind: str) -> list[str]:
        """Every published Parquet file of one table (``predictions`` or ``feedback``)."""
        if self.local is not None:
            return sorted(str(p) for p in (self.local / kind).glob("**/*.parquet"))
        try:
            found = self._fs.glob(f"{self._root}/{kind}/**/*.parquet")
        except FileNotFoundError:
            return []
        return sorted(str(p) for p in found)

    def dataset(self, kind: str) -> Any:
        """The table as a ``pyarrow.dataset`` (``None`` when nothing is published yet)."""
        import pyarrow.dataset as ds

        paths = self.files(kind)
        if not paths:
            return None
        if self.local is not None:
            return ds.dataset(paths, format="parquet")
        return ds.dataset(paths, format="parquet", filesystem=self._fs)


def write_parquet(table: Any, where: Any) -> None:
    """Write a spooled table as Parquet that every reader sees with plain types.

    The spool's text columns are Arrow dictionaries (one entry per request, cheap to build).
    Parquet stores them dictionary-encoded as they are; without the Arrow schema in the
    file's metadata (``store_schema=False``) readers get plain strings back, and polars does
    not turn request ids into categoricals. Casting them to plain strings first would cost
    as much again as the write. Statistics are kept for the columns readers filter on.
    Only text columns are dictionary-encoded: numbers (inputs, predictions, latencies) rarely
    repeat enough to gain from it, and trying costs a hash of every value (a roll of numeric
    inputs took 10-30 % less time without).
    """
    import pyarrow.parquet as pq

    pq.write_table(
        table,
        where,
        compression="zstd",
        store_schema=False,
        write_statistics=[c for c in _STATISTICS if c in table.column_names],
        use_dictionary=_text_columns(table.schema),
    )


def _text_columns(schema: Any, prefix: str = "") -> list[str]:
    """Paths of the string columns of ``schema`` (``inputs.plan`` inside a struct)."""
    import pyarrow as pa

    paths: list[str] = []
    for field in schema:
        kind = field.type
        if pa.types.is_struct(kind):
            paths += _text_columns(
                [kind.field(i) for i in range(kind.num_fields)], f"{prefix}{field.name}."
            )
        elif (
            pa.types.is_dictionary(kind)
            or pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
        ):
            paths.append(prefix + field.name)
    return paths


_STATISTICS = ("request_id", "timestamp", "status", "row", "version", "target", "shadow")
