"""File sources: formats, globs, batches, and every kind of bad file named with a way out."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from loopml.data.errors import SourceFormatError, SourceNotFoundError
from loopml.data.sources import FileSource, ReadState, iter_batches, parse_source, read_source
from loopml.errors import InvalidInputError

from .conftest import make_frame


def test_csv_parquet_and_jsonl_read_to_the_same_table(tmp_path: Path) -> None:
    frame = make_frame(50)
    frame.write_csv(tmp_path / "a.csv")
    frame.write_parquet(tmp_path / "a.parquet")
    frame.write_ndjson(tmp_path / "a.jsonl")
    tables = [
        pl.from_arrow(read_source(str(tmp_path / f"a.{ext}")))
        for ext in ("csv", "parquet", "jsonl")
    ]
    for table in tables:
        assert table.shape == (50, 6)
        assert table["id"].to_list() == list(range(50))
        assert table["city"].to_list() == frame["city"].to_list()


def test_a_glob_reads_every_matching_file_in_path_order(tmp_path: Path) -> None:
    for i in range(3):
        make_frame(10, seed=i).with_columns(pl.lit(i).alias("part")).write_csv(
            tmp_path / f"p{i}.csv"
        )
    table = pl.from_arrow(read_source(str(tmp_path / "p*.csv")))
    assert table.height == 30
    assert table["part"].to_list() == [0] * 10 + [1] * 10 + [2] * 10


def test_batches_stay_within_the_requested_size(tmp_path: Path) -> None:
    make_frame(1000).write_parquet(tmp_path / "big.parquet")
    sizes = [b.height for b in iter_batches(str(tmp_path / "big.parquet"), batch_rows=300)]
    assert sum(sizes) == 1000
    assert max(sizes) <= 600  # a batch is flushed as soon as it reaches the size


def test_file_state_records_seen_files_and_skips_them_next_time(tmp_path: Path) -> None:
    make_frame(5).write_csv(tmp_path / "1.csv")
    source = FileSource(path=str(tmp_path / "*.csv"))
    state = ReadState()
    assert sum(b.height for b in source.batches(batch_rows=100, state=state)) == 5
    make_frame(7).write_csv(tmp_path / "2.csv")
    later = ReadState(since=state.after)
    assert sum(b.height for b in source.batches(batch_rows=100, state=later)) == 7


def test_a_string_is_parsed_into_the_right_source_kind() -> None:
    assert parse_source("data/*.csv").type == "file"
    assert parse_source("sqlite:///x.db", query="select 1").type == "sql"
    assert parse_source("https://example.test/api/items").type == "http"
    assert parse_source("https://example.test/files/a.csv").type == "file"
    assert parse_source("logs/access.log", pattern="combined").type == "log"
    assert parse_source({"type": "sql", "url": "sqlite://", "table": "t"}).type == "sql"


def test_an_invalid_source_spec_names_the_field() -> None:
    with pytest.raises(InvalidInputError, match=r"not a valid source spec: .*query"):
        parse_source({"type": "sql", "url": "sqlite://"})


def test_a_missing_file_names_the_path_and_what_to_check(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match=r"file source .*nope\.csv.*no such file") as info:
        read_source(str(tmp_path / "nope.csv"))
    assert "check the path" in (info.value.hint or "")


def test_a_glob_matching_nothing_says_so(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match=r"matches no files"):
        read_source(str(tmp_path / "*.csv"))


def test_an_empty_file_is_refused_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SourceFormatError, match=r"empty\.csv.* is empty") as info:
        read_source(str(tmp_path / "empty.csv"))
    assert "export" in (info.value.hint or "")


def test_a_header_only_file_has_no_data(tmp_path: Path) -> None:
    (tmp_path / "header.csv").write_text("a,b\n")
    with pytest.raises(InvalidInputError, match=r"header\.csv.* has no data"):
        read_source(str(tmp_path / "header.csv"))


@pytest.mark.parametrize(
    ("body", "line", "got"),
    [("a,b\n1,2\n3,4,5\n6,7\n", 3, 3), ("a,b\n1,2\n3\n6,7\n", 3, 1)],
    ids=["too-many-fields", "too-few-fields"],
)
def test_a_ragged_row_is_reported_with_its_line_number(
    tmp_path: Path, body: str, line: int, got: int
) -> None:
    (tmp_path / "ragged.csv").write_text(body)
    with pytest.raises(
        SourceFormatError,
        match=rf"ragged\.csv.* line {line} has {got} fields where the header has 2",
    ) as info:
        read_source(str(tmp_path / "ragged.csv"))
    assert "fix or remove that line" in (info.value.hint or "")


def test_quoted_delimiters_are_not_ragged_rows(tmp_path: Path) -> None:
    (tmp_path / "quoted.csv").write_text('name,city\n"Smith, J",Rome\nAnn,"Paris, FR"\n')
    table = pl.from_arrow(read_source(str(tmp_path / "quoted.csv")))
    assert table["name"].to_list() == ["Smith, J", "Ann"]


def test_a_mis_encoded_file_asks_for_its_encoding(tmp_path: Path) -> None:
    (tmp_path / "latin.csv").write_bytes("name,v\ncafé,1\n".encode("latin-1"))
    with pytest.raises(SourceFormatError, match=r"latin\.csv.* is not valid UTF-8") as info:
        read_source(str(tmp_path / "latin.csv"))
    assert "--encoding latin-1" in (info.value.hint or "")
    fixed = read_source(FileSource(path=str(tmp_path / "latin.csv"), encoding="latin-1"))
    assert fixed.column("name").to_pylist() == ["café"]


def test_a_value_that_changes_type_late_makes_the_column_text(tmp_path: Path) -> None:
    (tmp_path / "late.csv").write_text("a,b\n" + "1,2\n" * 50 + "x,3\n")
    source = FileSource(path=str(tmp_path / "late.csv"), infer_rows=10)
    table = pl.from_arrow(read_source(source))
    assert table.schema["a"] == pl.String
    assert table["a"][-1] == "x"


def test_an_unknown_extension_asks_for_the_format(tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_text("a\n1\n")
    with pytest.raises(SourceFormatError, match=r"cannot tell the format") as info:
        read_source(str(tmp_path / "data.bin"))
    assert "--format" in (info.value.hint or "")
    assert read_source(FileSource(path=str(tmp_path / "data.bin"), format="csv")).num_rows == 1


def test_a_corrupt_parquet_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(SourceFormatError, match=r"broken\.parquet.* cannot be read as parquet"):
        read_source(str(tmp_path / "broken.parquet"))


def test_fsspec_urls_are_read(tmp_path: Path) -> None:
    import fsspec

    with fsspec.open("memory://loopml-test/a.csv", "w") as fh:
        fh.write("a,b\n1,2\n3,4\n")
    assert read_source("memory://loopml-test/a.csv").num_rows == 2
