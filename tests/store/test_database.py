"""The metadata store: schema on first use, migrations, and both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from loopml.errors import BackendUnavailableError, ConflictError
from loopml.store import Database
from loopml.store.migrations import HEAD, KNOWN_REVISIONS, alembic_config, current_revision, upgrade


def revision_of(db: Database) -> str | None:
    with db.read() as conn:
        return current_revision(conn)


def test_constructing_a_database_does_no_io(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "never.db"
    Database(f"sqlite:///{path}")
    assert not path.exists()
    assert not path.parent.exists()


def test_schema_is_created_on_first_use_at_the_head_revision(empty_store_uri: str) -> None:
    db = Database(empty_store_uri)
    assert revision_of(db) == HEAD
    with db.read() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {
        "experiments",
        "runs",
        "metrics",
        "params",
        "tags",
        "artifacts",
        "datasets",
        "dataset_versions",
        "registered_models",
        "model_versions",
        "model_aliases",
        "deployments",
        "audit_log",
        "latest_metrics",
        "run_inputs",
    } <= tables
    db.dispose()


def test_upgrade_is_idempotent_and_keeps_data(empty_store_uri: str) -> None:
    db = Database(empty_store_uri)
    with db.write() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO experiments (name, lifecycle_stage, created_at, "
                "updated_at) VALUES ('kept', 'active', 1, 1)"
            )
        )
    upgrade(db.engine)
    upgrade(db.engine)
    again = Database(empty_store_uri)
    with again.read() as conn:
        names = conn.execute(sa.text("SELECT name FROM experiments")).scalars().all()
    assert names == ["kept"]
    assert revision_of(again) == HEAD
    db.dispose()
    again.dispose()


@pytest.mark.parametrize("older", KNOWN_REVISIONS[:-1] or ["base"])
def test_a_store_made_by_an_older_schema_is_upgraded_never_recreated(
    empty_store_uri: str, older: str
) -> None:
    from alembic import command

    engine = sa.create_engine(empty_store_uri)
    with engine.connect() as conn, conn.begin():
        command.upgrade(alembic_config(conn), older)
        conn.execute(sa.text("CREATE TABLE user_notes (note TEXT)"))
        conn.execute(sa.text("INSERT INTO user_notes VALUES ('mine')"))
        if older != "base":
            conn.execute(
                sa.text(
                    "INSERT INTO experiments (name, lifecycle_stage, created_at, "
                    "updated_at) VALUES ('old', 'active', 1, 1)"
                )
            )
    engine.dispose()

    db = Database(empty_store_uri)
    assert revision_of(db) == HEAD
    with db.read() as conn:
        assert conn.execute(sa.text("SELECT note FROM user_notes")).scalar() == "mine"
        if older != "base":
            assert conn.execute(sa.text("SELECT name FROM experiments")).scalar() == "old"
    db.dispose()


def test_a_store_from_a_newer_loopml_is_refused_and_left_alone(empty_store_uri: str) -> None:
    db = Database(empty_store_uri)
    with db.write() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    db.dispose()
    with pytest.raises(ConflictError, match="newer than this loopml knows"):
        Database(empty_store_uri).engine  # noqa: B018
    raw = sa.create_engine(empty_store_uri)
    with raw.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "9999"
    raw.dispose()


def test_head_constant_matches_the_migration_scripts() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_current_head() == HEAD
    assert [r.revision for r in reversed(list(script.walk_revisions()))] == list(KNOWN_REVISIONS)


def test_models_and_migrations_describe_the_same_schema(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from loopml.store.models import Base

    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    with db.read() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'w.db'}")
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()


def test_an_unreachable_postgres_server_gives_a_clear_error() -> None:
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(BackendUnavailableError, match=r"cannot be used") as info, db.read():
        pass
    assert "LOOPML_STORE_URI" in (info.value.hint or "")


def test_messages_never_show_the_database_password() -> None:
    db = Database("postgresql+psycopg://user:s3cret@127.0.0.1:1/none")
    with pytest.raises(BackendUnavailableError) as info, db.read():
        pass
    assert "s3cret" not in str(info.value)
