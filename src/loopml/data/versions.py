"""The versioned dataset store: Delta Lake tables under the artifact root, recorded in the
metadata store.

Layout under ``<artifact_root>/datasets/<name>/``::

    table/                      one Delta table; each loopml version is one Delta version
    ingestions/<id>/            beside each version: quarantine.parquet, changes.parquet,
                                validation.json, report.html

A version is addressed as ``name@3``, ``name@latest`` or just ``name``; its ``uri`` is the
table URI with ``?version=<delta version>``, so any Delta reader can time-travel to it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from loopml.errors import ConflictError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

    from loopml.config import Settings
    from loopml.data.cleaning_spec import CleaningSpec
    from loopml.data.contract import Contract
    from loopml.data.ingest import IngestResult, Progress
    from loopml.data.sources import FileSource, HttpSource, LogSource, SqlSource
    from loopml.store import Database

__all__ = ["DatasetStore", "DatasetVersionInfo", "from_settings", "parse_ref"]


@dataclass(frozen=True)
class DatasetVersionInfo:
    """One stored version as recorded in the metadata store."""

    id: int
    dataset: str
    version: int
    uri: str
    row_count: int
    schema: dict[str, Any] | None
    content_hash: str
    source: dict[str, Any] | None
    contract_id: int | None
    cleaning_summary: dict[str, Any] | None
    profile: dict[str, Any] | None
    parent_id: int | None
    run_id: str | None
    created_at: int

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.version}"

    @property
    def table_uri(self) -> str:
        return self.uri.rsplit("?version=", 1)[0]

    @property
    def delta_version(self) -> int:
        return int(self.uri.rsplit("?version=", 1)[1])

    def summary(self) -> dict[str, Any]:
        """The short form used by listings and ``--json`` output."""
        clean = self.cleaning_summary or {}
        return {
            "dataset": self.dataset,
            "version": self.version,
            "id": self.id,
            "rows": self.row_count,
            "rows_in": clean.get("rows_in"),
            "quarantined": clean.get("quarantined"),
            "reasons": clean.get("reasons"),
            "content_hash": self.content_hash,
            "source": (self.source or {}).get("description"),
            "contract_id": self.contract_id,
            "parent_id": self.parent_id,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "uri": self.uri,
        }


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``name@3`` → (name, 3); ``name@latest`` and ``name`` → (name, None)."""
    name, _, version = ref.partition("@")
    if not name:
        raise InvalidInputError(
            f"dataset reference {ref!r} has no name", hint="write NAME@VERSION, e.g. sales@3"
        )
    if version in ("", "latest"):
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise InvalidInputError(
            f"dataset reference {ref!r}: version {version!r} is not a positive number or 'latest'",
            hint="write NAME@VERSION (e.g. sales@3) or NAME@latest",
        )
    return name, int(version)


