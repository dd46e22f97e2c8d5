"""The versioned dataset store: ingest, time travel, reuse, incremental, lineage, inspection."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl
import pytest

from loopml.data import CleaningSpec, DatasetStore
from loopml.data.contract import infer_contract
from loopml.data.errors import SchemaChangeError, SourceFormatError
from loopml.data.profile import bin_counts
from loopml.data.sources import FileSource, SqlSource
from loopml.errors import InvalidInputError, NotFoundError

from .conftest import make_frame


def _dirty(rows: int = 200) -> pl.DataFrame:
    frame = make_frame(rows)
    return pl.concat([frame, frame.head(5)]).with_columns(  # 5 exact duplicates
        pl.when(pl.col("id") == 7).then(None).otherwise(pl.col("x1")).alias("x1")
    )


def test_ingest_stores_a_version_readable_as_pandas_polars_and_arrow(
    any_store: DatasetStore, csv_file: Path
) -> None:
    result = any_store.ingest(str(csv_file), "sales")
    assert (result.dataset, result.version, result.reused) == ("sales", 1, False)
    assert result.rows_in == result.rows == 200
    assert result.quarantined == 0
    pandas = any_store.read("sales@1")
    polars = any_store.read("sales@latest", as_="polars")
    arrow = any_store.read("sales", as_="arrow", columns=["id", "city"])
    assert pandas.shape == (200, 6)
    assert polars.equals(pl.read_csv(csv_file))
    assert arrow.column_names == ["id", "city"]
    info = any_store.get_version("sales@1")
    assert info.row_count == 200
    assert info.id == result.dataset_version_id
    assert info.source["description"] == f"file source {str(csv_file)!r}"
    assert [c["name"] for c in info.schema["columns"]] == ["id", "x1", "x2", "n", "city", "tier"]
    assert info.uri.endswith("/datasets/sales/table?version=0")


def test_identical_content_reuses_the_latest_version(store: DatasetStore, csv_file: Path) -> None:
    from deltalake import DeltaTable

    first = store.ingest(str(csv_file), "sales")
    again = store.ingest(str(csv_file), "sales")
    assert again.reused
    assert again.version == first.version == 1
    assert again.dataset_version_id == first.dataset_version_id
    assert len(store.versions("sales")) == 1
    assert DeltaTable(store.table_uri("sales")).version() == 0  # the write was not committed


def test_new_content_makes_a_new_version_and_old_ones_stay_readable(
    store: DatasetStore, tmp_path: Path
) -> None:
    path = tmp_path / "d.csv"
    make_frame(50, seed=1).write_csv(path)
    v1 = store.ingest(str(path), "d")
    make_frame(80, seed=2).write_csv(path)
    v2 = store.ingest(str(path), "d")
    assert (v1.version, v2.version) == (1, 2)
    assert store.read("d@1", as_="polars").height == 50
    assert store.read("d@2", as_="polars").height == 80
    info = store.get_version("d@2")
    assert info.parent_id == v1.dataset_version_id
    assert [v.ref for v in store.lineage("d@2")] == ["d@2", "d@1"]
    assert [v.version for v in store.versions("d")] == [1, 2]


def test_cleaning_quarantines_rows_with_reasons_and_logs_changes(
    store: DatasetStore, tmp_path: Path
) -> None:
    path = tmp_path / "dirty.parquet"
    _dirty().write_parquet(path)
    spec = CleaningSpec.model_validate(
        {"duplicates": "exact", "missing": {"columns": {"x1": "median"}}}
    )
    result = store.ingest(str(path), "dirty", clean=spec)
    assert result.rows_in == result.rows + result.quarantined == 205
    assert result.reasons == {"duplicate": 5}
    assert result.changed == {"imputed:median": 1}
    quarantine = store.quarantine("dirty@1", as_="polars")
    assert quarantine.height == 5
    assert set(quarantine["_reason"]) == {"duplicate"}
    assert quarantine["_row"].to_list() == [200, 201, 202, 203, 204]
    assert quarantine["city"].to_list() == make_frame(200)["city"].head(5).to_list()
    changes = store.changes("dirty@1", as_="polars")
    assert changes.select("row", "column", "old", "reason").row(0) == (
        7,
        "x1",
        None,
        "imputed:median",
    )
    summary = store.get_version("dirty@1").cleaning_summary
    assert summary["rows_in"] == 205
    assert summary["quarantined"] == 5


def test_a_contract_is_checked_recorded_and_its_report_kept(
    store: DatasetStore, tmp_path: Path
) -> None:
    contract = infer_contract(make_frame(200), name="sales")
    path = tmp_path / "bad.csv"
    make_frame(200).with_columns(
        pl.when(pl.col("id") < 3).then(pl.lit("lisbon")).otherwise(pl.col("city")).alias("city")
    ).write_csv(path)
    result = store.ingest(str(path), "sales", contract=contract, clean=CleaningSpec())
    assert result.reasons == {"city.allowed": 3}
    assert result.validation is not None
    assert {r.rule for r in result.validation.failed} == {"city.allowed"}
    assert store.contract("sales@1") == contract
    stored = store.validation("sales@1")
    assert stored is not None
    failed = [r for r in stored["results"] if not r["passed"]]
    assert failed[0]["examples"][0] == {"row": 0, "city": "lisbon"}
    html = store.report("sales@1")
    assert "<svg" in html
    assert "city.allowed" in html


def test_without_cleaning_a_contract_violation_stores_nothing(
    store: DatasetStore, tmp_path: Path
) -> None:
    from loopml.data.errors import ContractViolationError

    contract = infer_contract(make_frame(200))
    path = tmp_path / "bad.csv"
    make_frame(200).with_columns(pl.lit(-1e9).alias("x2")).write_csv(path)
    with pytest.raises(
        ContractViolationError, match=r"bad\.csv.* breaks the contract: x2\.range \(200 rows\)"
    ):
        store.ingest(str(path), "sales", contract=contract)
    assert store.versions("sales") == []


def test_the_profile_has_stats_quantiles_reusable_bins_and_top_values(
    store: DatasetStore, csv_file: Path
) -> None:
    store.ingest(str(csv_file), "sales")
    profile = store.profile("sales@1")
    frame = make_frame()
    x1 = profile["columns"]["x1"]
    assert x1["count"] == 200
    assert x1["mean"] == pytest.approx(frame["x1"].mean())
    assert x1["quantiles"]["0.5"] == pytest.approx(frame["x1"].median())
    hist = x1["histogram"]
    assert len(hist["edges"]) == 21
    assert sum(hist["counts"]) == 200
    assert bin_counts(frame["x1"].to_numpy(), hist["edges"]) == hist["counts"]
    assert bin_counts([-1e9, 1e9, None], hist["edges"]) == [1] + [0] * 18 + [1]
    city = profile["columns"]["city"]
    assert {t["value"] for t in city["top"]} == {"berlin", "paris", "rome"}
    assert sum(t["count"] for t in city["top"]) + city["other"] == 200


def test_incremental_file_ingestion_appends_only_new_files(
    store: DatasetStore, tmp_path: Path
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    make_frame(30, seed=1).write_csv(folder / "day1.csv")
    source = FileSource(path=str(folder / "*.csv"))
    v1 = store.ingest(source, "events", incremental=True)
    make_frame(20, seed=2).with_columns(pl.col("id") + 1000).write_csv(folder / "day2.csv")
    v2 = store.ingest(source, "events", incremental=True)
    assert (v1.rows, v2.rows, v2.row_count) == (30, 20, 50)
    assert v2.version == 2
    assert store.read("events@2", as_="polars").height == 50
    assert store.read("events@1", as_="polars").height == 30
    nothing_new = store.ingest(source, "events", incremental=True)
    assert nothing_new.reused
    assert nothing_new.version == 2


def test_incremental_sql_ingestion_reads_past_the_watermark(
    store: DatasetStore, tmp_path: Path
) -> None:
    db = tmp_path / "src.db"
    con = sqlite3.connect(db)
    con.execute("create table t (id integer, v real)")
    con.executemany("insert into t values (?, ?)", [(i, i / 2) for i in range(10)])
    con.commit()
    source = SqlSource(url=f"sqlite:///{db}", table="t", watermark="id")
    assert store.ingest(source, "t", incremental=True).rows == 10
    con.executemany("insert into t values (?, ?)", [(i, i / 2) for i in range(10, 13)])
    con.commit()
    con.close()
    second = store.ingest(source, "t", incremental=True)
    assert (second.rows, second.row_count) == (3, 13)
    assert store.read("t@2", as_="polars")["id"].to_list() == list(range(13))


def test_incremental_ingestion_needs_a_watermark_for_sql(store: DatasetStore) -> None:
    with pytest.raises(
        InvalidInputError, match="cannot be read incrementally: it has no watermark"
    ):
        store.ingest(SqlSource(url="sqlite://", query="select 1 as a"), "q", incremental=True)


def test_batching_does_not_change_the_content_hash(store: DatasetStore, tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    make_frame(1000).write_parquet(path)
    one = store.ingest(str(path), "one")
    many = store.ingest(str(path), "many", batch_rows=128)
    assert one.content_hash == many.content_hash
    assert store.read("many@1", as_="polars").equals(store.read("one@1", as_="polars"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.with_columns(pl.lit(1).alias("extra")), r"new column 'extra'"),
        (lambda f: f.drop("tier"), r"missing column 'tier'"),
        (
            lambda f: f.with_columns(pl.col("n").cast(pl.String) + "x"),
            r"column 'n' is string, was integer",
        ),
    ],
    ids=["new", "missing", "retyped"],
)
def test_a_schema_change_since_the_latest_version_is_refused(
    store: DatasetStore,
    tmp_path: Path,
    change,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    path = tmp_path / "d.parquet"
    make_frame(20).write_parquet(path)
    store.ingest(str(path), "d")
    change(make_frame(20, seed=3)).write_parquet(path)
    with pytest.raises(
        SchemaChangeError, match=rf"d\.parquet.* changed schema since the latest version: {message}"
    ) as info:
        store.ingest(str(path), "d")
    assert "--allow-schema-change" in (info.value.hint or "")
    assert store.ingest(str(path), "d", allow_schema_change=True).version == 2


def test_a_schema_change_against_the_contract_is_refused(
    store: DatasetStore, tmp_path: Path
) -> None:
    contract = infer_contract(make_frame(20))
    path = tmp_path / "d.csv"
    make_frame(20).drop("x2").write_csv(path)
    with pytest.raises(
        SchemaChangeError, match=r"does not match the contract: column 'x2' is missing"
    ) as info:
        store.ingest(str(path), "d", contract=contract)
    assert "loopml data infer" in (info.value.hint or "")


def test_log_lines_that_do_not_parse_are_quarantined(store: DatasetStore, tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text("1 INFO ok\n2 WARN slow\n???\n")
    result = store.ingest(
        {
            "type": "log",
            "path": str(tmp_path / "app.log"),
            "pattern": r"^(?P<n>\d+) (?P<level>\w+) (?P<msg>.*)$",
        },
        "logs",
    )
    assert (result.rows_in, result.rows, result.quarantined) == (3, 2, 1)
    assert result.reasons == {"unparsed_line": 1}
    assert store.quarantine("logs@1", as_="polars")["_unparsed"].to_list() == ["???"]


def test_diff_reports_schema_rows_statistics_and_keys(store: DatasetStore, tmp_path: Path) -> None:
    contract = infer_contract(make_frame(100))
    contract.columns["x1"].max = None  # version 2 doubles x1
    path = tmp_path / "d.csv"
    make_frame(100).write_csv(path)
    store.ingest(str(path), "d", contract=contract)
    make_frame(100).filter(pl.col("id") >= 10).with_columns(pl.col("x1") * 2).write_csv(path)
    store.ingest(str(path), "d", contract=contract)
    diff = store.diff("d@1", "d@2")
    assert diff["rows"] == {"a": 100, "b": 90, "delta": -10}
    assert not diff["same_content"]
    assert diff["schema"] == {"added": [], "removed": [], "retyped": {}}
    assert "mean" in diff["columns"]["x1"]
    assert diff["keys"] == {"key": ["id"], "added": 0, "removed": 10, "kept": 90}


def test_unknown_references_say_what_exists(store: DatasetStore, csv_file: Path) -> None:
    with pytest.raises(NotFoundError, match="dataset 'nope' does not exist") as info:
        store.get_version("nope@1")
    assert "loopml data ingest" in (info.value.hint or "")
    store.ingest(str(csv_file), "sales")
    with pytest.raises(NotFoundError, match=r"dataset 'sales' has no version 4 \(versions: 1\)"):
        store.get_version("sales@4")
    with pytest.raises(InvalidInputError, match="is not a positive number or 'latest'"):
        store.get_version("sales@x")
    with pytest.raises(InvalidInputError, match=r"has no column\(s\) \['nope'\]"):
        store.read("sales@1", columns=["nope"])
    with pytest.raises(InvalidInputError, match="dataset name 'bad name' is not allowed"):
        store.ingest(str(csv_file), "bad name")


def test_an_empty_source_stores_nothing(store: DatasetStore, tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("a,b\n")
    with pytest.raises(SourceFormatError, match=r"h\.csv.* has no data rows"):
        store.ingest(str(tmp_path / "h.csv"), "h")
    assert store.versions("h") == []


def test_the_constructor_does_no_io(tmp_path: Path) -> None:
    from loopml.store import Database

    DatasetStore(Database(f"sqlite:///{tmp_path / 'never' / 'db.sqlite'}"), str(tmp_path / "art"))
    assert not (tmp_path / "never").exists()
    assert not (tmp_path / "art").exists()
