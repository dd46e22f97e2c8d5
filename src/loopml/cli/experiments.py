"""``loopml experiments``: list, create, delete and restore experiments.

Plain ``loopml experiments`` lists them, like ``loopml experiments list``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from loopml.cli.context import tracking_client
from loopml.cli.output import JSON_OPTION_HELP, format_ms, print_json, print_table, stdout
from loopml.errors import NotFoundError

if TYPE_CHECKING:
    from loopml.tracking.client import Client
    from loopml.tracking.entities import Experiment

app = typer.Typer(help="Experiments: named groups of runs. Without a subcommand, lists them.")

JsonOption = Annotated[bool, typer.Option("--json", help=JSON_OPTION_HELP)]
AllOption = Annotated[bool, typer.Option("--all", help="Include deleted experiments.")]
NameArgument = Annotated[
    str, typer.Argument(metavar="NAME", help="Experiment name (or numeric id).")
]


@app.callback(invoke_without_command=True)
def experiments(
    ctx: typer.Context, json_output: JsonOption = False, include_deleted: AllOption = False
) -> None:
    """Experiments: named groups of runs. Without a subcommand, lists them."""
    if ctx.invoked_subcommand is None:
        list_experiments(json_output=json_output, include_deleted=include_deleted)


@app.command("list")
def list_experiments(json_output: JsonOption = False, include_deleted: AllOption = False) -> None:
    """List experiments (active ones unless --all)."""
    with tracking_client() as client:
        found = client.search_experiments(include_deleted=include_deleted)
    if json_output:
        print_json([asdict(e) for e in found])
        return
    print_table(
        [
            {
                "id": e.experiment_id,
                "name": e.name,
                "stage": e.lifecycle_stage,
                "created": format_ms(e.creation_time),
                "updated": format_ms(e.last_update_time),
                "tags": e.tags,
            }
            for e in found
        ],
        ["id", "name", "stage", "created", "updated", "tags"],
        title="experiments",
    )


@app.command()
def create(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Name of the new experiment.")],
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="KEY=VALUE tag; repeat for several.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Create an experiment."""
    tags = dict(_key_value(item) for item in tag or [])
    with tracking_client() as client:
        experiment_id = client.create_experiment(name, tags=tags)
        experiment = client.get_experiment(experiment_id)
    if json_output:
        print_json(asdict(experiment))
    else:
        stdout.print(
            f"created experiment {name!r} (id {experiment_id})", markup=False, highlight=False
        )


@app.command()
def delete(name: NameArgument, json_output: JsonOption = False) -> None:
    """Mark an experiment deleted (its runs stay; restore undoes it)."""
    with tracking_client() as client:
        experiment = _find(client, name)
        client.delete_experiment(experiment.experiment_id)
        _report(client.get_experiment(experiment.experiment_id), "deleted", json_output)


@app.command()
def restore(name: NameArgument, json_output: JsonOption = False) -> None:
    """Bring a deleted experiment back."""
    with tracking_client() as client:
        experiment = _find(client, name)
        client.restore_experiment(experiment.experiment_id)
        _report(client.get_experiment(experiment.experiment_id), "restored", json_output)


def _find(client: Client, name: str) -> Experiment:
    """An experiment by name, or by id when no experiment has that name and it is a number."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment
    if name.isdigit():
        return client.get_experiment(name)
    raise NotFoundError(
        f"experiment {name!r} does not exist",
        hint="list experiments with `loopml experiments --all`",
    )


def _report(experiment: Experiment, verb: str, json_output: bool) -> None:
    if json_output:
        print_json(asdict(experiment))
    else:
        stdout.print(
            f"{verb} experiment {experiment.name!r} (id {experiment.experiment_id})",
            markup=False,
            highlight=False,
        )


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        from loopml.errors import InvalidInputError

        raise InvalidInputError(f"tag {item!r} is not KEY=VALUE", hint="e.g. --tag team=risk")
    return key, value