class DatasetStore:
    """Immutable dataset versions: ingest, read (time travel), inspect, compare.

    The constructor stores its arguments and does no I/O.
    """

    def __init__(
        self,
        database: Database,
        artifact_root: str,
        *,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.database = database
        self.artifact_root = artifact_root
        self.storage_options = dict(storage_options or {})

    def __repr__(self) -> str:
        return f"DatasetStore({self.database!r}, {self.artifact_root!r})"

    # -- locations -------------------------------------------------------------------------

    def dataset_uri(self, name: str) -> str:
        root = self.artifact_root.rstrip("/")
        if "://" not in root or root.startswith("file://"):
            root = os.path.abspath(os.path.expanduser(root.removeprefix("file://")))
        return f"{root}/datasets/{name}"

    def table_uri(self, name: str) -> str:
        return f"{self.dataset_uri(name)}/table"

    # -- writing ---------------------------------------------------------------------------

    def ingest(
        self,
        source: FileSource | SqlSource | HttpSource | LogSource | str | dict[str, Any],
        name: str,
        *,
        clean: CleaningSpec | dict[str, Any] | str | None = None,
        contract: str | Path | Contract | None = None,
        incremental: bool = False,
        progress: Progress | None = None,
        batch_rows: int | None = None,
        run_id: str | None = None,
        allow_schema_change: bool = False,
    ) -> IngestResult:
        """Read ``source``, validate and clean it, and store it as the next version of ``name``.

        ``clean``: a :class:`CleaningSpec` (or mapping / YAML path); without it rows that break
        the contract make the ingestion fail rather than being quarantined. ``incremental``:
        read only new files / rows past the watermark and append them to the latest version.
        Identical content returns the latest version with ``reused=True``.
        """
        from loopml.data.ingest import run_ingest
        from loopml.data.sources import DEFAULT_BATCH_ROWS

        return run_ingest(
            self,
            source,
            name,
            clean=clean,
            contract=contract,
            incremental=incremental,
            progress=progress,
            batch_rows=batch_rows or DEFAULT_BATCH_ROWS,
            run_id=run_id,
            allow_schema_change=allow_schema_change,
        )

    def record_version(
        self,
        name: str,
        *,
        uri: str,
        row_count: int,
        schema: dict[str, Any],
        content_hash: str,
        source: dict[str, Any],
        contract: Contract | None,
        contract_name: str,
        cleaning_summary: dict[str, Any],
        profile: dict[str, Any],
        parent_id: int | None,
        run_id: str | None,
    ) -> DatasetVersionInfo:
        """Insert the metadata row that makes a written Delta version visible (one transaction)."""
        from sqlalchemy import func, insert, select

        from loopml.store.models import Dataset, DatasetVersion

        datasets = cast("Table", Dataset.__table__)
        versions = cast("Table", DatasetVersion.__table__)
        now = int(time.time() * 1000)

        def work(conn: Connection) -> int:
            dataset_id = conn.execute(
                select(datasets.c.dataset_id).where(datasets.c.name == name)
            ).scalar()
            if dataset_id is None:
                dataset_id = conn.execute(
                    insert(datasets)
                    .values(name=name, created_at=now)
                    .returning(datasets.c.dataset_id)
                ).scalar_one()
            latest_id = conn.execute(
                select(versions.c.id)
                .where(versions.c.dataset_id == dataset_id)
                .order_by(versions.c.version.desc())
                .limit(1)
            ).scalar()
            if latest_id != parent_id:
                raise ConflictError(
                    f"dataset {name!r} got a new version while this ingestion ran",
                    hint="run the ingestion again on top of the new latest version",
                )
            number = conn.execute(
                select(func.coalesce(func.max(versions.c.version), 0)).where(
                    versions.c.dataset_id == dataset_id
                )
            ).scalar_one()
            contract_id = self._save_contract(conn, contract, contract_name) if contract else None
            return int(
                conn.execute(
                    insert(versions)
                    .values(
                        dataset_id=dataset_id,
                        version=number + 1,
                        uri=uri,
                        row_count=row_count,
                        schema=schema,
                        content_hash=content_hash,
                        source=source,
                        contract_id=contract_id,
                        cleaning_summary=cleaning_summary,
                        profile=profile,
                        parent_id=parent_id,
                        run_id=run_id,
                        created_at=now,
                    )
                    .returning(versions.c.id)
                ).scalar_one()
            )

        new_id = self.database.run_write(work)
        return self._by_id(new_id)

    def save_contract(self, contract: Contract, name: str) -> tuple[int, int]:
        """Store ``contract`` under ``name``; returns (contract_id, version). Unchanged rules
        reuse the stored version."""
        from sqlalchemy import select

        from loopml.store.models import Contract as ContractRow

        table = ContractRow.__table__
        contract_id = self.database.run_write(
            lambda conn: self._save_contract(conn, contract, name)
        )
        with self.database.read() as conn:
            version = conn.execute(
                select(table.c.version).where(table.c.contract_id == contract_id)
            ).scalar_one()
        return contract_id, int(version)

    def _save_contract(self, conn: Connection, contract: Contract, name: str) -> int:
        from sqlalchemy import func, insert, select

        from loopml.store.models import Contract as ContractRow

        table = cast("Table", ContractRow.__table__)
        contract_name = contract.name or name
        digest = contract.content_hash
        latest = conn.execute(
            select(table.c.contract_id, table.c.content_hash)
            .where(table.c.name == contract_name)
            .order_by(table.c.version.desc())
            .limit(1)
        ).first()
        if latest is not None and latest.content_hash == digest:
            return int(latest.contract_id)
        number = conn.execute(
            select(func.coalesce(func.max(table.c.version), 0)).where(table.c.name == contract_name)
        ).scalar_one()
        return int(
            conn.execute(
                insert(table)
                .values(
                    name=contract_name,
                    version=number + 1,
                    body=contract.to_yaml(),
                    content_hash=digest,
                    created_at=int(time.time() * 1000),
                )
                .returning(table.c.contract_id)
            ).scalar_one()
        )

    # -- reading ---------------------------------------------------------------------------

    def latest(self, name: str) -> DatasetVersionInfo | None:
        """The newest version of ``name``, or None if it has none."""
        found = self._query(name, None)
        return found[0] if found else None

    def get_version(self, ref: str) -> DatasetVersionInfo:
        """Resolve ``name@3`` / ``name@latest`` / ``name``; NotFoundError names what exists."""
        name, number = parse_ref(ref)
        found = self._query(name, number)
        if found:
            return found[0]
        existing = self._query(name, None, limit=None)
        if not existing:
            raise NotFoundError(
                f"dataset {name!r} does not exist",
                hint=f"ingest it first: loopml data ingest SOURCE --name {name}",
            )
        numbers = ", ".join(str(v.version) for v in reversed(existing))
        raise NotFoundError(
            f"dataset {name!r} has no version {number} (versions: {numbers})",
            hint=f"use one of those, or {name}@latest",
        )

    def versions(self, name: str) -> list[DatasetVersionInfo]:
        """Every version of ``name``, oldest first."""
        return list(reversed(self._query(name, None, limit=None)))

    def names(self) -> list[str]:
        from sqlalchemy import select

        from loopml.store.models import Dataset

        with self.database.read() as conn:
            return list(conn.execute(select(Dataset.__table__.c.name).order_by("name")).scalars())

    def read(
        self,
        ref: str,
        *,
        as_: Literal["pandas", "polars", "arrow"] = "pandas",
        columns: list[str] | None = None,
    ) -> Any:
        """The rows of one version (time travel to its Delta version) as pandas/polars/Arrow."""
        from deltalake import DeltaTable

        from loopml.data.delta import object_store_options

        info = self.get_version(ref)
        table = DeltaTable(
            info.table_uri,
            version=info.delta_version,
            storage_options=object_store_options(self.storage_options),
        )
        if columns:
            present = set(table.schema().to_arrow().names)
            unknown = [c for c in columns if c not in present]
            if unknown:
                raise InvalidInputError(
                    f"dataset {info.ref} has no column(s) {unknown}",
                    hint=f"its columns are: {', '.join(sorted(present))}",
                )
        import polars as pl

        lazy = pl.scan_parquet(
            ordered_files(table), storage_options=object_store_options(self.storage_options)
        )
        frame = lazy.select(columns).collect() if columns else lazy.collect()
        data = frame if as_ == "polars" else frame.to_arrow()
        return _convert(data, as_)

    def quarantine(self, ref: str, *, as_: Literal["pandas", "polars", "arrow"] = "pandas") -> Any:
        """Rows removed when ``ref`` was ingested: original values, ``_row``, ``_reason``."""
        return self._side(ref, "quarantine_uri", as_)

    def changes(self, ref: str, *, as_: Literal["pandas", "polars", "arrow"] = "pandas") -> Any:
        """Values cleaning changed in kept rows: row, key, column, old, new, reason."""
        return self._side(ref, "changes_uri", as_)

    def profile(self, ref: str) -> dict[str, Any]:
        """The stored per-column profile of ``ref``."""
        return dict(self.get_version(ref).profile or {})

    def validation(self, ref: str) -> dict[str, Any] | None:
        """The stored validation report of ``ref`` (None if it had no contract)."""
        import orjson

        uri = (self.get_version(ref).cleaning_summary or {}).get("validation_uri")
        if not uri:
            return None
        body: dict[str, Any] = orjson.loads(self._read_bytes(uri))
        return body

    def contract(self, ref: str) -> Contract | None:
        """The contract ``ref`` was checked against, if any."""
        from sqlalchemy import select

        from loopml.data.contract import Contract
        from loopml.store.models import Contract as ContractRow

        info = self.get_version(ref)
        if info.contract_id is None:
            return None
        with self.database.read() as conn:
            body = conn.execute(
                select(ContractRow.__table__.c.body).where(
                    ContractRow.__table__.c.contract_id == info.contract_id
                )
            ).scalar_one()
        return Contract.from_yaml(body)

    def report(self, ref: str) -> str:
        """The HTML data-quality report of ``ref``."""
        uri = (self.get_version(ref).cleaning_summary or {}).get("report_uri")
        if not uri:
            raise NotFoundError(f"dataset {ref} has no stored report", hint="ingest it again")
        return self._read_bytes(uri).decode("utf-8")

    def lineage(self, ref: str) -> list[DatasetVersionInfo]:
        """``ref`` and its ancestors (parent versions), newest first."""
        chain = [self.get_version(ref)]
        while chain[-1].parent_id is not None and len(chain) < 10_000:
            chain.append(self._by_id(chain[-1].parent_id))
        return chain

    def diff(self, ref_a: str, ref_b: str) -> dict[str, Any]:
        """How ``ref_b`` differs from ``ref_a``: schema, row counts, per-column statistics, and
        (when both share a contract key) keys added and removed."""
        from loopml.data.diff import diff_versions

        return diff_versions(self, self.get_version(ref_a), self.get_version(ref_b))

    # -- internals -------------------------------------------------------------------------

    def _side(self, ref: str, key: str, as_: str) -> Any:
        import pyarrow.parquet as pq

        info = self.get_version(ref)
        uri = (info.cleaning_summary or {}).get(key)
        if not uri:
            import pyarrow as pa

            if key == "changes_uri":
                from loopml.data.clean_engine import _empty_changes

                return _convert(_empty_changes().to_arrow(), as_)
            return _convert(
                pa.table({"_row": pa.array([], pa.int64()), "_reason": pa.array([], pa.string())}),
                as_,
            )
        import fsspec

        with fsspec.open(uri, "rb", **self.storage_options) as fh:
            return _convert(pq.read_table(fh), as_)

    def _read_bytes(self, uri: str) -> bytes:
        import fsspec

        with fsspec.open(uri, "rb", **self.storage_options) as fh:
            data: bytes = fh.read()
            return data

    def _query(
        self, name: str, number: int | None, *, limit: int | None = 1
    ) -> list[DatasetVersionInfo]:
        from sqlalchemy import select

        from loopml.store.models import Dataset, DatasetVersion

        d, v = Dataset.__table__, DatasetVersion.__table__
        query = (
            select(v, d.c.name).join(d, d.c.dataset_id == v.c.dataset_id).where(d.c.name == name)
        )
        if number is not None:
            query = query.where(v.c.version == number)
        query = query.order_by(v.c.version.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.database.read() as conn:
            return [_info(row) for row in conn.execute(query)]

    def _by_id(self, version_id: int) -> DatasetVersionInfo:
        from sqlalchemy import select

        from loopml.store.models import Dataset, DatasetVersion

        d, v = Dataset.__table__, DatasetVersion.__table__
        query = (
            select(v, d.c.name)
            .join(d, d.c.dataset_id == v.c.dataset_id)
            .where(v.c.id == version_id)
        )
        with self.database.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(
                f"dataset version id {version_id} does not exist", hint="list versions"
            )
        return _info(row)


def _info(row: Any) -> DatasetVersionInfo:
    m = row._mapping
    return DatasetVersionInfo(
        id=int(m["id"]),
        dataset=m["name"],
        version=int(m["version"]),
        uri=m["uri"],
        row_count=int(m["row_count"]),
        schema=m["schema"],
        content_hash=m["content_hash"],
        source=m["source"],
        contract_id=m["contract_id"],
        cleaning_summary=m["cleaning_summary"],
        profile=m["profile"],
        parent_id=m["parent_id"],
        run_id=m["run_id"],
        created_at=int(m["created_at"]),
    )


def ordered_files(table: Any) -> list[str]:
    """The version's data files in the order they were written, so rows read back in the
    order they were ingested (each write is one file; appends add later files)."""
    actions = table.get_add_actions(flatten=True)
    columns = {name: actions.column(name).to_pylist() for name in ("path", "modification_time")}
    written = dict(zip(columns["path"], columns["modification_time"], strict=True))
    uris = table.file_uris()

    def order(uri: str) -> tuple[int, str]:
        for path, when in written.items():
            if uri.endswith(path):
                return (when, uri)
        return (0, uri)

    return sorted(uris, key=order)


def _convert(table: Any, as_: str) -> Any:
    if as_ == "polars" and type(table).__module__.startswith("polars"):
        return table
    if as_ == "arrow":
        return table
    if as_ == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if as_ == "pandas":
        return table.to_pandas()
    raise InvalidInputError(
        f"as_={as_!r} is not a data frame kind", hint="use 'pandas', 'polars' or 'arrow'"
    )


def from_settings(settings: Settings) -> DatasetStore:
    """A store on the settings' metadata store and artifact root."""
    from loopml.store import Database

    return DatasetStore(Database(str(settings.store_uri)), str(settings.artifact_uri))
