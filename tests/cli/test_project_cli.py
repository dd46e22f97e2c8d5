"""loopml run / train / init / schema, called as a user would (through main())."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from loopml.cli.main import main

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    folder = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, folder)
    return folder


def test_schema_prints_the_json_schema_of_the_project_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "loopml project (loopml.yaml)"
    assert "candidates" in schema["properties"]


def test_run_prints_a_summary_with_dataset_model_metrics_version_and_aliases(
    loopml_home: Path, quickstart: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(quickstart), "--trials", "2"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "quickstart@1",
        "linear_regression",
        "rmse",
        "r2 >= 0.99",
        "quickstart version 1",
        "challenger, champion",
    ):
        assert expected in out, expected


def test_run_json_prints_only_json_and_train_reuses_the_stored_dataset(
    loopml_home: Path, quickstart: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(quickstart), "--trials", "2", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["model"]["version"] == 1
    assert first["dataset"]["reused"] is False
    assert main(["train", str(quickstart), "--trials", "2", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["dataset"]["ref"] == "quickstart@1"
    assert second["model"] == {**second["model"], "version": 2, "aliases": ["challenger"]}
    assert second["comparison"]["champion_version"] == 1


def test_a_bad_project_file_exits_1_naming_the_line(
    loopml_home: Path, quickstart: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (quickstart / "loopml.yaml").read_text().replace("task: regression", "task: regress")
    (quickstart / "loopml.yaml").write_text(text)
    assert main(["run", str(quickstart)]) == 1
    err = capsys.readouterr().err
    assert "loopml.yaml:9: task has value 'regress'" in err
    assert "Traceback" not in err


def test_init_from_flags_writes_a_project_that_runs(
    loopml_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "fresh"
    folder.mkdir()
    shutil.copy(QUICKSTART / "data.csv", folder / "data.csv")
    argv = ["init", str(folder), "--target", "y", "--task", "regression", "--name", "fresh"]
    assert main([*argv, "--trials", "2", "--yes"]) == 0
    assert "wrote" in capsys.readouterr().out
    text = (folder / "loopml.yaml").read_text()
    assert "task: regression" in text
    assert "folds: loo" in text  # too few rows for a test split
    assert main(["run", str(folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"]["name"] == "fresh"


def test_init_without_a_target_lists_the_columns(
    loopml_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "fresh"
    folder.mkdir()
    shutil.copy(QUICKSTART / "data.csv", folder / "data.csv")
    assert main(["init", str(folder), "--yes"]) == 1
    err = capsys.readouterr().err
    assert "loopml init needs --target" in err
    assert "columns of data.csv: x, y" in err


def test_init_refuses_to_overwrite_without_force(
    loopml_home: Path, quickstart: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(quickstart), "--target", "y", "--yes"]) == 1
    assert "already exists" in capsys.readouterr().err
