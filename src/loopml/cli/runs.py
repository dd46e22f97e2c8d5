"""``loopml runs``: list runs, show one in full, and search with the filter language.

``loopml runs search "metrics.rmse < 0.5 and params.model = 'rf'" --order-by "metrics.rmse"``
takes the same filter and order strings as :meth:`loopml.Client.search_runs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli.context import tracking_client
from loopml.cli.output import JSON_OPTION_HELP, format_ms, print_json, print_table, stdout

if TYPE_CHECKING:
    from loopml.tracking.client import Client
    from loopml.tracking.entities import Run

app = typer.Typer(
    help="Runs: list, show and search with the filter language.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help=JSON_OPTION_HELP)]
ExperimentOption = Annotated[
    list[str] | None,
    typer.Option("--experiment", "-e", help="Only runs of this experiment (name); repeatable."),
]
MaxOption = Annotated[int, typer.Option("--max", min=1, help="Return at most this many runs.")]

_LIST_COLUMNS = ["run_id", "experiment", "name", "status", "started", "duration", "metrics"]


@app.command("list")
def list_runs(
    experiment: ExperimentOption = None,
    max_results: MaxOption = 50,
    json_output: JsonOption = False,
) -> None:
    """The newest runs, of every experiment unless --experiment is given."""
    _search("", experiment, None, max_results, json_output, title="runs")


@app.command()
def search(
    filter_string: Annotated[
        str,
        typer.Argument(
            metavar="FILTER",
            help="e.g. \"metrics.rmse < 0.5 and params.model = 'rf' and status = 'FINISHED'\"",
        ),
    ],
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", "-o", help="e.g. 'metrics.rmse ASC'; repeatable."),
    ] = None,
    experiment: ExperimentOption = None,
    max_results: MaxOption = 100,
    json_output: JsonOption = False,
) -> None:
    """Runs matching FILTER (MLflow's filter language), ordered by --order-by."""
    _search(filter_string, experiment, order_by, max_results, json_output, title="matching runs")


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="The run's id.")],
    json_output: JsonOption = False,
) -> None:
    """Everything recorded for one run: info, params, metrics, tags, artifacts, inputs."""
    with tracking_client() as client:
        run = client.get_run(run_id)
        artifacts = client.list_artifacts(run_id)
    if json_output:
        print_json({**run.to_dict(), "artifacts": artifacts})
        return
    info = run.info
    rows = [
        ("run_id", info.run_id),
        ("name", info.run_name),
        ("experiment_id", info.experiment_id),
        ("status", info.status),
        ("failure", info.failure_reason),
        ("started", format_ms(info.start_time)),
        ("ended", format_ms(info.end_time)),
        ("duration", _duration(info.start_time, info.end_time)),
        ("user", info.user_id),
        ("parent run", info.parent_run_id),
        ("source", info.source),
        ("git commit", _commit(info.git_commit, info.git_dirty)),
        ("python", (info.environment or {}).get("python")),
        ("lifecycle", info.lifecycle_stage),
    ]
    print_table(
        [{"field": k, "value": v} for k, v in rows if v not in (None, "")],
        ["field", "value"],
        title=f"run {info.run_id}",
    )
    _key_values("params", run.data.params)
    _key_values("metrics (latest values)", run.data.metrics)
    _key_values("tags", run.data.tags)
    if artifacts:
        print_table(artifacts, ["path", "size", "sha256"], title="artifacts")
    if run.inputs:
        print_table(run.inputs, ["dataset_version_id", "context", "version", "uri"], title="inputs")


def _search(
    filter_string: str,
    experiment_names: Sequence[str] | None,
    order_by: Sequence[str] | None,
    max_results: int,
    json_output: bool,
    *,
    title: str,
) -> None:
    with tracking_client() as client:
        ids = _experiment_ids(client, experiment_names)
        runs = client.search_runs(
            ids,
            filter_string,
            max_results=max_results,
            order_by=list(order_by) if order_by else None,
        )
        names = {e.experiment_id: e.name for e in client.search_experiments(include_deleted=True)}
    if json_output:
        print_json([_summary(run, names) for run in runs])
        return
    print_table(
        [
            {
                "run_id": run.info.run_id,
                "experiment": names.get(run.info.experiment_id, run.info.experiment_id),
                "name": run.info.run_name,
                "status": run.info.status,
                "started": format_ms(run.info.start_time),
                "duration": _duration(run.info.start_time, run.info.end_time),
                "metrics": run.data.metrics,
            }
            for run in runs
        ],
        _LIST_COLUMNS,
        title=f"{title} ({len(runs)})",
    )


def _summary(run: Run, names: dict[str, str]) -> dict[str, Any]:
    info = run.info
    return {
        "run_id": info.run_id,
        "experiment_id": info.experiment_id,
        "experiment": names.get(info.experiment_id),
        "run_name": info.run_name,
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "user_id": info.user_id,
        "parent_run_id": info.parent_run_id,
        "metrics": run.data.metrics,
        "params": run.data.params,
        "tags": run.data.tags,
    }


def _experiment_ids(client: Client, names: Sequence[str] | None) -> list[str] | None:
    return client.get_experiment_ids(names) if names else None


def _key_values(title: str, values: dict[str, Any]) -> None:
    if values:
        print_table(
            [{"key": k, "value": values[k]} for k in sorted(values)], ["key", "value"], title=title
        )
    else:
        stdout.print(f"{title}: none", style="dim", markup=False, highlight=False)


def _duration(start: int | None, end: int | None) -> str:
    if start is None or end is None:
        return ""
    seconds = max(end - start, 0) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _commit(commit: str | None, dirty: bool | None) -> str | None:
    if not commit:
        return None
    return f"{commit[:12]}{' (dirty)' if dirty else ''}"
