"""Reading and writing tracking records in the metadata store.

:class:`TrackingStore` is the only code that knows how runs, params, metrics and tags sit in
the tables. Every write of run data goes through :meth:`TrackingStore.log_batch`, which keeps
the history table, the ``latest_metrics`` table and the run's ``summary`` document in step
within one transaction.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from loopml.errors import AlreadyExistsError, ConflictError, InvalidInputError, NotFoundError
from loopml.tracking.entities import Experiment, Metric, Run, RunData, RunInfo, RunStatus
from loopml.tracking.statements import HotCursor
from loopml.tracking.statements import upsert as _upsert
from loopml.tracking.validation import decode_metric, encode_metric

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from loopml.store import Database

__all__ = ["DEFAULT_EXPERIMENT", "MetricRecord", "TrackingStore", "now_ms"]

DEFAULT_EXPERIMENT = "Default"

# (key, value, timestamp ms, step) — tuples, because batches of 10,000 are normal.
MetricRecord = tuple[str, float, int, int]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class TrackingStore:
    """Experiments, runs and their data over a :class:`~loopml.store.Database`."""

    def __init__(self, database: Database, *, heartbeat_timeout: float = 120.0) -> None:
        self.db = database
        self.heartbeat_timeout = heartbeat_timeout

    # --- experiments ------------------------------------------------------------------------

    def create_experiment(
        self,
        name: str,
        *,
        artifact_location: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        from sqlalchemy import insert, select
        from sqlalchemy.exc import IntegrityError

        from loopml.store.models import Experiment as ExperimentRow
        from loopml.store.models import ExperimentTag

        def work(conn: Connection) -> str:
            taken = conn.execute(
                select(ExperimentRow.experiment_id).where(ExperimentRow.name == name)
            ).first()
            if taken is not None:
                raise AlreadyExistsError(
                    f"experiment {name!r} already exists (id {taken[0]})",
                    hint="use set_experiment(name) to log into it, or pick another name",
                )
            now = now_ms()
            experiment_id = conn.execute(
                insert(ExperimentRow)
                .values(
                    name=name,
                    artifact_location=artifact_location,
                    lifecycle_stage="active",
                    created_at=now,
                    updated_at=now,
                )
                .returning(ExperimentRow.experiment_id)
            ).scalar_one()
            if tags:
                conn.execute(
                    insert(ExperimentTag),
                    [
                        {"experiment_id": experiment_id, "key": k, "value": v}
                        for k, v in tags.items()
                    ],
                )
            return str(experiment_id)

        try:
            return self.db.run_write(work)
        except IntegrityError as exc:  # a concurrent creator won the race
            raise AlreadyExistsError(f"experiment {name!r} already exists") from exc

    def get_or_create_experiment(self, name: str) -> str:
        existing = self.find_experiment(name)
        if existing is not None:
            if existing.lifecycle_stage != "active":
                raise ConflictError(
                    f"experiment {name!r} is deleted",
                    hint="restore it or choose another experiment name",
                )
            return existing.experiment_id
        try:
            return self.create_experiment(name)
        except AlreadyExistsError:
            found = self.find_experiment(name)
            assert found is not None
            return found.experiment_id

    def find_experiment(self, name: str) -> Experiment | None:
        from sqlalchemy import select

        from loopml.store.models import Experiment as ExperimentRow

        with self.db.read() as conn:
            row = conn.execute(select(ExperimentRow).where(ExperimentRow.name == name)).first()
            return None if row is None else self._experiment(conn, row)

    def get_experiment(self, experiment_id: str | int) -> Experiment:
        from sqlalchemy import select

        from loopml.store.models import Experiment as ExperimentRow

        with self.db.read() as conn:
            row = conn.execute(
                select(ExperimentRow).where(
                    ExperimentRow.experiment_id == _experiment_key(experiment_id)
                )
            ).first()
            if row is None:
                raise NotFoundError(
                    f"experiment id {experiment_id!r} does not exist",
                    hint="list experiments with `loopml experiments`",
                )
            return self._experiment(conn, row)

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        from sqlalchemy import select

        from loopml.store.models import Experiment as ExperimentRow

        query = select(ExperimentRow).order_by(ExperimentRow.experiment_id)
        if not include_deleted:
            query = query.where(ExperimentRow.lifecycle_stage == "active")
        with self.db.read() as conn:
            return [self._experiment(conn, row) for row in conn.execute(query)]

    def set_experiment_lifecycle(self, experiment_id: str, stage: str) -> None:
        from sqlalchemy import update

        from loopml.store.models import Experiment as ExperimentRow

        self.get_experiment(experiment_id)
        self.db.run_write(
            lambda conn: conn.execute(
                update(ExperimentRow)
                .where(ExperimentRow.experiment_id == _experiment_key(experiment_id))
                .values(lifecycle_stage=stage, updated_at=now_ms())
            )
        )

    def _experiment(self, conn: Connection, row: Any) -> Experiment:
        from sqlalchemy import select

        from loopml.store.models import ExperimentTag

        tags = dict(
            conn.execute(
                select(ExperimentTag.key, ExperimentTag.value).where(
                    ExperimentTag.experiment_id == row.experiment_id
                )
            ).all()
        )
        return Experiment(
            experiment_id=str(row.experiment_id),
            name=row.name,
            artifact_location=row.artifact_location,
            lifecycle_stage=row.lifecycle_stage,
            creation_time=row.created_at,
            last_update_time=row.updated_at,
            tags=tags,
        )

    # --- runs -------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        *,
        run_name: str | None = None,
        start_time: int | None = None,
        parent_run_id: str | None = None,
        user: str | None = None,
        source: str | None = None,
        git_commit: str | None = None,
        git_dirty: bool | None = None,
        environment: dict[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        """Insert a RUNNING run and return it as written.

        The experiment (and parent run) are checked inside the write transaction, and the
        result is built from the values written rather than read back: starting a run is on
        the hot path of every training loop, and each extra transaction costs more than the
        insert itself.
        """
        run_id = uuid.uuid4().hex
        start = start_time if start_time is not None else now_ms()
        summary = orjson.dumps({"metrics": {}, "params": {}, "tags": dict(tags or {})}).decode()
        experiment_key = _experiment_key(experiment_id)

        def work(conn: Connection) -> None:
            sql = HotCursor(conn)
            if not sql.experiment_exists(experiment_key):
                raise NotFoundError(
                    f"experiment id {experiment_id!r} does not exist",
                    hint="list experiments with `loopml experiments`",
                )
            if parent_run_id is not None and not sql.run_exists(parent_run_id):
                raise NotFoundError(
                    f"run {parent_run_id!r} does not exist",
                    hint="list runs with `loopml runs list`",
                )
            sql.insert_run(
                {
                    "run_id": run_id,
                    "experiment_id": experiment_key,
                    "name": run_name,
                    "status": RunStatus.RUNNING,
                    "start_time": start,
                    "heartbeat_at": start,
                    "parent_run_id": parent_run_id,
                    "user": user,
                    "source": source,
                    "git_commit": git_commit,
                    "git_dirty": git_dirty,
                    "environment": environment,
                    "artifact_uri": f"runs:/{run_id}",
                    "lifecycle_stage": "active",
                    "summary": summary,
                }
            )
            if tags:
                sql.upsert_tags(run_id, tags)

        self.db.run_write(work)
        info = RunInfo(
            run_id=run_id,
            experiment_id=str(experiment_key),
            run_name=run_name,
            status=RunStatus.RUNNING,
            start_time=start,
            end_time=None,
            user_id=user,
            artifact_uri=f"runs:/{run_id}",
            lifecycle_stage="active",
            parent_run_id=parent_run_id,
            git_commit=git_commit,
            git_dirty=git_dirty,
            source=source,
            environment=environment,
            failure_reason=None,
            heartbeat_at=start,
        )
        return Run(info=info, data=run_data(summary))

    def get_run_info(self, run_id: str) -> RunInfo:
        return self.get_run(run_id).info

    def get_run(self, run_id: str) -> Run:
        from sqlalchemy import select

        from loopml.store.models import DatasetVersion, RunInput
        from loopml.store.models import Run as RunRow

        self.reap_stale_runs()
        with self.db.read() as conn:
            row = conn.execute(select(RunRow).where(RunRow.run_id == run_id)).first()
            if row is None:
                raise NotFoundError(
                    f"run {run_id!r} does not exist",
                    hint="list runs with `loopml runs list`",
                )
            inputs = [
                {
                    "dataset_version_id": r.dataset_version_id,
                    "context": r.context,
                    "uri": r.uri,
                    "version": r.version,
                    "content_hash": r.content_hash,
                }
                for r in conn.execute(
                    select(
                        RunInput.dataset_version_id,
                        RunInput.context,
                        DatasetVersion.uri,
                        DatasetVersion.version,
                        DatasetVersion.content_hash,
                    )
                    .join(DatasetVersion, DatasetVersion.id == RunInput.dataset_version_id)
                    .where(RunInput.run_id == run_id)
                )
            ]
        return Run(info=run_info(row), data=run_data(row.summary), inputs=inputs)

    def update_run(
        self,
        run_id: str,
        *,
        status: str,
        end_time: int | None = None,
        failure_reason: str | None = None,
    ) -> None:
        from sqlalchemy import update

        from loopml.store.models import Run as RunRow

        if status not in RunStatus.ALL:
            raise InvalidInputError(
                f"run status {status!r} is not one of {', '.join(RunStatus.ALL)}",
                hint="use FINISHED, FAILED or KILLED to end a run",
            )
        values: dict[str, Any] = {"status": status, "heartbeat_at": now_ms()}
        if status in RunStatus.TERMINAL:
            values["end_time"] = end_time if end_time is not None else now_ms()
        if failure_reason is not None:
            values["failure_reason"] = failure_reason[:4000]

        def work(conn: Connection) -> None:
            done = conn.execute(update(RunRow).where(RunRow.run_id == run_id).values(**values))
            if done.rowcount == 0:
                raise NotFoundError(f"run {run_id!r} does not exist")

        self.db.run_write(work)

    def set_run_lifecycle(self, run_id: str, stage: str) -> None:
        from sqlalchemy import update

        from loopml.store.models import Run as RunRow

        def work(conn: Connection) -> None:
            done = conn.execute(
                update(RunRow).where(RunRow.run_id == run_id).values(lifecycle_stage=stage)
            )
            if done.rowcount == 0:
                raise NotFoundError(f"run {run_id!r} does not exist")

        self.db.run_write(work)

    def heartbeat(self, run_ids: Iterable[str]) -> None:
        """Mark runs as alive; called periodically by the process that owns them."""
        from sqlalchemy import update

        from loopml.store.models import Run as RunRow

        ids = list(run_ids)
        if ids:
            self.db.run_write(
                lambda conn: conn.execute(
                    update(RunRow)
                    .where(RunRow.run_id.in_(ids), RunRow.status == RunStatus.RUNNING)
                    .values(heartbeat_at=now_ms())
                )
            )

    def reap_stale_runs(self) -> int:
        """Mark RUNNING runs whose heartbeat stopped more than the timeout ago as FAILED.

        A process killed with SIGKILL cannot end its run; this is how such a run stops
        showing as RUNNING forever. Returns how many runs were marked.
        """
        from sqlalchemy import exists, select, update

        from loopml.store.models import Run as RunRow

        cutoff = now_ms() - int(self.heartbeat_timeout * 1000)
        stale = (RunRow.status == RunStatus.RUNNING) & (RunRow.heartbeat_at < cutoff)
        with self.db.read() as conn:
            if not conn.execute(select(exists().where(stale))).scalar():
                return 0
        return self.db.run_write(
            lambda conn: (
                conn.execute(
                    update(RunRow)
                    .where(stale)
                    .values(
                        status=RunStatus.FAILED,
                        end_time=RunRow.heartbeat_at,
                        failure_reason=(
                            "stale: no heartbeat for more than "
                            f"{self.heartbeat_timeout:g} s (the logging process died)"
                        ),
                    )
                ).rowcount
            )
        )

    # --- run data ---------------------------------------------------------------------------

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[MetricRecord] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        end: tuple[str, int | None] | None = None,
    ) -> None:
        """Write metrics, params and tags of one run in one transaction.

        ``end=(status, end_time)`` also closes the run in the same transaction, which is
        how ``end_run`` flushes buffered values and finishes with a single commit.
        """
        self.db.run_write(
            lambda conn: self._log_batch(conn, run_id, metrics, params or {}, tags or {}, end)
        )

    def log_batches(
        self,
        batches: Mapping[str, tuple[Sequence[MetricRecord], Mapping[str, str], Mapping[str, str]]],
    ) -> None:
        """Write buffered data of several runs in one transaction (the writer's flush)."""

        def work(conn: Connection) -> None:
            for run_id, (metrics, params, tags) in batches.items():
                self._log_batch(conn, run_id, metrics, params, tags, None)

        self.db.run_write(work)

    def _log_batch(
        self,
        conn: Connection,
        run_id: str,
        metrics: Sequence[MetricRecord],
        params: Mapping[str, str],
        tags: Mapping[str, str],
        end: tuple[str, int | None] | None,
    ) -> None:
        sql = HotCursor(conn)
        row = sql.run_summary(run_id)
        if row is None:
            raise NotFoundError(
                f"run {run_id!r} does not exist", hint="create it with start_run or create_run"
            )
        summary = orjson.loads(row[0])
        now = now_ms()

        if params:
            existing = sql.params_of(run_id, list(params))
            for key, text in params.items():
                if key in existing and existing[key] != text:
                    raise ConflictError(
                        f"param {key!r} of run {run_id} was already logged with value "
                        f"{existing[key]!r}; it cannot change to {text!r}",
                        hint="params are immutable once logged; log a metric or tag instead, "
                        "or start a new run",
                    )
            sql.insert_params(run_id, [(k, v) for k, v in params.items() if k not in existing])
            summary["params"].update(params)

        if tags:
            sql.upsert_tags(run_id, tags)
            summary["tags"].update(tags)

        if metrics:
            rows = []
            latest: dict[str, MetricRecord] = {}
            for record in metrics:
                key, value, timestamp, step = record
                nan = value != value
                rows.append((run_id, key, 0.0 if nan else value, nan, step, timestamp))
                best = latest.get(key)
                if best is None or (step, timestamp) >= (best[3], best[2]):
                    latest[key] = record
            sql.insert_metrics(rows)
            current = sql.latest_of(run_id, list(latest))
            changed = []
            for key, (_, value, timestamp, step) in latest.items():
                if key in current and (step, timestamp) < current[key]:
                    continue
                nan = value != value
                changed.append((run_id, key, 0.0 if nan else value, nan, step, timestamp))
                summary["metrics"][key] = encode_metric(value)
            sql.upsert_latest(changed)

        closing = None
        if end is not None:
            status, end_time = end
            closing = (status, end_time if end_time is not None else now)
        sql.update_run(run_id, orjson.dumps(summary).decode(), now, closing)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        from sqlalchemy import select

        from loopml.store.models import Metric as MetricRow

        self.get_run_info(run_id)
        with self.db.read() as conn:
            rows = conn.execute(
                select(MetricRow.value, MetricRow.is_nan, MetricRow.timestamp, MetricRow.step)
                .where(MetricRow.run_id == run_id, MetricRow.key == key)
                .order_by(MetricRow.step, MetricRow.timestamp, MetricRow.id)
            ).all()
        return [
            Metric(
                key=key,
                value=float("nan") if r.is_nan else r.value,
                timestamp=r.timestamp,
                step=r.step,
            )
            for r in rows
        ]

    def log_inputs(self, run_id: str, dataset_version_ids: Sequence[int], context: str) -> None:
        from loopml.store.models import RunInput

        rows = [
            {"run_id": run_id, "dataset_version_id": i, "context": context}
            for i in dataset_version_ids
        ]
        self.db.run_write(
            lambda conn: _upsert(
                conn,
                RunInput,
                rows,
                keys=("run_id", "dataset_version_id", "context"),
                update_cols=(),
            )
        )

    # --- artifacts index --------------------------------------------------------------------

    def index_artifact(self, run_id: str, path: str, sha256: str, size: int) -> None:
        from loopml.store.models import Artifact

        self.get_run_info(run_id)
        row = {
            "run_id": run_id,
            "path": path,
            "sha256": sha256,
            "size": size,
            "created_at": now_ms(),
        }
        self.db.run_write(
            lambda conn: _upsert(
                conn,
                Artifact,
                [row],
                keys=("run_id", "path"),
                update_cols=("sha256", "size", "created_at"),
            )
        )

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[tuple[str, str, int]]:
        """(path, sha256, size) of the run's artifacts under ``prefix``."""
        from sqlalchemy import select

        from loopml.store.models import Artifact

        query = select(Artifact.path, Artifact.sha256, Artifact.size).where(
            Artifact.run_id == run_id
        )
        if prefix:
            base = prefix.rstrip("/")
            query = query.where(
                (Artifact.path == base) | Artifact.path.startswith(base + "/", autoescape=True)
            )
        with self.db.read() as conn:
            return [tuple(r) for r in conn.execute(query.order_by(Artifact.path))]  # type: ignore[misc]


def run_info(row: Any) -> RunInfo:
    return RunInfo(
        run_id=row.run_id,
        experiment_id=str(row.experiment_id),
        run_name=row.name,
        status=row.status,
        start_time=row.start_time,
        end_time=row.end_time,
        user_id=row.user,
        artifact_uri=row.artifact_uri,
        lifecycle_stage=row.lifecycle_stage,
        parent_run_id=row.parent_run_id,
        git_commit=getattr(row, "git_commit", None),
        git_dirty=getattr(row, "git_dirty", None),
        source=getattr(row, "source", None),
        environment=getattr(row, "environment", None),
        failure_reason=getattr(row, "failure_reason", None),
        heartbeat_at=getattr(row, "heartbeat_at", None),
    )


def run_data(summary_json: str) -> RunData:
    summary = orjson.loads(summary_json)
    return RunData(
        metrics={k: decode_metric(v) for k, v in summary["metrics"].items()},
        params=summary["params"],
        tags=summary["tags"],
    )


def _experiment_key(experiment_id: str | int) -> int:
    try:
        return int(experiment_id)
    except (TypeError, ValueError):
        raise NotFoundError(
            f"experiment id {experiment_id!r} does not exist (ids are integers)",
            hint="list experiments with `loopml experiments`",
        ) from None
