"""``loopml data``: ingest sources into versioned datasets, validate, profile, compare, inspect.

``loopml data ingest SOURCE --name NAME --json`` prints (at least)::

    {"dataset": ..., "version": ..., "rows_in": ..., "rows": ..., "quarantined": ...,
     "reasons": {reason: count}, "reused": ..., ...}

Progress goes to stderr, so with ``--json`` stdout carries only the JSON document.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli.output import (
    JSON_OPTION_HELP,
    format_ms,
    print_json,
    print_table,
    stderr,
    stdout,
)
from loopml.config import Settings
from loopml.errors import InvalidInputError

if TYPE_CHECKING:
    from loopml.data.versions import DatasetStore

app = typer.Typer(
    help="Datasets: ingest, validate, clean, version, profile, compare.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help=JSON_OPTION_HELP)]
RefArgument = Annotated[
    str, typer.Argument(metavar="NAME@VERSION", help="e.g. sales@3, sales@latest")
]
SourceArgument = Annotated[
    str, typer.Argument(metavar="SOURCE", help="File path, glob or URL; SQL URL; http(s) API URL.")
]


@app.command()
def ingest(
    source: SourceArgument,
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name.")],
    clean: Annotated[bool, typer.Option("--clean", help="Clean and quarantine bad rows.")] = False,
    recipe: Annotated[
        Path | None, typer.Option("--recipe", help="Cleaning recipe YAML (implies --clean).")
    ] = None,
    contract: Annotated[
        Path | None, typer.Option("--contract", "-c", help="Contract YAML to check against.")
    ] = None,
    incremental: Annotated[
        bool, typer.Option("--incremental", help="Only new files / rows past the watermark.")
    ] = False,
    allow_schema_change: Annotated[
        bool, typer.Option("--allow-schema-change", help="Accept new/missing/retyped columns.")
    ] = False,
    kind: Annotated[str | None, typer.Option("--type", help="file | sql | http | log")] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv | parquet | jsonl | json | regex")
    ] = None,
    query: Annotated[str | None, typer.Option("--query", help="SQL query.")] = None,
    table: Annotated[str | None, typer.Option("--table", help="SQL table.")] = None,
    watermark: Annotated[str | None, typer.Option("--watermark", help="Watermark column.")] = None,
    records: Annotated[str | None, typer.Option("--records", help="HTTP: path to records.")] = None,
    auth_env: Annotated[str | None, typer.Option("--auth-env", help="HTTP: token env var.")] = None,
    pattern: Annotated[str | None, typer.Option("--pattern", help="Log regex or preset.")] = None,
    encoding: Annotated[str | None, typer.Option("--encoding", help="File text encoding.")] = None,
    delimiter: Annotated[str | None, typer.Option("--delimiter", help="CSV delimiter.")] = None,
    batch_rows: Annotated[int | None, typer.Option("--batch-rows", help="Rows per batch.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Read SOURCE, validate and clean it, and store it as the next version of NAME."""
    from loopml.data.cleaning import CleaningSpec

    spec = _source(
        source,
        kind=kind,
        fmt=fmt,
        query=query,
        table=table,
        watermark=watermark,
        records=records,
        auth_env=auth_env,
        pattern=pattern,
        encoding=encoding,
        delimiter=delimiter,
    )
    cleaning = (
        CleaningSpec.load(str(recipe)) if recipe else (CleaningSpec.default() if clean else None)
    )
    with _store() as store, _progress(f"ingest {name}") as progress:
        result = store.ingest(
            spec,
            name,
            clean=cleaning,
            contract=contract,
            incremental=incremental,
            progress=progress,
            batch_rows=batch_rows,
            allow_schema_change=allow_schema_change,
        )
    body = {
        "dataset": result.dataset,
        "version": result.version,
        "rows_in": result.rows_in,
        "rows": result.rows,
        "quarantined": result.quarantined,
        "reasons": result.reasons,
        "changed": result.changed,
        "reused": result.reused,
        "row_count": result.row_count,
        "dataset_version_id": result.dataset_version_id,
        "content_hash": result.content_hash,
        "validation": None
        if result.validation is None
        else {
            "passed": result.validation.passed,
            "failed": [r.rule for r in result.validation.failed],
        },
    }
    if json_output:
        print_json(body)
        return
    verb = "reused" if result.reused else "stored"
    stdout.print(
        f"{verb} [bold]{result.dataset}@{result.version}[/]: {result.rows_in} rows in, "
        f"{result.rows} kept, {result.quarantined} quarantined",
        highlight=False,
    )
    if result.reasons:
        print_table(
            [{"reason": k, "rows": v} for k, v in sorted(result.reasons.items())],
            ["reason", "rows"],
            title="quarantine reasons",
        )


