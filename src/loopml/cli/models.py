"""``loopml models``: registered models, their versions, aliases, audit history and lineage.

``loopml models show NAME --json`` is the document scripts rely on::

    {"name": ..., "description": ..., "latest_version": ...,
     "aliases": {"champion": 3},
     "versions": [{"version": 3, "run_id": ..., "metrics": {...}, "created_at": ..., ...}]}
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli.output import (
    JSON_OPTION_HELP,
    format_cell,
    format_ms,
    print_json,
    print_table,
    stdout,
)
from loopml.config import Settings
from loopml.errors import InvalidInputError

if TYPE_CHECKING:
    from loopml.registry import ModelRegistry

app = typer.Typer(
    help="Registered models: versions, aliases, audit history, lineage.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help=JSON_OPTION_HELP)]
NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")]


@app.command("list")
def list_models(json_output: JsonOption = False) -> None:
    """Every registered model with its latest version and aliases."""
    with _registry() as registry:
        found = registry.list_models()
    if json_output:
        print_json([m.to_dict() for m in found])
        return
    print_table(
        [
            {
                "name": m.name,
                "latest": m.latest_version,
                "aliases": _alias_text(m.aliases),
                "updated": format_ms(m.updated_at),
                "description": m.description,
            }
            for m in found
        ],
        ["name", "latest", "aliases", "updated", "description"],
        title="registered models",
    )


@app.command()
def show(name: NameArgument, json_output: JsonOption = False) -> None:
    """A model's versions (run, metrics, aliases) and where each alias points."""
    with _registry() as registry:
        model = registry.get_model(name)
        versions = registry.list_versions(name)
    if json_output:
        document = model.to_dict()
        document["versions"] = [v.to_dict() for v in versions]
        print_json(document)
        return
    if model.description:
        stdout.print(model.description, markup=False, highlight=False)
    columns = ["version", "aliases", "run_id", "metrics", "created", "by"]
    if any(v.description for v in versions):  # often unused: keep the table narrow then
        columns.append("description")
    print_table(
        [
            {
                "version": v.version,
                "aliases": ", ".join(v.aliases),
                "run_id": v.run_id,
                "metrics": v.metrics,
                "created": format_ms(v.created_at),
                "by": v.created_by,
                "description": v.description,
            }
            for v in reversed(versions)
        ],
        columns,
        title=f"{name}: {len(versions)} version(s); aliases: {_alias_text(model.aliases) or '-'}",
    )


@app.command()
def alias(
    name: NameArgument,
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. champion.")],
    version: Annotated[
        int | None, typer.Argument(metavar="VERSION", help="Version to point the alias at.")
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Point ALIAS at VERSION (creating or moving it), or remove it with --delete."""
    if delete == (version is not None):
        raise InvalidInputError(
            "give a VERSION to point the alias at, or --delete to remove it"
            + (", not both" if delete else ""),
            hint=f"e.g. `loopml models alias {name} {alias_name} 3` "
            f"or `loopml models alias {name} {alias_name} --delete`",
        )
    with _registry() as registry:
        previous = registry.aliases(name).get(alias_name)
        if delete:
            registry.delete_alias(name, alias_name)
            after = None
        else:
            assert version is not None  # checked above
            after = registry.set_alias(name, alias_name, version).version
    if json_output:
        print_json({"name": name, "alias": alias_name, "before": previous, "after": after})
    elif after is None:
        stdout.print(
            f"removed {name}@{alias_name} (was version {previous})", markup=False, highlight=False
        )
    elif previous is None or previous == after:
        stdout.print(f"{name}@{alias_name} -> version {after}", markup=False, highlight=False)
    else:
        stdout.print(
            f"moved {name}@{alias_name} from version {previous} to {after}",
            markup=False,
            highlight=False,
        )


@app.command()
def history(
    name: NameArgument,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Newest N events.")] = 100,
    json_output: JsonOption = False,
) -> None:
    """The audit log of a model: who changed what, when, before and after (newest first)."""
    with _registry() as registry:
        events = registry.history(name, limit=limit)
    if json_output:
        print_json([e.to_dict() for e in events])
        return
    print_table(
        [
            {
                "at": format_ms(e.at),
                "actor": e.actor,
                "action": e.action,
                "entity": e.entity_id,
                "before": _brief(e.before),
                "after": _brief(e.after),
            }
            for e in events
        ],
        ["at", "actor", "action", "entity", "before", "after"],
        title=f"history of {name}",
    )


@app.command()
def compare(
    name: NameArgument,
    versions: Annotated[list[int], typer.Argument(metavar="VERSION", help="Two or more.")],
    json_output: JsonOption = False,
) -> None:
    """Metrics of several versions side by side."""
    if len(versions) < 2:
        raise InvalidInputError(
            f"compare needs at least two versions, got {len(versions)}",
            hint=f"e.g. `loopml models compare {name} 1 2`",
        )
    with _registry() as registry:
        table = registry.compare_versions(name, versions)
    if json_output:
        print_json({"name": name, "versions": versions, "metrics": table})
        return
    columns = ["metric", *(f"v{v}" for v in versions)]
    rows: list[dict[str, Any]] = [
        {"metric": metric, **{f"v{v}": by_version.get(v) for v in versions}}
        for metric, by_version in sorted(table.items())
    ]
    print_table(rows, columns, title=f"{name}: metrics by version")


@app.command()
def lineage(
    ref: Annotated[str, typer.Argument(metavar="REF", help="NAME@ALIAS, NAME:VERSION or NAME.")],
    json_output: JsonOption = False,
) -> None:
    """Where a version came from: its run, the dataset versions it read, the code commit."""
    with _registry() as registry:
        found = registry.lineage(ref)
    if json_output:
        print_json(found)
        return
    model, run, code = found["model"], found.get("run") or {}, found.get("code") or {}
    print_table(
        [
            {"field": "model", "value": f"{model['name']}:{model['version']}"},
            {"field": "artifact", "value": model["artifact_uri"]},
            {"field": "sha256", "value": model["sha256"]},
            {"field": "run", "value": run.get("run_id")},
            {"field": "run status", "value": run.get("status")},
            {"field": "git commit", "value": _commit(code)},
        ],
        ["field", "value"],
        title=f"lineage of {ref}",
    )
    datasets = found.get("datasets") or []
    if datasets:
        print_table(
            datasets,
            ["dataset_version_id", "context", "version", "uri", "content_hash"],
            title="dataset versions",
        )
    else:
        stdout.print("datasets: none recorded", style="dim", markup=False, highlight=False)


@contextmanager
def _registry() -> Iterator[ModelRegistry]:
    from loopml.registry import ModelRegistry

    registry = ModelRegistry.from_settings(Settings.from_env())
    try:
        yield registry
    finally:
        registry.db.dispose()


def _alias_text(aliases: dict[str, int]) -> str:
    return ", ".join(f"{a}->v{v}" for a, v in sorted(aliases.items()))


def _brief(change: dict[str, Any] | None) -> str:
    """An audit before/after document on one line (long values such as sha256 shortened)."""
    if not change:
        return ""
    parts = []
    for key, value in change.items():
        text = format_cell(value)
        parts.append(f"{key}={text[:16] + '…' if len(text) > 19 else text}")
    return ", ".join(parts)


def _commit(code: dict[str, Any]) -> str | None:
    commit = code.get("git_commit")
    if not commit:
        return None
    return f"{commit}{' (dirty)' if code.get('git_dirty') else ''}"
