"""The model registry: versions, aliases, lineage and the audit log, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from loopml import Client
from loopml.config import Settings
from loopml.errors import InvalidInputError, NotFoundError
from loopml.registry import ModelRegistry, parse_ref


@pytest.fixture
def registry(settings: Settings) -> Iterator[ModelRegistry]:
    registry = ModelRegistry.from_settings(settings)
    yield registry
    registry.db.dispose()


@pytest.fixture
def model_run(client: Client, tmp_path: Path) -> str:
    """A finished run with a model folder (model.onnx + a card) among its artifacts."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"onnx-bytes")
    (folder / "model_card.json").write_text('{"task": "regression"}')
    run = client.create_run(None, run_name="train")
    client.log_artifacts(run.info.run_id, folder, "model")
    client.log_batch(run.info.run_id, params={"alpha": 1})
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_registering_a_run_artifact_creates_numbered_versions(
    registry: ModelRegistry, model_run: str
) -> None:
    first = registry.register_version(
        "churn",
        model_run,
        "model",
        metrics={"rmse": 0.5},
        description="first",
        tags={"owner": "risk"},
    )
    second = registry.register_version("churn", model_run, "model", metrics={"rmse": 0.4})
    assert (first.version, second.version) == (1, 2)
    assert first.artifact_uri == f"runs:/{model_run}/model"
    import hashlib

    assert first.sha256 == hashlib.sha256(b"onnx-bytes").hexdigest()
    assert first.tags == {"owner": "risk"}
    assert [v.version for v in registry.list_versions("churn")] == [1, 2]
    assert registry.get_model("churn").latest_version == 2
    assert registry.read_artifact("churn", 1, "model.onnx") == b"onnx-bytes"
    assert registry.compare_versions("churn", [1, 2]) == {"rmse": {1: 0.5, 2: 0.4}}


def test_registering_from_a_missing_run_or_artifact_names_what_is_missing(
    registry: ModelRegistry, model_run: str
) -> None:
    with pytest.raises(NotFoundError, match="run 'nope' does not exist"):
        registry.register_version("churn", "nope", "model")
    with pytest.raises(NotFoundError, match="has no artifact at 'weights'"):
        registry.register_version("churn", model_run, "weights")
    with pytest.raises(InvalidInputError):
        registry.register_version("churn", model_run, "../model")
    with pytest.raises(NotFoundError):
        registry.get_model("churn")  # nothing half-created


def test_aliases_are_set_moved_and_deleted(registry: ModelRegistry, model_run: str) -> None:
    for _ in range(3):
        registry.register_version("churn", model_run, "model")
    registry.set_alias("churn", "champion", 1)
    registry.set_alias("churn", "challenger", 2)
    assert registry.aliases("churn") == {"champion": 1, "challenger": 2}
    registry.set_alias("churn", "champion", 3)
    assert registry.resolve("churn@champion").version == 3
    assert registry.get_version("churn", 3).aliases == ("champion",)
    registry.delete_alias("churn", "challenger")
    assert registry.aliases("churn") == {"champion": 3}
    with pytest.raises(NotFoundError, match="no alias 'challenger'"):
        registry.resolve("churn@challenger")
    with pytest.raises(NotFoundError, match="no version 9"):
        registry.set_alias("churn", "champion", 9)
    assert registry.aliases("churn") == {"champion": 3}


