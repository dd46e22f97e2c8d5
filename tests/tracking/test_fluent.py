"""The module-level tracking API behaves like MLflow's, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from loopml.errors import ConflictError, InvalidInputError, NotFoundError


def test_a_run_records_params_metrics_tags_and_ends_finished(fluent: Any) -> None:
    fluent.set_experiment("churn")
    with fluent.start_run(run_name="baseline") as run:
        fluent.log_params({"alpha": 0.5, "model": "rf"})
        fluent.log_metric("rmse", 0.7)
        fluent.log_metrics({"mae": 0.4, "r2": 0.9}, step=3)
        fluent.set_tags({"team": "risk"})
    stored = fluent.get_client().get_run(run.info.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.info.run_name == "baseline"
    assert stored.info.end_time >= stored.info.start_time
    assert stored.data.params == {"alpha": "0.5", "model": "rf"}
    assert stored.data.metrics == {"rmse": 0.7, "mae": 0.4, "r2": 0.9}
    assert stored.data.tags == {"team": "risk"}
    assert stored.info.user_id
    assert stored.info.environment["python"].count(".") == 2
    assert "numpy" in stored.info.environment["packages"]


def test_an_exception_inside_the_run_marks_it_failed_with_the_error(fluent: Any) -> None:
    def train() -> str:
        with fluent.start_run() as run:
            fluent.log_metric("before", 1.0)
            _ = 1 / 0
        return run.info.run_id  # pragma: no cover

    with pytest.raises(ZeroDivisionError):
        train()
    run = fluent.last_active_run()
    stored = fluent.get_client().get_run(run.info.run_id)
    assert stored.info.status == "FAILED"
    assert "ZeroDivisionError" in stored.info.failure_reason
    assert stored.data.metrics == {"before": 1.0}


def test_nested_runs_record_their_parent(fluent: Any) -> None:
    with fluent.start_run() as parent:
        with fluent.start_run(nested=True) as child:
            fluent.log_metric("trial", 1)
        assert fluent.active_run().info.run_id == parent.info.run_id
    stored = fluent.get_client().get_run(child.info.run_id)
    assert stored.info.parent_run_id == parent.info.run_id
    assert stored.info.status == "FINISHED"


def test_starting_a_second_run_without_nested_is_refused(fluent: Any) -> None:
    with fluent.start_run(), pytest.raises(InvalidInputError, match="nested=True"):
        fluent.start_run()


def test_metric_history_keeps_every_step_and_timestamp(fluent: Any) -> None:
    with fluent.start_run() as run:
        for step in range(5):
            fluent.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1000 + step)
    history = fluent.get_client().get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.timestamp, m.value) for m in history] == [
        (s, 1000 + s, 1.0 / (s + 1)) for s in range(5)
    ]


def test_the_latest_metric_is_the_one_with_the_highest_step_not_the_last_logged(
    fluent: Any,
) -> None:
    with fluent.start_run() as run:
        fluent.log_metric("acc", 0.9, step=10)
        fluent.log_metric("acc", 0.1, step=2)
    assert fluent.get_client().get_run(run.info.run_id).data.metrics["acc"] == 0.9


def test_nan_and_infinite_metrics_are_stored_and_read_back_as_such(fluent: Any) -> None:
    with fluent.start_run() as run:
        fluent.log_metric("nan", float("nan"))
        fluent.log_metric("pos", float("inf"))
        fluent.log_metric("neg", float("-inf"))
    client = fluent.get_client()
    metrics = client.get_run(run.info.run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["pos"] == math.inf
    assert metrics["neg"] == -math.inf
    assert math.isnan(client.get_metric_history(run.info.run_id, "nan")[0].value)
    frame = fluent.search_runs(search_all_experiments=True)
    assert math.isnan(frame["metrics.nan"].iloc[0])
    assert frame["metrics.pos"].iloc[0] == math.inf


@pytest.mark.parametrize("value", ["0.5", None, [1.0], {"a": 1}])
def test_a_non_numeric_metric_is_refused_at_the_call(fluent: Any, value: Any) -> None:
    with fluent.start_run(), pytest.raises(InvalidInputError, match="metrics must be numbers"):
        fluent.log_metric("bad", value)


def test_an_over_long_key_is_refused(fluent: Any) -> None:
    with fluent.start_run(), pytest.raises(InvalidInputError, match="the limit is 250"):
        fluent.log_metric("k" * 251, 1.0)


def test_a_param_relogged_with_a_different_value_is_an_error(fluent: Any) -> None:
    with fluent.start_run() as run:
        fluent.log_param("lr", 0.1)
        fluent.log_param("lr", 0.1)  # same value: allowed, as in MLflow
        fluent.get_client().flush()
        with pytest.raises(ConflictError, match="params are immutable"):
            fluent.log_param("lr", 0.2)
    assert fluent.get_client().get_run(run.info.run_id).data.params == {"lr": "0.1"}


def test_a_param_clash_with_a_value_stored_by_another_client_is_reported(
    fluent: Any, settings: Any
) -> None:
    from loopml import Client

    with fluent.start_run() as run:
        other = Client(settings)
        other.log_batch(run.info.run_id, params={"depth": 3})
        other.close()
        fluent.log_param("depth", 4)
        with pytest.raises(ConflictError, match="'depth'"):
            fluent.get_client().flush()
        fluent.log_metric("still_logged", 1.0)
    stored = fluent.get_client().get_run(run.info.run_id)
    assert stored.data.params == {"depth": "3"}
    assert stored.data.metrics == {"still_logged": 1.0}


def test_artifacts_are_stored_listed_and_read_back(fluent: Any, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source = tmp_path / "notes.txt"
    source.write_text("hello")
    folder = tmp_path / "dir"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "x.csv").write_text("a,b\n1,2\n")
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with fluent.start_run() as run:
        fluent.log_artifact(source)
        fluent.log_artifact(source, "copies")
        fluent.log_artifacts(folder, "data")
        fluent.log_dict({"a": 1}, "config.json")
        fluent.log_dict({"a": 1}, "config.yaml")
        fluent.log_figure(fig, "plots/line.png")
    plt.close(fig)
    client = fluent.get_client()
    paths = [a["path"] for a in client.list_artifacts(run.info.run_id)]
    assert paths == sorted(
        [
            "notes.txt",
            "copies/notes.txt",
            "data/sub/x.csv",
            "config.json",
            "config.yaml",
            "plots/line.png",
        ]
    )
    assert client.read_artifact(run.info.run_id, "config.yaml") == b"a: 1\n"
    assert client.read_artifact(run.info.run_id, "plots/line.png").startswith(b"\x89PNG")
    out = client.download_artifacts(run.info.run_id, "data", tmp_path / "dl")
    assert (Path(out) / "sub" / "x.csv").read_text() == "a,b\n1,2\n"


def test_identical_artifacts_are_stored_once(fluent: Any, tmp_path: Path) -> None:
    source = tmp_path / "same.bin"
    source.write_bytes(b"x" * 1000)
    with fluent.start_run() as run:
        fluent.log_artifact(source, "a")
        fluent.log_artifact(source, "b")
    listed = fluent.get_client().list_artifacts(run.info.run_id)
    assert len({a["sha256"] for a in listed}) == 1
    blobs = [p for p in Path(fluent.get_client().settings.artifact_uri).rglob("*") if p.is_file()]
    assert len(blobs) == 1


def test_an_artifact_path_that_escapes_the_run_is_refused(fluent: Any, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x")
    with fluent.start_run(), pytest.raises(InvalidInputError):
        fluent.log_artifact(source, "../../etc")


def test_logging_a_missing_file_names_it(fluent: Any, tmp_path: Path) -> None:
    with fluent.start_run(), pytest.raises(NotFoundError, match="no such file"):
        fluent.log_artifact(tmp_path / "absent.txt")


def test_search_runs_filters_orders_and_returns_a_dataframe(fluent: Any) -> None:
    fluent.set_experiment("search")
    for i, (model, rmse) in enumerate([("rf", 0.3), ("rf", 0.6), ("lr", 0.2), ("rf", 0.1)]):
        with fluent.start_run(run_name=f"r{i}"):
            fluent.log_param("model", model)
            fluent.log_metric("rmse", rmse)
            fluent.set_tag("team", "risk" if i != 3 else "ops")
    frame = fluent.search_runs(
        filter_string="metrics.rmse < 0.5 and params.model = 'rf' and tags.team = 'risk' "
        "and status = 'FINISHED'",
        order_by=["metrics.rmse DESC"],
    )
    assert list(frame["run_name"]) == ["r0"]
    everything = fluent.search_runs(experiment_names=["search"], order_by=["metrics.rmse ASC"])
    assert list(everything["metrics.rmse"]) == [0.1, 0.2, 0.3, 0.6]
    assert {
        "run_id",
        "experiment_id",
        "status",
        "start_time",
        "end_time",
        "params.model",
        "tags.team",
    } <= set(everything.columns)
    assert len(fluent.search_runs(experiment_names=["search"], max_results=2)) == 2


def test_search_with_a_bad_filter_points_at_the_token(fluent: Any) -> None:
    with pytest.raises(InvalidInputError, match="position"):
        fluent.search_runs(filter_string="metrics.rmse << 0.5", search_all_experiments=True)


def test_search_in_an_unknown_experiment_names_it(fluent: Any) -> None:
    with pytest.raises(NotFoundError, match="'nope'"):
        fluent.search_runs(experiment_names=["nope"])


def test_max_results_and_page_tokens_page_through_runs_in_order(fluent: Any) -> None:
    fluent.set_experiment("paging")
    for i in range(5):
        with fluent.start_run(run_name=f"r{i}"):
            fluent.log_metric("score", float(i))
    client = fluent.get_client()
    experiment = client.get_experiment_by_name("paging").experiment_id
    order = ["metrics.score DESC"]
    first = client.search_runs([experiment], max_results=2, order_by=order)
    second = client.search_runs([experiment], max_results=2, order_by=order, page_token="2")
    last = client.search_runs([experiment], max_results=2, order_by=order, page_token="4")
    names = [r.info.run_name for r in (*first, *second, *last)]
    assert names == ["r4", "r3", "r2", "r1", "r0"]
    frame = fluent.search_runs(experiment_names=["paging"], order_by=order, max_results=3)
    assert list(frame["run_name"]) == ["r4", "r3", "r2"]
