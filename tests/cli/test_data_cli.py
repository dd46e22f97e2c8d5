"""``loopml data ...`` through the real entry point: JSON on stdout only, errors as one line
plus a hint and a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from loopml.cli.main import main


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {"id": range(100), "x": rng.normal(5, 1, 100), "city": rng.choice(["rome", "oslo"], 100)}
    )
    frame = pl.concat([frame, frame.head(2)])  # two exact duplicates
    path = tmp_path / "data.csv"
    frame.write_csv(path)
    return path


def test_ingest_json_prints_only_the_result_document(
    loopml_home: Path, data_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "data", "ingest", str(data_file), "--name", "d", "--clean", "--json")
    assert code == 0
    body: dict[str, Any] = json.loads(out)
    assert {
        k: body[k] for k in ("dataset", "version", "rows_in", "rows", "quarantined", "reasons")
    } == {
        "dataset": "d",
        "version": 1,
        "rows_in": 102,
        "rows": 100,
        "quarantined": 2,
        "reasons": {"duplicate": 2},
    }
    code, out, _ = cli(capsys, "data", "ingest", str(data_file), "--name", "d", "--clean", "--json")
    assert json.loads(out)["reused"] is True


def test_the_inspection_commands_show_versions_rows_profile_and_quarantine(
    loopml_home: Path, data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli(capsys, "data", "ingest", str(data_file), "--name", "d", "--clean")
    code, out, _ = cli(capsys, "data", "versions", "d", "--json")
    assert code == 0
    assert [v["version"] for v in json.loads(out)] == [1]
    code, out, _ = cli(capsys, "data", "show", "d@1", "--json", "--head", "3")
    assert len(json.loads(out)["head"]) == 3
    report = tmp_path / "report.html"
    code, out, _ = cli(capsys, "data", "profile", "d@latest", "--json", "--html", str(report))
    assert json.loads(out)["columns"]["x"]["count"] == 100
    assert "<svg" in report.read_text()
    code, out, _ = cli(capsys, "data", "quarantine", "d@1", "--json")
    body = json.loads(out)
    assert body["quarantined"] == 2
    assert {r["_reason"] for r in body["rows"]} == {"duplicate"}
    code, out, _ = cli(capsys, "data", "versions", "d")
    assert code == 0
    assert "102" in out  # rows_in of version 1


def test_validate_infer_and_diff(
    loopml_home: Path, data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    contract = tmp_path / "contract.yaml"
    code, _, err = cli(capsys, "data", "infer", str(data_file), "-o", str(contract))
    assert code == 0
    assert "wrote" in err
    text = contract.read_text().replace("- oslo\n", "")
    contract.write_text(text)
    code, out, _ = cli(
        capsys, "data", "validate", str(data_file), "--contract", str(contract), "--json"
    )
    assert code == 1  # the oslo rows break the edited contract
    failed = [r["rule"] for r in json.loads(out)["results"] if not r["passed"]]
    assert failed == ["city.allowed"]
    cli(capsys, "data", "ingest", str(data_file), "--name", "d")
    pl.read_csv(data_file).head(50).write_csv(data_file)
    cli(capsys, "data", "ingest", str(data_file), "--name", "d")
    code, out, _ = cli(capsys, "data", "diff", "d@1", "d@2", "--json")
    assert json.loads(out)["rows"] == {"a": 102, "b": 50, "delta": -52}


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (["data", "ingest", "missing.csv", "--name", "d"], "no such file", "check the path"),
        (["data", "show", "nope@1"], "dataset 'nope' does not exist", "loopml data ingest"),
        (["data", "show", "d@zz"], "is not a positive number", "NAME@VERSION"),
        (["data", "validate", "x.csv"], "needs a contract", "--contract"),
    ],
)
def test_mistakes_print_one_error_line_and_a_hint(
    loopml_home: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str, hint: str
) -> None:
    code, out, err = cli(capsys, *args)
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith("error:")
    assert message in lines[0]
    assert lines[1].startswith("hint:")
    assert hint in lines[1]


def test_a_ragged_file_fails_the_real_command_without_a_traceback(
    loopml_home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "loopml.cli.main",
            "data",
            "ingest",
            str(path),
            "--name",
            "r",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert "line 3 has 3 fields where the header has 2" in done.stderr
    assert "Traceback" not in done.stderr


def test_ingest_from_a_sql_url(
    loopml_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    db = tmp_path / "src.db"
    con = sqlite3.connect(db)
    con.execute("create table t (id integer, v real)")
    con.executemany("insert into t values (?, ?)", [(i, i * 0.5) for i in range(10)])
    con.commit()
    con.close()
    code, out, _ = cli(
        capsys,
        "data",
        "ingest",
        f"sqlite:///{db}",
        "--query",
        "select * from t where id < 4",
        "--name",
        "t",
        "--json",
    )
    assert code == 0
    assert json.loads(out)["rows"] == 4
