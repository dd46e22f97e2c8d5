"""How every command prints: Rich tables for people, plain JSON for scripts, errors on stderr.

With ``--json`` stdout carries only the JSON document; progress and messages go to stderr so
``loopml ... --json | jq`` always works.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from loopml.errors import LoopMLError

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)

JSON_OPTION_HELP = "Print machine-readable JSON on stdout instead of a table."


def print_json(document: Any) -> None:
    """Write ``document`` as JSON on stdout (non-finite floats become strings)."""
    import orjson

    data = orjson.dumps(_jsonable(document), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    sys.stdout.write(data.decode() + "\n")
    sys.stdout.flush()


def print_table(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], *, title: str | None = None
) -> None:
    """A Rich table of ``rows`` restricted to ``columns``, in that order."""
    # Text(), not str: names and values are user data, and Rich would read "[x]" as markup.
    table = Table(title=None if title is None else Text(title), header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(format_cell(row.get(column))) for column in columns))
    stdout.print(table)


def print_error(exc: LoopMLError) -> None:
    """One line naming the problem, one line with the way out."""
    stderr.print(Text("error:", style="bold red"), Text(exc.message), highlight=False)
    if exc.hint:
        stderr.print(Text("hint:", style="yellow"), Text(exc.hint), highlight=False)


def format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={format_cell(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(format_cell(v) for v in value)
    return str(value)


def format_ms(epoch_ms: int | None) -> str:
    """Epoch milliseconds as an ISO-8601 UTC timestamp (seconds precision)."""
    if epoch_ms is None:
        return ""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value
