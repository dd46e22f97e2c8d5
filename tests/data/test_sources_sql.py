"""SQL sources on a real SQLite file and a real PostgreSQL scratch schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl
import pytest

from loopml.data.errors import SourceFormatError, SourceUnavailableError
from loopml.data.sources import ReadState, SqlSource, read_source


def _sqlite(tmp_path: Path, rows: int = 5) -> str:
    path = tmp_path / "shop.db"
    con = sqlite3.connect(path)
    con.execute("create table orders (id integer primary key, amount real, country text)")
    con.executemany(
        "insert into orders values (?, ?, ?)",
        [(i, i * 1.5, "DE" if i % 2 else "FR") for i in range(1, rows + 1)],
    )
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def test_a_query_on_sqlite_reads_its_rows(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    table = pl.from_arrow(
        read_source(SqlSource(url=url, query="select * from orders where amount > 3"))
    )
    assert table["id"].to_list() == [3, 4, 5]
    assert table.schema["amount"] == pl.Float64


def test_a_table_source_reads_in_batches(tmp_path: Path) -> None:
    from loopml.data.sources import iter_batches

    url = _sqlite(tmp_path, rows=25)
    sizes = [b.height for b in iter_batches(SqlSource(url=url, table="orders"), batch_rows=10)]
    assert sizes == [10, 10, 5]


def test_the_watermark_reads_only_newer_rows(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    source = SqlSource(url=url, table="orders", watermark="id")
    state = ReadState()
    assert pl.from_arrow(read_source(source, state=state)).height == 5
    assert state.after["watermark"] == {"kind": "int", "value": 5}
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    con.execute("insert into orders values (6, 9.0, 'NL')")
    con.commit()
    con.close()
    later = ReadState(since=state.after)
    assert pl.from_arrow(read_source(source, state=later))["id"].to_list() == [6]


@pytest.mark.postgres
def test_a_query_on_postgresql_reads_rows_past_a_timestamp_watermark(pg_schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(pg_schema)
    with engine.begin() as conn:
        conn.execute(sa.text("create table events (id int, at timestamp, kind text)"))
        conn.execute(
            sa.text(
                "insert into events values (1, '2026-01-01 10:00', 'a'), "
                "(2, '2026-01-02 10:00', 'b')"
            )
        )
    source = SqlSource(url=pg_schema, query="select * from events", watermark="at")
    state = ReadState()
    first = pl.from_arrow(read_source(source, state=state))
    assert first["id"].to_list() == [1, 2]
    with engine.begin() as conn:
        conn.execute(sa.text("insert into events values (3, '2026-01-03 09:00', 'c')"))
    engine.dispose()
    second = pl.from_arrow(read_source(source, state=ReadState(since=state.after)))
    assert second["id"].to_list() == [3]
    assert second.schema["at"] == pl.Datetime("us")


@pytest.mark.postgres
def test_an_unreachable_database_names_the_source_and_what_to_check() -> None:
    source = SqlSource(
        url="postgresql+psycopg://postgres:secret@127.0.0.1:1/none", query="select 1"
    )
    with pytest.raises(
        SourceUnavailableError, match=r"sql source .*127\.0\.0\.1:1.* cannot be reached"
    ) as info:
        read_source(source)
    assert "secret" not in str(info.value)
    assert "database server is running" in (info.value.hint or "")


def test_a_failing_query_says_what_failed(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    with pytest.raises(
        SourceFormatError, match=r"sql source .* the query failed: no such table: nope"
    ) as info:
        read_source(SqlSource(url=url, query="select * from nope"))
    assert "table and column names" in (info.value.hint or "")


def test_a_source_needs_a_query_or_a_table() -> None:
    with pytest.raises(ValueError, match="exactly one of query or table"):
        SqlSource(url="sqlite://")
