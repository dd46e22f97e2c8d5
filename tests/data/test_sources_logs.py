"""Log sources: regex with named groups (access logs), JSON lines; unmatched lines kept."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from loopml.data.sources import LogSource, read_source
from loopml.data.sources.logs import UNPARSED

ACCESS = (
    '127.0.0.1 - alice [10/Oct/2026:13:55:36 +0000] "GET /index.html HTTP/1.1" 200 2326 '
    '"http://example.test/" "curl/8.0"\n'
    '10.0.0.2 - - [10/Oct/2026:13:55:37 +0000] "POST /api HTTP/1.1" 500 12 "-" "python"\n'
    "this line is garbage\n"
)


def test_the_combined_preset_parses_access_logs_and_keeps_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "access.log").write_text(ACCESS)
    table = pl.from_arrow(
        read_source(LogSource(path=str(tmp_path / "access.log"), pattern="combined"))
    )
    assert table.height == 3
    assert table["status"].to_list()[:2] == ["200", "500"]
    assert table["path"].to_list()[:2] == ["/index.html", "/api"]
    assert table[UNPARSED].to_list() == [None, None, "this line is garbage"]


def test_a_custom_pattern_uses_its_named_groups(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_text("2026-01-01 INFO started\n2026-01-01 ERROR disk full\n")
    source = LogSource(
        path=str(tmp_path / "*.log"), pattern=r"^(?P<day>\S+) (?P<level>[A-Z]+) (?P<msg>.*)$"
    )
    table = pl.from_arrow(read_source(source))
    assert table["level"].to_list() == ["INFO", "ERROR"]
    assert table["msg"].to_list() == ["started", "disk full"]


def test_json_log_lines_are_read_and_bad_lines_kept(tmp_path: Path) -> None:
    (tmp_path / "app.jsonl").write_text(
        '{"level": "info", "ms": 3}\nnot json\n{"level": "warn", "ms": 9}\n'
    )
    table = pl.from_arrow(read_source(LogSource(path=str(tmp_path / "app.jsonl"))))
    assert table["level"].to_list() == ["info", None, "warn"]
    assert table[UNPARSED].to_list() == [None, "not json", None]


def test_a_pattern_without_named_groups_is_refused() -> None:
    with pytest.raises(ValueError, match="named groups"):
        LogSource(path="x.log", pattern=r"\d+")
