"""The metadata schema: one SQLAlchemy table per record the loop keeps.

Times are integers, milliseconds since the Unix epoch (MLflow's convention), so they compare
and index the same way on SQLite and PostgreSQL. Changing anything here needs a new Alembic
revision under ``loopml/store/migrations/versions`` (``tests/store/test_migrations.py`` fails
when the two disagree).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_NAME_LENGTH = 256


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


# --- tracking -------------------------------------------------------------------------------


class Experiment(Base):
    __tablename__ = "experiments"

    experiment_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), unique=True)
    artifact_location: Mapped[str | None] = mapped_column(Text)
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class ExperimentTag(Base):
    __tablename__ = "experiment_tags"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index(None, "experiment_id", "start_time"),
        Index(None, "status", "heartbeat_at"),
        Index(None, "parent_run_id"),
    )

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.experiment_id"))
    name: Mapped[str | None] = mapped_column(String(MAX_NAME_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    start_time: Mapped[int] = mapped_column(BigInteger)
    end_time: Mapped[int | None] = mapped_column(BigInteger)
    # Refreshed by the logging process while the run is open; a RUNNING run whose heartbeat is
    # older than the timeout belongs to a dead process and is marked FAILED when next read.
    heartbeat_at: Mapped[int] = mapped_column(BigInteger)
    parent_run_id: Mapped[str | None] = mapped_column(
        ForeignKey("runs.run_id", ondelete="SET NULL")
    )
    user: Mapped[str | None] = mapped_column(String(MAX_NAME_LENGTH))
    source: Mapped[str | None] = mapped_column(Text)
    git_commit: Mapped[str | None] = mapped_column(String(64))
    git_dirty: Mapped[bool | None] = mapped_column(Boolean)
    environment: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    artifact_uri: Mapped[str | None] = mapped_column(Text)
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default="active")
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # Latest metric values, params and tags as one JSON document, kept in step with the
    # tables below inside the same transaction. Searches filter and sort on the indexed
    # tables but assemble their result rows from this column: one read per run instead of
    # one per key, which is what keeps search over 10,000 runs in milliseconds.
    summary: Mapped[str] = mapped_column(Text, default="{}")


class Param(Base):
    __tablename__ = "params"
    __table_args__ = (Index(None, "key"),)

    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Metric(Base):
    """Every logged value: the full history of each metric of each run."""

    __tablename__ = "metrics"
    __table_args__ = (Index(None, "run_id", "key", "step"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.run_id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    # SQLite cannot store NaN (it reads back as NULL), so NaN is a flag with value 0.
    value: Mapped[float] = mapped_column(Float(precision=53))
    is_nan: Mapped[bool] = mapped_column(Boolean, default=False)
    step: Mapped[int] = mapped_column(BigInteger, default=0)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class LatestMetric(Base):
    """The value at the highest (step, timestamp) of each metric; what searches compare."""

    __tablename__ = "latest_metrics"
    # Covering index for searches: a filter such as ``metrics.m0 > 0.5`` is answered from
    # the index alone (key, value range, NaN flag, run id) without visiting table rows.
    # The second serves "order by metrics.X": the sort key of each run is read from the
    # index alone instead of a primary-key lookup plus a table row.
    __table_args__ = (
        Index(None, "key", "value", "is_nan", "run_id"),
        Index(None, "run_id", "key", "is_nan", "value"),
    )

    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    value: Mapped[float] = mapped_column(Float(precision=53))
    is_nan: Mapped[bool] = mapped_column(Boolean, default=False)
    step: Mapped[int] = mapped_column(BigInteger, default=0)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (Index(None, "key"),)

    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Artifact(Base):
    """Index of a run's artifacts: logical path -> content-addressed blob."""

    __tablename__ = "artifacts"

    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)


# --- data -----------------------------------------------------------------------------------


class Dataset(Base):
    __tablename__ = "datasets"

    dataset_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Contract(Base):
    """A versioned validation contract (YAML text) for a dataset."""

    __tablename__ = "contracts"
    __table_args__ = (UniqueConstraint("name", "version"),)

    contract_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (
        UniqueConstraint("dataset_id", "version"),
        Index(None, "dataset_id", "content_hash"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.dataset_id"))
    version: Mapped[int] = mapped_column(Integer)
    uri: Mapped[str] = mapped_column(Text)
    row_count: Mapped[int] = mapped_column(BigInteger)
    schema: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    contract_id: Mapped[int | None] = mapped_column(ForeignKey("contracts.contract_id"))
    cleaning_summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_versions.id"))
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.run_id", ondelete="SET NULL"))
    created_at: Mapped[int] = mapped_column(BigInteger)


class RunInput(Base):
    """Which dataset versions a run read (the run -> data edge of lineage)."""

    __tablename__ = "run_inputs"

    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    )
    dataset_version_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id"), primary_key=True
    )
    context: Mapped[str] = mapped_column(String(32), primary_key=True, default="training")


# --- registry -------------------------------------------------------------------------------


class RegisteredModel(Base):
    __tablename__ = "registered_models"

    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class ModelVersion(Base):
    __tablename__ = "model_versions"

    name: Mapped[str] = mapped_column(
        ForeignKey("registered_models.name", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.run_id", ondelete="SET NULL"))
    artifact_uri: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(Text)
    lineage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="READY")
    created_by: Mapped[str | None] = mapped_column(String(MAX_NAME_LENGTH))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class ModelVersionTag(Base):
    __tablename__ = "model_version_tags"
    __table_args__ = (
        ForeignKeyConstraint(
            ["name", "version"],
            ["model_versions.name", "model_versions.version"],
            ondelete="CASCADE",
        ),
    )

    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ModelAlias(Base):
    __tablename__ = "model_aliases"
    __table_args__ = (
        ForeignKeyConstraint(
            ["name", "version"],
            ["model_versions.name", "model_versions.version"],
            ondelete="CASCADE",
        ),
    )

    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), primary_key=True)
    alias: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class Deployment(Base):
    """One served model of one running (or stopped) server: its targets and traffic policy.

    A server is a deployment ``name`` (``host:port`` unless configured) with one row per
    registered model it serves; every worker of the server polls its rows for traffic changes.
    """

    __tablename__ = "deployments"
    __table_args__ = (Index(None, "name", "model_name", unique=True),)

    deployment_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    model_name: Mapped[str] = mapped_column(ForeignKey("registered_models.name"))
    target: Mapped[str] = mapped_column(Text)
    traffic: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class AuditEvent(Base):
    """Append-only: rows are inserted with the change they describe, never updated."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(512))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
