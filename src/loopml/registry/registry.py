"""The model registry: versions, aliases, descriptions, tags, lineage — every change audited.

A version is registered from a run's artifact folder (``runs:/<run_id>/<path>``); the
registry never copies bytes, it points at content-addressed blobs the run already stored and
records the sha256 of the model file so a consumer can verify what it loads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInputError, NotFoundError
from loopml.registry import audit
from loopml.registry.entities import AuditEvent, ModelVersion, RegisteredModel
from loopml.registry.refs import ModelRef, check_alias, check_model_name, parse_ref

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from loopml.artifacts import ArtifactStore
    from loopml.config import Settings
    from loopml.store import Database

__all__ = ["ModelRegistry"]

# The file whose checksum identifies a packaged model, when the folder has one.
PRIMARY_FILES = ("model.onnx", "model.pkl")


class ModelRegistry:
    """Registered models and their versions in one metadata store."""

    def __init__(self, database: Database, artifacts: ArtifactStore) -> None:
        self.db = database
        self.artifacts = artifacts

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ModelRegistry:
        from loopml.artifacts import ArtifactStore
        from loopml.config import Settings
        from loopml.store import Database

        settings = settings or Settings.from_env()
        return cls(Database(str(settings.store_uri)), ArtifactStore(str(settings.artifact_uri)))

    # --- models ---------------------------------------------------------------------------------

    def create_model(
        self, name: str, description: str | None = None, *, actor: str | None = None
    ) -> RegisteredModel:
        from sqlalchemy import insert, select

        from loopml.store.models import RegisteredModel as ModelRow

        check_model_name(name)

        def work(conn: Connection) -> None:
            if conn.execute(select(ModelRow.name).where(ModelRow.name == name)).first():
                from loopml.errors import AlreadyExistsError

                raise AlreadyExistsError(
                    f"registered model {name!r} already exists",
                    hint=f"register a new version of it, or see `loopml models show {name}`",
                )
            now = _now()
            conn.execute(
                insert(ModelRow).values(
                    name=name, description=description, created_at=now, updated_at=now
                )
            )
            audit.record(
                conn,
                actor=_actor(actor),
                action="create_model",
                entity_type="model",
                entity_id=name,
                before=None,
                after={"description": description},
                at=now,
            )

        from sqlalchemy.exc import IntegrityError

        try:
            self.db.run_write(work)
        except IntegrityError as exc:  # a concurrent creator inserted it first
            from loopml.errors import AlreadyExistsError

            raise AlreadyExistsError(f"registered model {name!r} already exists") from exc
        return self.get_model(name)

    def get_model(self, name: str) -> RegisteredModel:
        with self.db.read() as conn:
            return self._model(conn, name)

    def list_models(self) -> list[RegisteredModel]:
        from sqlalchemy import select

        from loopml.store.models import RegisteredModel as ModelRow

        with self.db.read() as conn:
            names = conn.execute(select(ModelRow.name).order_by(ModelRow.name)).scalars().all()
            return [self._model(conn, n) for n in names]

    def set_model_description(
        self, name: str, description: str, *, actor: str | None = None
    ) -> None:
        from sqlalchemy import update

        from loopml.store.models import RegisteredModel as ModelRow

        def work(conn: Connection) -> None:
            before = self._model(conn, name)
            now = _now()
            conn.execute(
                update(ModelRow)
                .where(ModelRow.name == name)
                .values(description=description, updated_at=now)
            )
            audit.record(
                conn,
                actor=_actor(actor),
                action="set_model_description",
                entity_type="model",
                entity_id=name,
                before={"description": before.description},
                after={"description": description},
                at=now,
            )

        self.db.run_write(work)

    # --- versions -------------------------------------------------------------------------------

    def register_version(
        self,
        name: str,
        run_id: str,
        artifact_path: str,
        *,
        signature: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        description: str | None = None,
        lineage: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> ModelVersion:
        """Register the artifact folder ``artifact_path`` of run ``run_id`` as a new version.

        The registered model is created on first use. Lineage (run → dataset versions → code
        commit) is gathered from the run and merged with ``lineage``.
        """
        from sqlalchemy import func, insert, select

        from loopml.artifacts import check_artifact_path
        from loopml.store.models import (
            Artifact,
            Dataset,
            DatasetVersion,
            ModelVersionTag,
            Run,
            RunInput,
        )
        from loopml.store.models import ModelVersion as VersionRow
        from loopml.store.models import RegisteredModel as ModelRow

        check_model_name(name)
        folder = check_artifact_path(artifact_path)

        def work(conn: Connection) -> int:
            run = conn.execute(select(Run).where(Run.run_id == run_id)).first()
            if run is None:
                raise NotFoundError(
                    f"cannot register {name!r}: run {run_id!r} does not exist",
                    hint="log the model as an artifact of a run first",
                )
            files = conn.execute(
                select(Artifact.path, Artifact.sha256).where(
                    Artifact.run_id == run_id,
                    (Artifact.path == folder)
                    | Artifact.path.startswith(folder + "/", autoescape=True),
                )
            ).all()
            if not files:
                raise NotFoundError(
                    f"cannot register {name!r}: run {run_id} has no artifact at {folder!r}",
                    hint=f"log the model files under {folder!r} first "
                    f"(see `loopml runs show {run_id}`)",
                )
            sha = _primary_sha(folder, dict(files))
            now = _now()
            model_query = select(ModelRow.name).where(ModelRow.name == name)
            if conn.dialect.name == "postgresql":
                model_query = model_query.with_for_update()
            if conn.execute(model_query).first() is None:
                conn.execute(insert(ModelRow).values(name=name, created_at=now, updated_at=now))
                audit.record(
                    conn,
                    actor=_actor(actor),
                    action="create_model",
                    entity_type="model",
                    entity_id=name,
                    before=None,
                    after={},
                    at=now,
                )
                if conn.dialect.name == "postgresql":
                    conn.execute(model_query)
            version = (
                conn.execute(
                    select(func.max(VersionRow.version)).where(VersionRow.name == name)
                ).scalar()
                or 0
            ) + 1
            datasets = [
                {
                    "dataset": r.name,
                    "version": r.version,
                    "dataset_version_id": r.id,
                    "content_hash": r.content_hash,
                    "contract_id": r.contract_id,
                    "context": r.context,
                }
                for r in conn.execute(
                    select(
                        Dataset.name,
                        DatasetVersion.version,
                        DatasetVersion.id,
                        DatasetVersion.content_hash,
                        DatasetVersion.contract_id,
                        RunInput.context,
                    )
                    .join(DatasetVersion, DatasetVersion.id == RunInput.dataset_version_id)
                    .join(Dataset, Dataset.dataset_id == DatasetVersion.dataset_id)
                    .where(RunInput.run_id == run_id)
                )
            ]
            full_lineage = {
                "run_id": run_id,
                "experiment_id": str(run.experiment_id),
                "datasets": datasets,
                "code": {
                    "git_commit": run.git_commit,
                    "git_dirty": run.git_dirty,
                    "source": run.source,
                },
                "environment": run.environment,
                **dict(lineage or {}),
            }
            row = {
                "name": name,
                "version": version,
                "run_id": run_id,
                "artifact_uri": f"runs:/{run_id}/{folder}",
                "sha256": sha,
                "signature": dict(signature) if signature else None,
                "metrics": dict(metrics or {}),
                "description": description,
                "lineage": full_lineage,
                "status": "READY",
                "created_by": _actor(actor),
                "created_at": now,
                "updated_at": now,
            }
            conn.execute(insert(VersionRow).values(**row))
            if tags:
                conn.execute(
                    insert(ModelVersionTag),
                    [
                        {"name": name, "version": version, "key": str(k), "value": str(v)}
                        for k, v in tags.items()
                    ],
                )
            audit.record(
                conn,
                actor=_actor(actor),
                action="register_version",
                entity_type="model_version",
                entity_id=f"{name}:{version}",
                before=None,
                after={
                    "run_id": run_id,
                    "artifact_uri": row["artifact_uri"],
                    "sha256": sha,
                    "metrics": row["metrics"],
                },
                at=now,
            )
            return version

        from sqlalchemy.exc import IntegrityError

        try:
            version = self.db.run_write(work)
        except IntegrityError:
            # Another writer created the model or took the version number between our read
            # and our insert; the transaction rolled back whole, so trying again is safe.
            version = self.db.run_write(work)
        return self.get_version(name, version)

    def get_version(self, name: str, version: int | str) -> ModelVersion:
        with self.db.read() as conn:
            return self._version(conn, name, _version_number(name, version))

    def list_versions(self, name: str) -> list[ModelVersion]:
        from sqlalchemy import select

        from loopml.store.models import ModelVersion as VersionRow

        with self.db.read() as conn:
            self._model(conn, name)
            numbers = (
                conn.execute(
                    select(VersionRow.version)
                    .where(VersionRow.name == name)
                    .order_by(VersionRow.version)
                )
                .scalars()
                .all()
            )
            return [self._version(conn, name, n) for n in numbers]

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference points at: ``NAME@ALIAS``, ``NAME:VERSION`` or ``NAME``."""
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        if parsed.version is not None:
            return self.get_version(parsed.name, parsed.version)
        if parsed.alias is not None:
            aliases = self.aliases(parsed.name)
            if parsed.alias not in aliases:
                known = ", ".join(sorted(aliases)) or "none"
                raise NotFoundError(
                    f"model {parsed.name!r} has no alias {parsed.alias!r} (aliases: {known})",
                    hint=f"set it with `loopml models alias {parsed.name} {parsed.alias} VERSION`",
                )
            return self.get_version(parsed.name, aliases[parsed.alias])
        versions = self.list_versions(parsed.name)
        if not versions:
            raise NotFoundError(
                f"model {parsed.name!r} has no versions",
                hint="register one with `loopml run` or register_version()",
            )
        return versions[-1]

    def compare_versions(self, name: str, versions: Sequence[int]) -> dict[str, dict[int, Any]]:
        """Metrics of several versions side by side: ``{metric: {version: value}}``."""
        table: dict[str, dict[int, Any]] = {}
        for number in versions:
            mv = self.get_version(name, number)
            for key, value in mv.metrics.items():
                table.setdefault(key, {})[mv.version] = value
        return table

    def set_version_description(
        self, name: str, version: int, description: str, *, actor: str | None = None
    ) -> ModelVersion:
        from sqlalchemy import update

        from loopml.store.models import ModelVersion as VersionRow

        def work(conn: Connection) -> None:
            before = self._version(conn, name, _version_number(name, version))
            now = _now()
            conn.execute(
                update(VersionRow)
                .where(VersionRow.name == name, VersionRow.version == before.version)
                .values(description=description, updated_at=now)
            )
            audit.record(
                conn,
                actor=_actor(actor),
                action="set_version_description",
                entity_type="model_version",
                entity_id=before.ref,
                before={"description": before.description},
                after={"description": description},
                at=now,
            )

        self.db.run_write(work)
        return self.get_version(name, version)

    def set_version_tag(
        self, name: str, version: int, key: str, value: Any, *, actor: str | None = None
    ) -> None:
        from loopml.store.models import ModelVersionTag
        from loopml.tracking.store import _upsert
        from loopml.tracking.validation import check_key, tag_text

        check_key("tag", key)
        text = tag_text(key, value)

        def work(conn: Connection) -> None:
            before = self._version(conn, name, _version_number(name, version))
            now = _now()
            _upsert(
                conn,
                ModelVersionTag,
                [{"name": name, "version": before.version, "key": key, "value": text}],
                keys=("name", "version", "key"),
                update_cols=("value",),
            )
            audit.record(
                conn,
                actor=_actor(actor),
                action="set_version_tag",
                entity_type="model_version",
                entity_id=before.ref,
                before={key: before.tags.get(key)},
                after={key: text},
                at=now,
            )

        self.db.run_write(work)

    def delete_version_tag(
        self, name: str, version: int, key: str, *, actor: str | None = None
    ) -> None:
        from sqlalchemy import delete

        from loopml.store.models import ModelVersionTag

        def work(conn: Connection) -> None:
            before = self._version(conn, name, _version_number(name, version))
            if key not in before.tags:
                raise NotFoundError(f"model version {before.ref} has no tag {key!r}")
            conn.execute(
                delete(ModelVersionTag).where(
                    ModelVersionTag.name == name,
                    ModelVersionTag.version == before.version,
                    ModelVersionTag.key == key,
                )
            )
            audit.record(
                conn,
                actor=_actor(actor),
                action="delete_version_tag",
                entity_type="model_version",
                entity_id=before.ref,
                before={key: before.tags[key]},
                after=None,
                at=_now(),
            )

        self.db.run_write(work)

    # --- aliases --------------------------------------------------------------------------------

    def aliases(self, name: str) -> dict[str, int]:
        from sqlalchemy import select

        from loopml.store.models import ModelAlias

        with self.db.read() as conn:
            self._model(conn, name)
            return dict(
                conn.execute(
                    select(ModelAlias.alias, ModelAlias.version).where(ModelAlias.name == name)
                ).all()
            )

    def set_alias(
        self, name: str, alias: str, version: int | str, *, actor: str | None = None
    ) -> ModelVersion:
        """Point ``alias`` at ``version``, creating or moving it in one transaction."""
        from loopml.store.models import ModelAlias
        from loopml.tracking.store import _upsert

        check_alias(alias)
        number = _version_number(name, version)

        def work(conn: Connection) -> None:
            from sqlalchemy import select

            self._version(conn, name, number)  # must exist
            previous = conn.execute(
                select(ModelAlias.version).where(ModelAlias.name == name, ModelAlias.alias == alias)
            ).scalar()
            if previous == number:
                return  # already there: nothing changes, so nothing to audit
            now = _now()
            _upsert(
                conn,
                ModelAlias,
                [{"name": name, "alias": alias, "version": number, "updated_at": now}],
                keys=("name", "alias"),
                update_cols=("version", "updated_at"),
            )
            audit.record(
                conn,
                actor=_actor(actor),
                action="move_alias" if previous is not None else "set_alias",
                entity_type="alias",
                entity_id=f"{name}@{alias}",
                before=None if previous is None else {"version": previous},
                after={"version": number},
                at=now,
            )

        self.db.run_write(work)
        return self.get_version(name, number)

    def delete_alias(self, name: str, alias: str, *, actor: str | None = None) -> None:
        from sqlalchemy import delete, select

        from loopml.store.models import ModelAlias

        def work(conn: Connection) -> None:
            previous = conn.execute(
                select(ModelAlias.version).where(ModelAlias.name == name, ModelAlias.alias == alias)
            ).scalar()
            if previous is None:
                self._model(conn, name)
                raise NotFoundError(
                    f"model {name!r} has no alias {alias!r}",
                    hint=f"see its aliases with `loopml models show {name}`",
                )
            conn.execute(
                delete(ModelAlias).where(ModelAlias.name == name, ModelAlias.alias == alias)
            )
            audit.record(
                conn,
                actor=_actor(actor),
                action="delete_alias",
                entity_type="alias",
                entity_id=f"{name}@{alias}",
                before={"version": previous},
                after=None,
                at=_now(),
            )

        self.db.run_write(work)

    # --- lineage, history, artifacts -----------------------------------------------------------

    def lineage(self, ref: str) -> dict[str, Any]:
        """Version → run (params, metrics) → dataset versions → code commit."""
        from loopml.tracking.store import TrackingStore

        mv = self.resolve(ref)
        result: dict[str, Any] = {
            "model": {
                "name": mv.name,
                "version": mv.version,
                "sha256": mv.sha256,
                "artifact_uri": mv.artifact_uri,
            },
            "lineage": mv.lineage,
        }
        if mv.run_id:
            run = TrackingStore(self.db).get_run(mv.run_id)
            result["run"] = {
                "run_id": run.info.run_id,
                "experiment_id": run.info.experiment_id,
                "status": run.info.status,
                "params": run.data.params,
                "metrics": run.data.metrics,
                "git_commit": run.info.git_commit,
                "git_dirty": run.info.git_dirty,
            }
            result["datasets"] = run.inputs
            result["code"] = {"git_commit": run.info.git_commit, "git_dirty": run.info.git_dirty}
        return result

    def history(self, name: str, *, limit: int = 1000) -> list[AuditEvent]:
        """Audit events for the model, its versions and aliases, newest first."""
        with self.db.read() as conn:
            self._model(conn, name)
            return audit.events(conn, entity_prefix=name, limit=limit)

    def read_artifact(self, name: str, version: int | str, relative_path: str) -> bytes:
        """Bytes of a file inside a version's artifact folder, checksum-verified."""
        from sqlalchemy import select

        from loopml.artifacts import check_artifact_path
        from loopml.store.models import Artifact

        mv = self.get_version(name, version)
        path = check_artifact_path(
            f"{mv.artifact_path}/{relative_path}" if mv.artifact_path else relative_path
        )
        with self.db.read() as conn:
            sha = conn.execute(
                select(Artifact.sha256).where(Artifact.run_id == mv.run_id, Artifact.path == path)
            ).scalar()
        if sha is None:
            raise NotFoundError(
                f"model version {mv.ref} has no file {relative_path!r}",
                hint=f"its files live under {mv.artifact_uri}",
            )
        return self.artifacts.get_bytes(sha)

    # --- row mapping ----------------------------------------------------------------------------

    def _model(self, conn: Connection, name: str) -> RegisteredModel:
        from sqlalchemy import func, select

        from loopml.store.models import ModelAlias
        from loopml.store.models import ModelVersion as VersionRow
        from loopml.store.models import RegisteredModel as ModelRow

        row = conn.execute(select(ModelRow).where(ModelRow.name == name)).first()
        if row is None:
            raise NotFoundError(
                f"registered model {name!r} does not exist",
                hint="list models with `loopml models list`",
            )
        latest = conn.execute(
            select(func.max(VersionRow.version)).where(VersionRow.name == name)
        ).scalar()
        aliases = dict(
            conn.execute(
                select(ModelAlias.alias, ModelAlias.version).where(ModelAlias.name == name)
            ).all()
        )
        return RegisteredModel(
            name=row.name,
            description=row.description,
            created_at=row.created_at,
            updated_at=row.updated_at,
            latest_version=latest,
            aliases=aliases,
        )

    def _version(self, conn: Connection, name: str, version: int) -> ModelVersion:
        from sqlalchemy import select

        from loopml.store.models import ModelAlias, ModelVersionTag
        from loopml.store.models import ModelVersion as VersionRow

        row = conn.execute(
            select(VersionRow).where(VersionRow.name == name, VersionRow.version == version)
        ).first()
        if row is None:
            self._model(conn, name)
            raise NotFoundError(
                f"model {name!r} has no version {version}",
                hint=f"list versions with `loopml models show {name}`",
            )
        tags = dict(
            conn.execute(
                select(ModelVersionTag.key, ModelVersionTag.value).where(
                    ModelVersionTag.name == name, ModelVersionTag.version == version
                )
            ).all()
        )
        aliases = tuple(
            sorted(
                conn.execute(
                    select(ModelAlias.alias).where(
                        ModelAlias.name == name, ModelAlias.version == version
                    )
                ).scalars()
            )
        )
        return ModelVersion(
            name=row.name,
            version=row.version,
            run_id=row.run_id,
            artifact_uri=row.artifact_uri,
            sha256=row.sha256,
            signature=row.signature,
            metrics=row.metrics or {},
            description=row.description,
            lineage=row.lineage or {},
            status=row.status,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            tags=tags,
            aliases=aliases,
        )


def _primary_sha(folder: str, files: dict[str, str]) -> str | None:
    if folder in files:  # a single file was registered
        return files[folder]
    for name in PRIMARY_FILES:
        if f"{folder}/{name}" in files:
            return files[f"{folder}/{name}"]
    return None


def _version_number(name: str, version: int | str) -> int:
    try:
        number = int(version)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise InvalidInputError(
            f"version {version!r} of model {name!r} is not a positive integer",
            hint="versions are numbered 1, 2, 3...",
        )
    return number


def _now() -> int:
    from loopml.tracking.store import now_ms

    return now_ms()


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    from loopml.tracking.environment import current_user

    return current_user()
