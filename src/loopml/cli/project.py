"""``loopml run``, ``loopml train``, ``loopml init`` and ``loopml schema``: the project commands.

``run`` executes a project folder end to end (ingest → validate/clean → train → evaluate →
package → register) with a live display on stderr and a summary on stdout; ``train`` does the
same on the stored dataset version without ingesting again. ``--json`` prints the summary as
JSON (``ProjectResult.to_dict()``) and nothing else on stdout.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from loopml.cli.output import JSON_OPTION_HELP, format_cell, print_json, stderr, stdout

__all__ = ["COMMANDS"]

PathArgument = Annotated[
    Path, typer.Argument(help="Project folder (or its loopml.yaml).", show_default=True)
]
JsonOption = Annotated[bool, typer.Option("--json", help=JSON_OPTION_HELP)]
TrialsOption = Annotated[
    int | None, typer.Option("--trials", min=1, help="Override search.trials.")
]
TimeoutOption = Annotated[
    float | None, typer.Option("--timeout", min=0.001, help="Override search.timeout (seconds).")
]
JobsOption = Annotated[
    int | None, typer.Option("--jobs", "-j", min=1, help="Override search.n_jobs.")
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No live progress display.")]


def run(
    path: PathArgument = Path("."),
    trials: TrialsOption = None,
    timeout: TimeoutOption = None,
    jobs: JobsOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Run the project: ingest, validate and clean, train, evaluate, package, register."""
    _execute(
        path,
        trials=trials,
        timeout=timeout,
        jobs=jobs,
        json_output=json_output,
        quiet=quiet,
        skip_ingest=False,
        dataset=None,
    )


def train(
    path: PathArgument = Path("."),
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="Dataset version to train on (NAME@VERSION); default: "
            "data.dataset in loopml.yaml, else the latest version.",
        ),
    ] = None,
    trials: TrialsOption = None,
    timeout: TimeoutOption = None,
    jobs: JobsOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Train, evaluate and register on a stored dataset version (no ingestion)."""
    _execute(
        path,
        trials=trials,
        timeout=timeout,
        jobs=jobs,
        json_output=json_output,
        quiet=quiet,
        skip_ingest=True,
        dataset=dataset,
    )


def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print the JSON schema of loopml.yaml (for editors and validation in CI)."""
    from loopml.train.project import schema_json

    text = schema_json()
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text + "\n", encoding="utf-8")
        stderr.print(f"wrote {output}", highlight=False)


def init(
    path: PathArgument = Path("."),
    name: Annotated[str | None, typer.Option(help="Project (and model) name.")] = None,
    data: Annotated[
        str | None, typer.Option(help="Data file (CSV, Parquet or JSON lines), relative to PATH.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Column to predict.")] = None,
    task: Annotated[
        str | None, typer.Option(help="regression, binary or multiclass (default: guessed).")
    ] = None,
    metric: Annotated[str | None, typer.Option(help="Primary metric (default by task).")] = None,
    candidates: Annotated[
        str | None, typer.Option(help="Comma-separated candidates (default by task).")
    ] = None,
    trials: Annotated[int, typer.Option(min=1, help="Search trials.")] = 20,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Never prompt: use flags and defaults only.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Overwrite an existing loopml.yaml.")] = False,
) -> None:
    """Create loopml.yaml, from flags or by asking (interactively) for what is missing."""
    from loopml.cli.project_init import scaffold

    interactive = not yes and sys.stdin.isatty()
    text = scaffold(
        path,
        name=name,
        data=data,
        target=target,
        task=task,
        metric=metric,
        candidates=candidates,
        trials=trials,
        interactive=interactive,
        force=force,
        ask=_ask,
        choose=_choose,
    )
    stdout.print(f"wrote {path / 'loopml.yaml'}", highlight=False)
    stderr.print(text, highlight=False, markup=False)
    stderr.print(f"next: loopml run {path}", highlight=False)


def _ask(question: str, default: str | None) -> str:
    return str(typer.prompt(question, default=default))


def _choose(question: str, options: list[str], default: str) -> str:
    while True:
        answer = str(typer.prompt(f"{question} ({'/'.join(options)})", default=default))
        if answer in options:
            return answer
        stderr.print(f"choose one of: {', '.join(options)}", highlight=False)


COMMANDS: dict[str, Callable[..., Any]] = {
    "run": run,
    "train": train,
    "init": init,
    "schema": schema,
}
"""Top-level commands, added to the ``loopml`` app by :func:`loopml.cli.main._register`."""


# --- running ---------------------------------------------------------------------------------


def _execute(
    path: Path,
    *,
    trials: int | None,
    timeout: float | None,
    jobs: int | None,
    json_output: bool,
    quiet: bool,
    skip_ingest: bool,
    dataset: str | None,
) -> None:
    from dataclasses import replace

    from loopml.config import Settings
    from loopml.pipeline.runner import run_project
    from loopml.train.project import load_project

    project = load_project(path)
    if dataset is not None:
        data = project.spec.data.model_copy(update={"source": None, "dataset": dataset})
        project = replace(project, spec=project.spec.model_copy(update={"data": data}))
    settings = Settings.from_env()
    show = not quiet and stderr.is_terminal
    from loopml.cli.project_progress import LiveProgress

    with LiveProgress(project.spec, enabled=show, trials=trials) as live:
        result = run_project(
            project,
            settings=settings,
            progress=live.handle,
            trials=trials,
            timeout=timeout,
            n_jobs=jobs,
            skip_ingest=skip_ingest,
        )
    if json_output:
        print_json(result.to_dict())
        return
    _print_summary(result.to_dict())


def _print_summary(result: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    def text(value: Any) -> str:  # user data is text, never Rich markup
        return escape(format_cell(value))

    data = result["dataset"]
    model = result["model"]
    best = result["best"]
    table = Table(
        title=f"loopml run: {text(result['project'])}", show_header=False, title_justify="left"
    )
    table.add_column("", style="bold")
    table.add_column("", overflow="fold")
    reused = " (unchanged, reused)" if data.get("reused") else ""
    rows_text = f"{data.get('rows')} rows"
    if data.get("quarantined"):
        rows_text += f", {data['quarantined']} quarantined ({text(data.get('reasons'))})"
    table.add_row("dataset", f"{text(data['ref'])}{reused}: {rows_text}")
    params = text(best.get("params")) or "defaults"
    trials = f" after {best['trials']} trials" if best.get("trials") else ""
    table.add_row("best model", f"{text(best['candidate'])} ({params}){trials}")
    metrics = ", ".join(f"{text(k)} {text(v)}" for k, v in result["metrics"].items())
    table.add_row("metrics", f"{metrics}  [dim]({text(result['evaluated_on'])})[/]")
    for gate in result["gates"]:
        verdict = "[green]pass[/]" if gate["passed"] else "[red]FAIL[/]"
        table.add_row(
            "gate", f"{text(gate['metric'])} {text(gate['rule'])}: {text(gate['value'])} {verdict}"
        )
    if result.get("comparison"):
        table.add_row("vs champion", text(result["comparison"]["sentence"]))
    aliases = text(", ".join(model["aliases"]) or "none")
    table.add_row("registered", f"{text(model['name'])} version {model['version']} ({aliases})")
    table.add_row("", f"[dim]{text(model['reason'])}[/]")
    table.add_row("run", text(result["run_id"]))
    if result.get("report"):
        table.add_row("report", text(result["report"]))
    for note in result.get("notes", []):
        table.add_row("note", f"[dim]{text(note)}[/]")
    stdout.print(table)
