"""``loopml db``: look at the metadata store's schema and upgrade it on purpose.

The store upgrades itself on first use; ``db upgrade`` does the same step explicitly (before a
deploy, say), and ``db status`` reports without changing anything.
"""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli.output import JSON_OPTION_HELP, print_json, print_table, stdout
from loopml.config import Settings

app = typer.Typer(
    help="The metadata store: schema revision, upgrade, table sizes.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help=JSON_OPTION_HELP)]

_STATE_TEXT = {
    "empty": "empty (the schema is created on first use or by `loopml db upgrade`)",
    "current": "up to date",
    "behind": "behind head (upgraded on next use or by `loopml db upgrade`)",
    "newer": "made by a newer loopml (refused; upgrade loopml)",
}


@app.command()
def upgrade(json_output: JsonOption = False) -> None:
    """Bring the schema to the newest revision (idempotent; safe while the store is in use)."""
    from loopml.store.schema import upgrade_schema

    settings = Settings.from_env()
    before, after = upgrade_schema(str(settings.store_uri))
    uri = _safe_uri(str(settings.store_uri))
    if json_output:
        print_json({"uri": uri, "before": before, "after": after, "changed": before != after})
    elif before == after:
        stdout.print(f"{uri} is already at revision {after}", markup=False, highlight=False)
    else:
        stdout.print(
            f"upgraded {uri} from revision {before or '(empty)'} to {after}",
            markup=False,
            highlight=False,
        )


@app.command()
def status(json_output: JsonOption = False) -> None:
    """Show the schema revision against head, the store URI and the rows in each table."""
    from loopml.store.schema import schema_status

    settings = Settings.from_env()
    found = schema_status(str(settings.store_uri))
    if json_output:
        print_json(
            {
                "uri": found.uri,
                "artifact_uri": str(settings.artifact_uri),
                "revision": found.revision,
                "head": found.head,
                "state": found.state,
                "up_to_date": found.state == "current",
                "tables": found.tables,
            }
        )
        return
    print_table(
        [
            {"setting": "store", "value": found.uri},
            {"setting": "artifacts", "value": str(settings.artifact_uri)},
            {"setting": "revision", "value": found.revision or "(none)"},
            {"setting": "head", "value": found.head},
            {"setting": "state", "value": _STATE_TEXT[found.state]},
        ],
        ["setting", "value"],
        title="metadata store",
    )
    if found.tables:
        print_table(
            [{"table": name, "rows": rows} for name, rows in found.tables.items()],
            ["table", "rows"],
            title="tables",
        )


def _safe_uri(uri: str) -> str:
    from loopml.store import Database

    return Database(uri).safe_uri
