"""SQL: a query (or a whole table) through a SQLAlchemy URL, streamed in batches.

Incremental reads wrap the query as ``SELECT * FROM (query) AS src WHERE <watermark> > :after``
so only rows past the highest watermark value seen by the previous version are read.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from loopml.data.errors import SourceFormatError, SourceUnavailableError
from loopml.data.sources.base import ReadState, SourceBase
from loopml.errors import InvalidInputError, MissingDependencyError

if TYPE_CHECKING:
    import polars as pl

__all__ = ["SqlSource"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


class SqlSource(SourceBase):
    """Rows from a SQL database: ``query`` (or ``table``) run through a SQLAlchemy ``url``."""

    type: Literal["sql"] = "sql"
    url: str
    query: str | None = None
    table: str | None = None
    watermark: str | None = Field(
        default=None, description="column whose highest value marks what was already read"
    )
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_of_query_or_table(self) -> SqlSource:
        if (self.query is None) == (self.table is None):
            raise ValueError("give exactly one of query or table")
        for name in (self.table, self.watermark):
            if name is not None and not _IDENTIFIER.match(name):
                raise ValueError(f"{name!r} is not a plain SQL identifier")
        return self

    def describe(self) -> str:
        return f"sql source {_safe_url(self.url)!r}"

    def batches(self, *, batch_rows: int, state: ReadState) -> Iterator[pl.DataFrame]:
        import polars as pl
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        engine = self._engine()
        base = self.query if self.query is not None else f"SELECT * FROM {self.table}"
        params = dict(self.params)
        sql = base
        after = (state.since or {}).get("watermark")
        if self.watermark and after is not None:
            sql = f"SELECT * FROM ({base}) AS src WHERE {self.watermark} > :_loopml_after"
            params["_loopml_after"] = _restore(after)
        if self.watermark:
            sql = f"SELECT * FROM ({sql}) AS src ORDER BY {self.watermark}"
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            engine.dispose()
            raise SourceUnavailableError(
                f"{self.describe()} cannot be reached: {_first_line(exc)}",
                hint="check that the database server is running and the URL "
                "(host, port, database, user) is right",
            ) from exc
        highest = after
        try:
            result = conn.execution_options(stream_results=True).execute(text(sql), params)
            columns = list(result.keys())
            while True:
                rows = result.fetchmany(batch_rows)
                if not rows:
                    break
                frame = pl.DataFrame(
                    [tuple(r) for r in rows], schema=columns, orient="row", infer_schema_length=None
                )
                if self.watermark:
                    if self.watermark not in frame.columns:
                        raise InvalidInputError(
                            f"{self.describe()}: watermark column {self.watermark!r} is not "
                            f"in the query's result (columns: {', '.join(columns)})",
                            hint="select the watermark column in the query",
                        )
                    top = frame[self.watermark].max()
                    highest = _store(top) if top is not None else highest
                yield frame
        except SQLAlchemyError as exc:
            raise SourceFormatError(
                f"{self.describe()}: the query failed: {_first_line(exc)}",
                hint="check the query, table and column names against the database",
            ) from exc
        finally:
            conn.close()
            engine.dispose()
        if self.watermark:
            state.after["watermark"] = highest

    def _engine(self) -> Any:
        from sqlalchemy import create_engine
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        url = self.url
        if url.startswith(("postgresql://", "postgres://")):
            # A bare postgresql:// picks psycopg2; loopml ships psycopg 3.
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        try:
            return create_engine(url)
        except NoSuchModuleError as exc:
            raise InvalidInputError(
                f"{self.describe()}: unknown database kind in the URL",
                hint="use a SQLAlchemy URL such as sqlite:///file.db or "
                "postgresql+psycopg://user@host/db",
            ) from exc
        except ArgumentError as exc:
            raise InvalidInputError(
                f"{self.describe()} is not a valid SQLAlchemy URL: {exc}",
                hint="e.g. sqlite:///file.db or postgresql+psycopg://user@host:5432/db",
            ) from exc
        except ImportError as exc:
            raise MissingDependencyError(
                f"{self.describe()} needs a database driver that is not installed: {exc.name}",
                hint="pip install 'loopml[postgres]' for PostgreSQL",
            ) from exc


def _store(value: Any) -> dict[str, Any]:
    """A watermark value as JSON, keeping what is needed to bind it back with its type."""
    if isinstance(value, dt.datetime):
        return {"kind": "datetime", "value": value.isoformat()}
    if isinstance(value, dt.date):
        return {"kind": "date", "value": value.isoformat()}
    if isinstance(value, bool | int):
        return {"kind": "int", "value": int(value)}
    if isinstance(value, float):
        return {"kind": "float", "value": value}
    return {"kind": "str", "value": str(value)}


def _restore(stored: dict[str, Any]) -> Any:
    kind, value = stored["kind"], stored["value"]
    if kind == "datetime":
        return dt.datetime.fromisoformat(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    return value


def _safe_url(url: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__
