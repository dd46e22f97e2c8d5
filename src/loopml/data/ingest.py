"""One ingestion: source → (validate, clean, quarantine) → Delta version + profile + record.

The data streams batch by batch into one Parquet file that is committed to the Delta table
only after the last batch (:mod:`loopml.data.delta`): a failure (or a killed process) before
that leaves only an unreferenced data file, never a half-written version. The metadata row
that makes the version visible to ``name@latest`` is inserted last, in one transaction; a
Delta commit left without its row by a crash is rolled back (Delta ``restore``) before the
next append.

Identical content is detected before the commit: the content hash is complete when the last
batch is written, and if it equals the latest version's hash the file is removed and the
existing version is returned with ``reused=True``.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.data.clean_engine import ROW, Cleaner
from loopml.data.cleaning_spec import CleaningSpec
from loopml.data.contract import Contract, column_type, load_contract
from loopml.data.delta import VersionWriter, object_store_options
from loopml.data.errors import SchemaChangeError, SourceFormatError
from loopml.data.quarantine import SideWriter, quarantine_rows
from loopml.data.sources import DEFAULT_BATCH_ROWS, iter_batches, parse_source
from loopml.data.sources.incremental import start_state
from loopml.data.validate import RuleResult, ValidationReport, schema_issues, validate
from loopml.errors import ConflictError, IntegrityError, InvalidInputError

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

    from loopml.data.versions import DatasetStore, DatasetVersionInfo

__all__ = ["IngestResult", "Progress", "run_ingest"]

Progress = Callable[[str, int], None]
"""Called as ``progress(stage, rows_so_far)``; stages: read, write, profile, record."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass
class IngestResult:
    """What one ingestion did. ``rows_in == rows + quarantined`` always holds."""

    dataset: str
    version: int
    rows_in: int
    rows: int
    quarantined: int
    reasons: dict[str, int]
    dataset_version_id: int
    reused: bool
    validation: ValidationReport | None = None
    changed: dict[str, int] = field(default_factory=dict)
    row_count: int = 0
    content_hash: str = ""
    uri: str = ""

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["validation"] = self.validation.to_dict() if self.validation else None
        return body


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInputError(
            f"dataset name {name!r} is not allowed",
            hint="use letters, digits, '_', '-' or '.', starting with a letter or digit",
        )
    return name