@app.command()
def validate(
    target: Annotated[str, typer.Argument(metavar="SOURCE|NAME@VERSION", help="Data to check.")],
    contract: Annotated[
        Path | None,
        typer.Option("--contract", "-c", help="Contract YAML (default: the version's)."),
    ] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv | parquet | jsonl")] = None,
    json_output: JsonOption = False,
) -> None:
    """Check data against a contract; exits 1 (error on stderr) when a rule fails."""
    from loopml.data.contract import load_contract
    from loopml.data.validate import validate as run

    if _is_ref(target):
        with _store() as store:
            frame = store.read(target, as_="polars")
            the_contract = load_contract(contract) if contract else store.contract(target)
        if the_contract is None:
            raise InvalidInputError(
                f"dataset {target} was stored without a contract", hint="pass --contract FILE"
            )
    else:
        if contract is None:
            raise InvalidInputError(
                f"validating {target!r} needs a contract", hint="pass --contract FILE"
            )
        the_contract = load_contract(contract)
        frame = _read(target, fmt)
    report = run(frame, the_contract)
    if json_output:
        print_json(report.to_dict())
    else:
        print_table(
            [
                {
                    "rule": r.rule,
                    "violations": r.violations,
                    "examples": "; ".join(str(e) for e in r.examples[:3]),
                }
                for r in report.results
            ],
            ["rule", "violations", "examples"],
            title=f"{report.rows} rows: {'passed' if report.passed else 'FAILED'}",
        )
        for issue in report.schema:
            stderr.print(f"[red]schema:[/] {issue.describe()}", highlight=False)
    if not report.passed:
        from loopml.data.errors import ContractViolationError

        raise ContractViolationError(
            f"{target} breaks the contract: {report.summary()}",
            hint="ingest with --clean to quarantine such rows, or edit the contract",
        )


@app.command()
def infer(
    target: Annotated[
        str, typer.Argument(metavar="SOURCE|NAME@VERSION", help="Data to learn from.")
    ],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write YAML here.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Contract name.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv | parquet | jsonl")] = None,
) -> None:
    """Propose a contract (YAML) from data, to edit and then enforce."""
    from loopml.data.contract import infer_contract

    if _is_ref(target):
        with _store() as store:
            frame = store.read(target, as_="polars")
    else:
        frame = _read(target, fmt)
    text = infer_contract(frame, name=name).to_yaml()
    if output is None:
        stdout.out(text, highlight=False)
    else:
        output.write_text(text, encoding="utf-8")
        stderr.print(f"wrote {output}", highlight=False)


@app.command()
def versions(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Dataset name.")],
    json_output: JsonOption = False,
) -> None:
    """Every version of a dataset, oldest first."""
    with _store() as store:
        found = store.versions(name)
        if not found:
            store.get_version(name)  # raises NotFoundError with a hint
    rows = [v.summary() for v in found]
    if json_output:
        print_json(rows)
        return
    print_table(
        [
            {**r, "created": format_ms(r["created_at"]), "hash": r["content_hash"][:12]}
            for r in rows
        ],
        ["version", "rows", "rows_in", "quarantined", "hash", "source", "created"],
        title=f"dataset {name}",
    )


@app.command()
def show(
    ref: RefArgument,
    head: Annotated[int, typer.Option("--head", help="Rows to print.")] = 10,
    json_output: JsonOption = False,
) -> None:
    """A version's record (source, schema, lineage, cleaning) and its first rows."""
    with _store() as store:
        info = store.get_version(ref)
        frame = store.read(info.ref, as_="polars").head(head)
        lineage = [v.ref for v in store.lineage(info.ref)]
    body = {
        **info.summary(),
        "schema": info.schema,
        "cleaning": info.cleaning_summary,
        "lineage": lineage,
        "head": frame.to_dicts(),
    }
    if json_output:
        print_json(body)
        return
    summary = info.summary()
    for key in ("dataset", "version", "rows", "rows_in", "quarantined", "source", "content_hash"):
        stdout.print(f"[bold]{key}[/]: {summary[key]}", highlight=False)
    stdout.print(f"[bold]lineage[/]: {' <- '.join(lineage)}", highlight=False)
    print_table(frame.to_dicts(), frame.columns, title=f"first {frame.height} rows")


