"""The background writer: one run's bad data never blocks or loses another run's values."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml import Client
from loopml.config import Settings
from loopml.errors import ConflictError, NotFoundError


def test_values_for_a_missing_run_do_not_block_other_runs(client: Client) -> None:
    real = client.create_run(None).info.run_id
    client.log_metric("does-not-exist", "x", 1.0)
    client.log_metric(real, "acc", 0.9)
    with pytest.raises(NotFoundError, match="does-not-exist"):
        client.flush()
    assert client.get_run(real).data.metrics == {"acc": 0.9}
    client.set_terminated(real)
    assert client.get_run(real).info.status == "FINISHED"


def test_a_param_clash_keeps_the_runs_other_new_params(client: Client, settings: Settings) -> None:
    run_id = client.create_run(None).info.run_id
    client.log_batch(run_id, params={"b": "2"})
    other = Client(settings)
    try:
        other.log_params(run_id, {"a": "1", "b": "3"})
        other.log_metric(run_id, "m", 1.0)
        with pytest.raises(ConflictError, match="'b'"):
            other.flush()
    finally:
        other.close()
    stored = client.get_run(run_id).data
    assert stored.params == {"a": "1", "b": "2"}
    assert stored.metrics == {"m": 1.0}


def test_a_failed_end_keeps_the_buffered_values(client: Client, settings: Settings) -> None:
    run_id = client.create_run(None).info.run_id
    client.log_batch(run_id, params={"lr": "1"})
    other = Client(settings)
    try:
        other.log_param(run_id, "lr", "2")
        other.log_metric(run_id, "loss", 0.5)
        with pytest.raises(ConflictError):
            other.set_terminated(run_id)
        assert other.writer.pending_count == 2
    finally:
        with pytest.raises(ConflictError):
            other.flush()
        other.close()
    assert client.get_run(run_id).data.metrics == {"loss": 0.5}


def test_artifact_folder_names_with_like_wildcards_match_literally(
    client: Client, tmp_path: Path
) -> None:
    run_id = client.create_run(None).info.run_id
    source = tmp_path / "f.txt"
    source.write_text("x")
    client.log_artifact(run_id, source, "my_model")
    client.log_artifact(run_id, source, "myXmodel")
    assert [a["path"] for a in client.list_artifacts(run_id, "my_model")] == ["my_model/f.txt"]


def test_a_non_ascii_digit_experiment_id_is_a_clear_error(client: Client) -> None:
    from loopml.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="not valid"):
        client.search_runs(["²"])