def run_ingest(
    store: DatasetStore,
    source: Any,
    name: str,
    *,
    clean: CleaningSpec | dict[str, Any] | str | None = None,
    contract: str | Path | Contract | None = None,
    incremental: bool = False,
    progress: Progress | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    run_id: str | None = None,
    allow_schema_change: bool = False,
) -> IngestResult:
    import polars as pl
    from deltalake import DeltaTable

    from loopml.data.versions import ordered_files

    check_name(name)
    spec = parse_source(source)
    described = spec.describe()
    the_contract = load_contract(contract) if contract is not None else None
    clean_spec = CleaningSpec.load(clean)
    latest = store.latest(name)
    state = start_state(spec, latest.source if latest else None, incremental=incremental)
    append = bool(incremental and latest is not None)
    table_uri = store.table_uri(name)
    options = store.storage_options
    if append:
        assert latest is not None
        _drop_orphan_commits(table_uri, latest.delta_version, options)
    ingest_id = f"{int(time.time() * 1000)}-{uuid.uuid4().hex[:8]}"
    side = f"{store.dataset_uri(name)}/ingestions/{ingest_id}"
    cleaner = Cleaner(clean_spec, the_contract, source=described)
    quarantine = SideWriter(f"{side}/quarantine.parquet", options)
    changes = SideWriter(f"{side}/changes.parquet", options)
    checks = _ReportMerger(the_contract)
    counts = {"in": 0, "kept": 0, "quarantined": 0}
    hasher = hashlib.sha256(b"loopml-content-v1|polars-hash_rows|")
    if append:
        assert latest is not None
        hasher.update(latest.content_hash.encode())
    reference = _reference_schema(the_contract, latest, allow_schema_change)

    def report(stage: str, rows: int) -> None:
        if progress is not None:
            progress(stage, rows)

    def stream() -> Iterator[pl.DataFrame]:
        offset = 0
        out_schema: pl.Schema | None = None
        for raw in iter_batches(spec, batch_rows=batch_rows, state=state):
            raw = raw.with_row_index(ROW, offset=offset).with_columns(pl.col(ROW).cast(pl.Int64))
            offset += raw.height
            counts["in"] += raw.height
            if offset == raw.height:
                _check_schema(described, raw.schema, the_contract, reference, allow_schema_change)
            if the_contract is not None:
                checks.add(validate(raw.drop(ROW), the_contract), offset - raw.height)
            result = cleaner.apply(raw)
            removed = quarantine_rows(raw, result.quarantined)
            quarantine.write(removed)
            changes.write(result.changes)
            kept = result.kept.drop(ROW)
            if out_schema is None:
                out_schema = kept.schema
                hasher.update(repr(list(out_schema.items())).encode())
            elif kept.schema != out_schema:
                kept = _align(kept, out_schema, described)
            if kept.height:
                hasher.update(kept.hash_rows(seed=11).to_numpy().tobytes())
            counts["kept"] += kept.height
            counts["quarantined"] += removed.height
            report("read", counts["in"])
            # Drop this batch's frames before reading the next, so that at most one batch
            # (plus the one being written) is in memory: this is what bounds streaming.
            del raw, result, removed
            yield kept
            del kept

    batches = stream()
    first = next(batches, None)
    if first is None or counts["in"] == 0:
        if incremental and latest is not None:
            return _reuse(latest, counts, {}, checks.report(0))
        raise SourceFormatError(
            f"{described} has no data rows (only a header, or nothing new)",
            hint="check that the source holds rows",
        )
    writer = VersionWriter(table_uri, options)
    written = 0
    only: pl.DataFrame | None = first  # kept for the profile while it is the only batch
    try:
        writer.write(_arrow(first))
        written = 1
        del first
        for frame in batches:
            only = None
            writer.write(_arrow(frame))
            written += 1
            del frame
        report("write", counts["kept"])
        content_hash = hasher.hexdigest()
        if latest is not None and (
            content_hash == latest.content_hash or (append and counts["kept"] == 0)
        ):
            writer.abort()
            quarantine.close()
            changes.close()
            return _reuse(latest, counts, dict(cleaner.reasons), checks.report(counts["in"]))
        delta_version = _commit(writer, append, name)
    except BaseException:
        writer.abort()
        raise
    arrow_schema = writer.schema
    assert arrow_schema is not None

    if counts["in"] != counts["kept"] + counts["quarantined"]:
        raise IntegrityError(  # pragma: no cover - would be a bug in cleaning
            f"dataset {name!r}: {counts['in']} rows read but {counts['kept']} kept + "
            f"{counts['quarantined']} quarantined",
            hint="report this as a loopml bug",
        )
    report("profile", counts["kept"])
    from loopml.data.profile import profile_frame, profile_lazy

    total_rows = counts["kept"] + (latest.row_count if append and latest else 0)
    if only is not None and not append:
        profile = profile_frame(only)  # the whole version is still in memory
        del only
    else:
        files = ordered_files(
            DeltaTable(
                table_uri, version=delta_version, storage_options=object_store_options(options)
            )
        )
        profile = profile_lazy(
            pl.scan_parquet(files, storage_options=object_store_options(options)), rows=total_rows
        )
    validation = checks.report(counts["in"])
    side_uris = {
        "quarantine_uri": quarantine.close(),
        "changes_uri": changes.close(),
        "validation_uri": None,
        "report_uri": None,
    }
    if validation is not None:
        side_uris["validation_uri"] = _write_text(
            f"{side}/validation.json", _json(validation.to_dict()), options
        )
    summary = {
        "rows_in": counts["in"],
        "rows": counts["kept"],
        "quarantined": counts["quarantined"],
        "reasons": dict(cleaner.reasons),
        "changed": dict(cleaner.changed),
        "stats_rows": cleaner.stats_rows,
        "incremental": append,
        "clean": clean_spec.model_dump() if clean_spec else None,
        "validation": None
        if validation is None
        else {
            "passed": validation.passed,
            "failed": len(validation.failed),
            "rules": len(validation.results),
        },
        **side_uris,
    }
    from loopml.data.report import render_report

    html = render_report(
        name=name,
        version=None,
        profile=profile,
        summary=summary,
        validation=validation,
        source=described,
    )
    summary["report_uri"] = _write_text(f"{side}/report.html", html, options)
    report("record", counts["kept"])
    schema = {
        "columns": [
            {"name": f.name, "type": column_type(t) or str(t), "dtype": str(t)}
            for f, t in zip(
                arrow_schema,
                pl.DataFrame(pl.from_arrow(arrow_schema.empty_table())).dtypes,
                strict=True,
            )
        ]
    }
    info = store.record_version(
        name,
        uri=f"{table_uri}?version={delta_version}",
        row_count=total_rows,
        schema=schema,
        content_hash=content_hash,
        source={
            "spec": spec.model_dump(mode="json"),
            "description": described,
            "state": state.after,
            "ingestion": ingest_id,
            "mode": "append" if append else "overwrite",
        },
        contract=the_contract,
        contract_name=name,
        cleaning_summary=summary,
        profile=profile,
        parent_id=latest.id if latest else None,
        run_id=run_id,
    )
    return IngestResult(
        dataset=name,
        version=info.version,
        rows_in=counts["in"],
        rows=counts["kept"],
        quarantined=counts["quarantined"],
        reasons=dict(cleaner.reasons),
        dataset_version_id=info.id,
        reused=False,
        validation=validation,
        changed=dict(cleaner.changed),
        row_count=total_rows,
        content_hash=content_hash,
        uri=info.uri,
    )