@app.command()
def profile(
    ref: RefArgument,
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML report here.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Per-column statistics of a version (and its HTML data-quality report)."""
    with _store() as store:
        info = store.get_version(ref)
        stats = store.profile(info.ref)
        if html is not None:
            html.write_text(store.report(info.ref), encoding="utf-8")
            stderr.print(f"wrote {html}", highlight=False)
    if json_output:
        print_json({"dataset": info.dataset, "version": info.version, **stats})
        return
    rows = []
    for column, s in stats.get("columns", {}).items():
        top = s.get("top") or []
        rows.append(
            {
                "column": column,
                "type": s.get("type"),
                "nulls": s.get("nulls"),
                "min": s.get("min"),
                "mean": s.get("mean"),
                "max": s.get("max"),
                "top": ", ".join(f"{t['value']}:{t['count']}" for t in top[:3]),
            }
        )
    print_table(rows, ["column", "type", "nulls", "min", "mean", "max", "top"], title=info.ref)


@app.command()
def diff(
    ref_a: Annotated[str, typer.Argument(metavar="NAME@A")],
    ref_b: Annotated[str, typer.Argument(metavar="NAME@B")],
    json_output: JsonOption = False,
) -> None:
    """How version B differs from version A."""
    with _store() as store:
        result = store.diff(ref_a, ref_b)
    if json_output:
        print_json(result)
        return
    rows = result["rows"]
    stdout.print(
        f"{result['a']} → {result['b']}: rows {rows['a']} → {rows['b']} ({rows['delta']:+d})"
        + (", same content" if result["same_content"] else ""),
        highlight=False,
    )
    schema = result["schema"]
    for label in ("added", "removed"):
        if schema[label]:
            stdout.print(f"columns {label}: {', '.join(schema[label])}", highlight=False)
    for column, change in schema["retyped"].items():
        stdout.print(f"column {column}: {change['a']} → {change['b']}", highlight=False)
    if result["keys"]:
        k = result["keys"]
        stdout.print(
            f"keys {k['key']}: {k['added']} added, {k['removed']} removed, {k['kept']} kept",
            highlight=False,
        )
    print_table(
        [
            {"column": c, **{stat: f"{v['a']} → {v['b']}" for stat, v in changes.items()}}
            for c, changes in result["columns"].items()
        ],
        ["column", "nulls", "mean", "std", "min", "max"],
        title="changed statistics",
    )


@app.command()
def quarantine(
    ref: RefArgument,
    limit: Annotated[int, typer.Option("--limit", help="Rows to print.")] = 20,
    json_output: JsonOption = False,
) -> None:
    """Rows removed when a version was ingested, with their original values and reason."""
    with _store() as store:
        frame = store.quarantine(ref, as_="polars")
        info = store.get_version(ref)
    reasons = (info.cleaning_summary or {}).get("reasons") or {}
    if json_output:
        print_json(
            {
                "dataset": info.dataset,
                "version": info.version,
                "quarantined": frame.height,
                "reasons": reasons,
                "rows": frame.head(limit).to_dicts(),
            }
        )
        return
    print_table(
        frame.head(limit).to_dicts(),
        frame.columns,
        title=f"{info.ref}: {frame.height} quarantined rows",
    )


@app.command()
def changes(
    ref: RefArgument,
    limit: Annotated[int, typer.Option("--limit", help="Rows to print.")] = 20,
    json_output: JsonOption = False,
) -> None:
    """Values cleaning changed in kept rows (imputed, coerced, clipped)."""
    with _store() as store:
        frame = store.changes(ref, as_="polars")
    if json_output:
        print_json({"changes": frame.height, "rows": frame.head(limit).to_dicts()})
        return
    print_table(frame.head(limit).to_dicts(), frame.columns, title=f"{frame.height} changed values")


# -- helpers ---------------------------------------------------------------------------------


@contextmanager
def _store() -> Iterator[DatasetStore]:
    from loopml.data.versions import from_settings

    store = from_settings(Settings.from_env())
    try:
        yield store
    finally:
        store.database.dispose()


@contextmanager
def _progress(label: str) -> Iterator[Any]:
    """A Rich progress line on stderr; callers get ``progress(stage, rows)``."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=stderr,
        transient=True,
    )
    stages = ("read", "write", "profile", "record")
    with bar:
        task = bar.add_task(label, total=len(stages), rows=0)

        def update(stage: str, rows: int) -> None:
            done = stages.index(stage) if stage in stages else 0
            bar.update(task, completed=done, rows=rows, description=f"{label}: {stage}")

        yield update


def _is_ref(target: str) -> bool:
    return "@" in target and "://" not in target and not os.path.exists(target)


def _source(text: str, **options: Any) -> Any:
    from loopml.data.sources import parse_source

    fmt = options.pop("fmt")
    kind = options.pop("kind")
    if fmt == "regex":
        options["format"] = "regex"
    elif fmt in ("json",) and kind == "log":
        options["format"] = "json"
    elif fmt:
        options["format"] = "jsonl" if fmt == "json" else fmt
    if kind:
        options["type"] = kind
    return parse_source(text, **options)


def _read(target: str, fmt: str | None) -> Any:
    import polars as pl

    from loopml.data.sources import iter_batches

    frames = list(iter_batches(_source(target, fmt=fmt, kind=None)))
    if not frames:
        raise InvalidInputError(f"{target!r} has no data rows", hint="check the source")
    return pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
