"""Deployments: servers record what they serve and its traffic, audited, on both backends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml import Client
from loopml.config import Settings
from loopml.errors import InvalidInputError, NotFoundError
from loopml.registry import Deployments, ModelRegistry
from loopml.store import Database

SPLIT = {"weights": {"champion": 90.0, "challenger": 10.0}, "shadow": []}
TARGETS = ("churn@champion", "churn@challenger")


@pytest.fixture
def deployments(settings: Settings, client: Client, tmp_path: Path) -> Iterator[Deployments]:
    """A store with registered models ``churn`` and ``fraud``."""
    registry = ModelRegistry.from_settings(settings)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"onnx-bytes")
    run_id = client.create_run(None, run_name="train").info.run_id
    client.log_artifacts(run_id, folder, "model")
    client.set_terminated(run_id)
    for name in ("churn", "fraud"):
        registry.register_version(name, run_id, "model")
    registry.db.dispose()
    store = Deployments.from_settings(settings)
    yield store
    store.db.dispose()


def test_a_started_deployment_is_listed_running_with_its_targets_and_traffic(
    deployments: Deployments,
) -> None:
    started = deployments.start(
        "127.0.0.1:8000", {"churn": TARGETS}, {"churn": SPLIT}, launched_at=1
    )
    assert [(d.name, d.model_name, d.status) for d in started] == [
        ("127.0.0.1:8000", "churn", "running")
    ]
    listed = deployments.list_deployments()
    assert len(listed) == 1
    assert listed[0].targets == TARGETS
    assert listed[0].traffic == SPLIT
    assert deployments.traffic("127.0.0.1:8000") == {"churn": SPLIT}


def test_a_traffic_change_is_stored_and_audited_with_before_and_after(
    deployments: Deployments,
) -> None:
    deployments.start("api", {"churn": TARGETS}, {"churn": SPLIT}, launched_at=1)
    flipped = {"weights": {"champion": 0.0, "challenger": 100.0}, "shadow": []}
    changed = deployments.set_traffic("api", "churn", flipped, actor="alice")
    assert changed.traffic == flipped
    assert deployments.traffic("api") == {"churn": flipped}
    deployments.set_traffic("api", "churn", flipped, actor="alice")  # no change: no event
    events = deployments.history("api")
    assert [e.action for e in events] == ["set_traffic", "start_deployment"]
    assert events[0].actor == "alice"
    assert events[0].entity_type == "deployment"
    assert events[0].entity_id == "api/churn"
    assert events[0].before == {"traffic": SPLIT}
    assert events[0].after == {"traffic": flipped}


def test_a_new_launch_replaces_what_an_earlier_one_left(deployments: Deployments) -> None:
    first = deployments.start(
        "api", {"churn": TARGETS, "fraud": ("fraud@champion",)}, {"churn": SPLIT}, launched_at=1
    )
    assert {d.model_name for d in first} == {"churn", "fraud"}
    later = max(d.updated_at for d in first) + 1
    deployments.start("api", {"churn": ("churn@champion",)}, launched_at=later)
    rows = {d.model_name: d for d in deployments.list_deployments("api")}
    assert rows["churn"].traffic is None  # the old 90/10 must not override the new server
    assert rows["churn"].targets == ("churn@champion",)
    assert rows["churn"].status == "running"
    assert rows["fraud"].status == "stopped"  # no longer served by this deployment


def test_workers_of_one_launch_keep_a_change_made_between_their_starts(
    deployments: Deployments,
) -> None:
    deployments.start("api", {"churn": TARGETS}, {"churn": SPLIT}, launched_at=1)
    flipped = {"weights": {"challenger": 100.0}, "shadow": []}
    deployments.set_traffic("api", "churn", flipped)
    # A second worker of the same launch starts late: the change survives.
    deployments.start("api", {"churn": TARGETS}, {"churn": SPLIT}, launched_at=1)
    assert deployments.traffic("api") == {"churn": flipped}


def test_workers_starting_together_write_one_row(deployments: Deployments) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        # Each worker is its own process with its own connections: one Database each.
        own = Deployments(Database(deployments.db.uri))
        try:
            own.start("api", {"churn": TARGETS}, {"churn": SPLIT}, launched_at=1)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)
        finally:
            own.db.dispose()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(deployments.list_deployments("api")) == 1
    assert [e.action for e in deployments.history("api")] == ["start_deployment"]


def test_a_graceful_stop_marks_every_model_stopped(deployments: Deployments) -> None:
    deployments.start("api", {"churn": TARGETS, "fraud": ("fraud@champion",)}, launched_at=1)
    deployments.start("other", {"churn": TARGETS}, launched_at=1)
    stopped = deployments.stop("api", actor="serve")
    assert {d.status for d in stopped} == {"stopped"}
    assert [d.name for d in deployments.list_deployments(status="running")] == ["other"]
    assert deployments.history("api")[0].action == "stop_deployment"


def test_serving_an_unregistered_model_is_refused_by_name(deployments: Deployments) -> None:
    with pytest.raises(NotFoundError, match="serves 'ghost', which is not a registered model"):
        deployments.start("api", {"ghost": ("ghost@champion",)}, launched_at=1)
    assert deployments.list_deployments() == []


def test_traffic_for_a_model_not_served_is_refused(deployments: Deployments) -> None:
    with pytest.raises(InvalidInputError, match=r"has traffic for \['fraud'\]"):
        deployments.start("api", {"churn": TARGETS}, {"fraud": SPLIT}, launched_at=1)


def test_changing_traffic_of_an_unknown_deployment_names_it(deployments: Deployments) -> None:
    with pytest.raises(NotFoundError, match="deployment 'nope' does not serve model 'churn'"):
        deployments.set_traffic("nope", "churn", SPLIT)


@pytest.mark.parametrize("name", ["", "a/b", "x" * 300])
def test_a_bad_deployment_name_is_refused(deployments: Deployments, name: str) -> None:
    with pytest.raises(InvalidInputError, match="deployment name"):
        deployments.start(name, {"churn": TARGETS}, launched_at=1)