def _reuse(
    latest: DatasetVersionInfo,
    counts: dict[str, int],
    reasons: dict[str, int],
    validation: ValidationReport | None,
) -> IngestResult:
    return IngestResult(
        dataset=latest.dataset,
        version=latest.version,
        rows_in=counts["in"],
        rows=counts["kept"],
        quarantined=counts["quarantined"],
        reasons=reasons,
        dataset_version_id=latest.id,
        reused=True,
        validation=validation,
        row_count=latest.row_count,
        content_hash=latest.content_hash,
        uri=latest.uri,
    )


def _commit(writer: VersionWriter, append: bool, name: str) -> int:
    try:
        return writer.commit(append=append)
    except Exception as exc:
        if "commit" in type(exc).__name__.lower() or "conflict" in str(exc).lower():
            raise ConflictError(
                f"dataset {name!r} was written by another ingestion at the same time",
                hint="run this ingestion again",
            ) from exc
        raise


def _arrow(frame: pl.DataFrame) -> pa.Table:
    # Plain (not view) string types: every Delta reader understands them.
    return frame.to_arrow()


def _align(kept: pl.DataFrame, schema: pl.Schema, described: str) -> pl.DataFrame:
    import polars as pl

    extra = [c for c in kept.columns if c not in schema]
    missing = [c for c in schema if c not in kept.columns]
    if extra or missing:
        raise SchemaChangeError(
            f"{described} changes columns between batches (new: {extra or 'none'}, "
            f"missing: {missing or 'none'})",
            hint="declare the columns in a contract, or ingest the parts separately",
        )
    try:
        return kept.select([pl.col(c).cast(t) for c, t in schema.items()])
    except pl.exceptions.PolarsError as exc:
        raise SchemaChangeError(
            f"{described} changes a column's type between batches: {str(exc).splitlines()[0]}",
            hint="declare the column types in a contract so every batch is cast the same way",
        ) from exc


