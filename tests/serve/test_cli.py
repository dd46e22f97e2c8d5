"""``loopml serve`` and ``loopml serve traffic``: one-line errors, live traffic changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loopml.cli.main import main
from loopml.cli.serve import parse_size
from loopml.errors import ConfigError
from loopml.serve import FileSource


def test_serving_nothing_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve"]) == 1
    err = capsys.readouterr().err
    assert "nothing to serve: give at least one --model" in err
    assert "Traceback" not in err


def test_an_unknown_model_reference_fails_before_binding(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path))
    assert main(["serve", "--model", "ghost@champion", "--port", "1"]) == 1
    assert "ghost" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "size"), [("10MiB", 10 * 2**20), ("5000", 5000), ("1.5kb", 1500)])
def test_body_sizes_read_with_units(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_a_bad_body_size_names_the_units() -> None:
    with pytest.raises(ConfigError, match="expected a size such as 10MiB"):
        parse_size("ten")


def test_the_traffic_command_changes_a_running_server(
    live_server: Any, models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    source = FileSource()
    source.add("linear", "1", models["linear"], aliases=("champion",))
    source.add("linear", "2", models["triple"], aliases=("challenger",))
    server = live_server(source=source, models=("linear@champion", "linear@challenger"))
    assert (
        main(["serve", "traffic", "linear", "champion=90", "challenger=10", "--url", server.url])
        == 0
    )
    assert "linear: champion=90%  challenger=10%" in capsys.readouterr().out
    assert main(["serve", "traffic", "linear", "--url", server.url, "--json"]) == 0
    assert '"challenger": 10.0' in capsys.readouterr().out
    assert main(["serve", "traffic", "linear", "canary=100", "--url", server.url]) == 1
    assert "which this server does not serve" in capsys.readouterr().err


def test_the_traffic_command_says_when_no_server_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "traffic", "linear", "--url", "http://127.0.0.1:9"]) == 1
    assert "cannot reach the server at http://127.0.0.1:9" in capsys.readouterr().err