def test_moving_an_alias_and_its_audit_record_commit_together(
    registry: ModelRegistry, model_run: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.registry import audit

    registry.register_version("churn", model_run, "model")
    registry.register_version("churn", model_run, "model")
    registry.set_alias("churn", "champion", 1)

    def failing_record(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("audit store full")

    monkeypatch.setattr(audit, "record", failing_record)
    with pytest.raises(RuntimeError):
        registry.set_alias("churn", "champion", 2)
    assert registry.aliases("churn") == {"champion": 1}


def test_every_registry_change_is_in_the_audit_log_with_before_and_after(
    registry: ModelRegistry, model_run: str
) -> None:
    registry.register_version("churn", model_run, "model")
    registry.register_version("churn", model_run, "model")
    registry.set_alias("churn", "champion", 1, actor="alice")
    registry.set_alias("churn", "champion", 2, actor="bob")
    registry.set_version_description("churn", 2, "better recall")
    registry.set_version_tag("churn", 2, "approved", "yes")
    registry.delete_version_tag("churn", 2, "approved")
    registry.delete_alias("churn", "champion")
    events = list(reversed(registry.history("churn")))
    assert [e.action for e in events] == [
        "create_model",
        "register_version",
        "register_version",
        "set_alias",
        "move_alias",
        "set_version_description",
        "set_version_tag",
        "delete_version_tag",
        "delete_alias",
    ]
    move = events[4]
    assert (move.actor, move.entity_id, move.before, move.after) == (
        "bob",
        "churn@champion",
        {"version": 1},
        {"version": 2},
    )
    assert events[5].before == {"description": None}
    assert all(e.at > 0 for e in events)


def test_lineage_goes_from_version_to_run_to_dataset_versions_to_code_commit(
    registry: ModelRegistry, client: Client, model_run: str
) -> None:
    with client.database.write() as conn:
        dataset_id = conn.execute(
            sa.text(
                "INSERT INTO datasets (name, created_at) VALUES ('loans', 1) RETURNING dataset_id"
            )
        ).scalar()
        version_id = conn.execute(
            sa.text(
                "INSERT INTO dataset_versions (dataset_id, version, uri, row_count, content_hash, "
                "created_at) VALUES (:d, 3, 'mem://loans', 10, 'abc', 1) RETURNING id"
            ),
            {"d": dataset_id},
        ).scalar()
        conn.execute(
            sa.text("UPDATE runs SET git_commit = 'deadbeef', git_dirty = :f WHERE run_id = :r"),
            {"r": model_run, "f": False},
        )
    client.log_inputs(model_run, [version_id], "training")
    registry.register_version("churn", model_run, "model")
    registry.set_alias("churn", "champion", 1)
    lineage = registry.lineage("churn@champion")
    assert lineage["model"]["version"] == 1
    assert lineage["run"]["run_id"] == model_run
    assert lineage["run"]["params"] == {"alpha": "1"}
    assert lineage["code"] == {"git_commit": "deadbeef", "git_dirty": False}
    assert lineage["lineage"]["datasets"][0]["dataset"] == "loans"
    assert lineage["lineage"]["datasets"][0]["version"] == 3
    assert lineage["datasets"][0]["content_hash"] == "abc"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("churn@champion", ("churn", None, "champion")),
        ("churn:3", ("churn", 3, None)),
        ("churn", ("churn", None, None)),
        ("churn@latest", ("churn", None, None)),
        ("models:/churn/2", ("churn", 2, None)),
        ("models:/churn@challenger", ("churn", None, "challenger")),
    ],
)
def test_model_references_parse(ref: str, expected: tuple[Any, ...]) -> None:
    parsed = parse_ref(ref)
    assert (parsed.name, parsed.version, parsed.alias) == expected


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("churn:abc", "not a positive integer"),
        ("churn:0", "not a positive integer"),
        ("", "is empty"),
        ("bad name@x", "not valid"),
        ("churn@", "alias '' is not valid"),
    ],
)
def test_bad_model_references_say_how_to_write_one(ref: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_ref(ref)


def test_resolving_without_alias_or_version_gives_the_latest(
    registry: ModelRegistry, model_run: str
) -> None:
    registry.register_version("churn", model_run, "model")
    registry.register_version("churn", model_run, "model")
    assert registry.resolve("churn").version == 2
    with pytest.raises(NotFoundError, match="'other' does not exist"):
        registry.resolve("other")


def test_setting_an_alias_to_the_version_it_already_has_changes_nothing(
    registry: ModelRegistry, model_run: str
) -> None:
    registry.register_version("churn", model_run, "model")
    registry.set_alias("churn", "champion", 1)
    registry.set_alias("churn", "champion", 1)
    assert [e.action for e in registry.history("churn")].count("set_alias") == 1
    assert [e.action for e in registry.history("churn")].count("move_alias") == 0


@pytest.mark.slow
def test_concurrent_registrations_of_a_new_model_all_succeed_with_distinct_versions(
    settings: Settings, model_run: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def register(_: int) -> int:
        registry = ModelRegistry.from_settings(settings)
        try:
            return registry.register_version("fresh", model_run, "model").version
        finally:
            registry.db.dispose()

    with ThreadPoolExecutor(4) as pool:
        versions = sorted(pool.map(register, range(8)))
    assert versions == list(range(1, 9))