def _reference_schema(
    contract: Contract | None, latest: DatasetVersionInfo | None, allow: bool
) -> dict[str, str] | None:
    if contract is not None or latest is None or allow or not latest.schema:
        return None
    return {c["name"]: c["type"] for c in latest.schema.get("columns", [])}


def _check_schema(
    described: str,
    schema: pl.Schema,
    contract: Contract | None,
    reference: dict[str, str] | None,
    allow: bool,
) -> None:
    columns = {c: t for c, t in schema.items() if not c.startswith("_")}
    if contract is not None:
        issues = schema_issues(contract, columns)
        if issues:
            raise SchemaChangeError(
                f"{described} does not match the contract: "
                + "; ".join(i.describe() for i in issues),
                hint="fix the source, or update the contract (loopml data infer SOURCE -o FILE)",
            )
        return
    if reference is None or allow:
        return
    now = {c: column_type(t) or str(t) for c, t in columns.items()}
    problems = [f"new column {c!r}" for c in now if c not in reference]
    problems += [f"missing column {c!r}" for c in reference if c not in now]
    problems += [
        f"column {c!r} is {now[c]}, was {reference[c]}"
        for c in now
        if c in reference
        and now[c] != reference[c]
        and not {now[c], reference[c]} <= {"integer", "float"}
    ]
    if problems:
        raise SchemaChangeError(
            f"{described} changed schema since the latest version: " + "; ".join(problems),
            hint="pass --allow-schema-change (allow_schema_change=True) to accept it, "
            "or give a contract",
        )


def _drop_orphan_commits(table_uri: str, recorded: int | None, options: dict[str, Any]) -> None:
    """Roll back Delta commits that no recorded version points at (a crash after commit)."""
    from deltalake import DeltaTable

    if recorded is None:
        return
    try:
        table = DeltaTable(table_uri, storage_options=object_store_options(options))
    except Exception:  # the table vanished: the next write recreates it
        return
    if table.version() > recorded:
        table.restore(recorded)


class _ReportMerger:
    """Adds up per-batch validation reports into one for the whole ingestion."""

    def __init__(self, contract: Contract | None) -> None:
        self.contract = contract
        self.results: dict[str, RuleResult] = {}
        self.schema: list[Any] = []

    def add(self, batch: ValidationReport, offset: int) -> None:
        if not self.schema:
            self.schema = batch.schema
        for r in batch.results:
            if r.kind == "row_count":
                continue
            merged = self.results.setdefault(r.rule, RuleResult(r.rule, r.kind, r.column, 0, []))
            merged.violations += r.violations
            for example in r.examples:
                if len(merged.examples) < 5:
                    shifted = dict(example)
                    if "row" in shifted:
                        shifted["row"] += offset
                    merged.examples.append(shifted)

    def report(self, rows: int) -> ValidationReport | None:
        if self.contract is None:
            return None
        results = []
        for rule in self.contract.rules():
            if rule.kind == "row_count":
                low, high = rule.params["min"], rule.params["max"]
                bad = (low is not None and rows < low) or (high is not None and rows > high)
                results.append(RuleResult(rule.id, rule.kind, None, int(bad), []))
            else:
                results.append(
                    self.results.get(rule.id, RuleResult(rule.id, rule.kind, rule.column, 0, []))
                )
        return ValidationReport(rows, results, self.schema, self.contract.name)


def _json(body: Any) -> str:
    import orjson

    return orjson.dumps(
        body, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str
    ).decode()


def _write_text(uri: str, text: str, options: dict[str, Any]) -> str:
    import fsspec

    with fsspec.open(uri, "w", encoding="utf-8", auto_mkdir=True, **options) as fh:
        fh.write(text)
    return uri
