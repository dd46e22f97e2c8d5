"""run_project end to end: ingest, train, evaluate, package, register — on real local stores."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.config import Settings
from loopml.errors import ConfigError
from loopml.pipeline.runner import ProjectRun, run_project
from loopml.train.project import load_project

from .conftest import QUICKSTART, binary_frame


def _registry(settings: Settings) -> object:
    from loopml.registry import ModelRegistry

    return ModelRegistry.from_settings(settings)


def test_the_quickstart_learns_y_equals_2x_and_becomes_champion(
    tmp_path: Path, settings: Settings
) -> None:
    from loopml.package import load_predictor

    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, project)
    result = run_project(project, settings=settings)
    assert result.model["name"] == "quickstart"
    assert result.model["version"] == 1
    assert sorted(result.model["aliases"]) == ["challenger", "champion"]
    assert result.best["candidate"] == "linear_regression"
    assert result.metrics["r2"] == pytest.approx(1.0)
    assert result.metrics["rmse"] == pytest.approx(0.0, abs=1e-9)
    assert result.evaluated_on.startswith("out-of-fold")
    registry = _registry(settings)
    champion = registry.resolve("quickstart@champion")  # type: ignore[attr-defined]
    predictor = load_predictor(registry, champion)
    predictions = predictor.predict(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    assert np.asarray(predictions).ravel().tolist() == [2.0, 4.0, 6.0]  # exactly
    # data.csv holds the integers 1, 2, 3, but x is a number: the model takes 1.5 too
    assert champion.signature["inputs"][0]["dtype"] == "float64"
    assert predictor.predict(pd.DataFrame({"x": [1.5]})).tolist() == [3.0]
    lineage = champion.lineage
    assert lineage["dataset"]["ref"] == "quickstart@1"
    assert lineage["features"][0]["column"] == "x"
    assert lineage["features"][0]["transform"] == "passthrough"
    assert "environment" in lineage
    assert "git_commit" in lineage["code"]


def test_running_again_unchanged_reuses_the_dataset_and_compares_with_the_champion(
    tmp_path: Path, settings: Settings
) -> None:
    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, project)
    first = run_project(project, settings=settings, trials=2)
    second = run_project(project, settings=settings, trials=2)
    assert first.dataset["reused"] is False
    assert second.dataset["reused"] is True
    assert second.dataset["ref"] == first.dataset["ref"] == "quickstart@1"
    assert second.model["version"] == 2
    assert second.model["aliases"] == ["challenger"]  # the champion is not replaced by training
    assert second.comparison is not None
    assert second.comparison["champion_version"] == 1
    assert second.comparison["champion_value"] == pytest.approx(0.0, abs=1e-9)
    aliases = _registry(settings).aliases("quickstart")  # type: ignore[attr-defined]
    assert aliases == {"champion": 1, "challenger": 2}


NOISY = """\
name: noisy
data: {source: {type: file, path: data.csv}}
target: y
task: regression
split: {method: kfold, folds: 3, test_size: 0.25}
candidates: [linear_regression]
gates: {r2: 0.999}
"""


def test_failing_gates_register_a_challenger_but_no_champion(
    make_project: Callable[..., Path], settings: Settings
) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=80)
    frame = pd.DataFrame({"x": x, "y": x + rng.normal(scale=1.0, size=80)})
    result = run_project(make_project(NOISY, frame), settings=settings)
    assert result.gates_passed is False
    assert result.gates[0]["metric"] == "r2"
    assert result.gates[0]["passed"] is False
    assert result.model["aliases"] == ["challenger"]
    assert "gates failed" in result.model["reason"]
    assert result.report is not None
    html = Path(result.report).read_text(encoding="utf-8")
    assert "FAIL" in html
    # one configuration and a test split: no validation folds were fitted
    assert any("nothing to choose" in note for note in result.notes)


CREDIT = """\
name: credit
data: {source: {type: file, path: data.csv}}
target: default
task: binary
positive_label: 1
split: {method: kfold, folds: 3, test_size: 0.25}
candidates:
  - logistic_regression
  - name: random_forest
    params: {n_estimators: 20}
    space: {max_depth: {type: int, low: 2, high: 6}}
search: {trials: 4, seed: 3}
metric: roc_auc
gates: {roc_auc: 0.6}
evaluation: {slice_by: [region]}
"""


def test_a_binary_project_logs_metrics_plots_slices_and_a_report(
    make_project: Callable[..., Path], settings: Settings
) -> None:
    from loopml.tracking.client import Client

    result = run_project(make_project(CREDIT, binary_frame()), settings=settings)
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss"):
        assert name in result.metrics
    assert result.gates_passed
    assert result.best["trials"] == 4
    client = Client(settings)
    paths = {a["path"] for a in client.list_artifacts(result.run_id)}
    for expected in (
        "plots/roc.png",
        "plots/precision_recall.png",
        "plots/confusion_matrix.png",
        "plots/calibration.png",
        "plots/feature_importance.png",
        "report.html",
        "evaluation/evaluation.json",
        "model/model.onnx",
    ):
        assert expected in paths, expected
    evaluation = client.read_artifact(result.run_id, "evaluation/evaluation.json")
    assert b'"region"' in evaluation  # per-slice metrics
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert "test_roc_auc" in run.data.metrics
    assert run.inputs  # the dataset version it read
    client.close()


def test_each_stage_is_a_python_function(
    make_project: Callable[..., Path], settings: Settings
) -> None:
    project = load_project(make_project(CREDIT.replace("trials: 4", "trials: 2"), binary_frame()))
    events: list[str] = []
    with ProjectRun(project, settings=settings, progress=lambda e, p: events.append(e)) as run:
        data = run.ingest()
        trained = run.train(data)
        evaluated = run.evaluate(data, trained)
        packaged = run.package(data, trained, evaluated)
        registration = run.register(data, trained, evaluated, packaged)
    assert registration.version == 1
    assert packaged.parity.passed  # type: ignore[attr-defined]
    assert events.count("stage_start") == 5
    assert "trial_end" in events


def test_a_time_split_project_trains_on_the_past_and_tests_on_the_future(
    make_project: Callable[..., Path], settings: Settings
) -> None:
    n = 120
    rng = np.random.default_rng(1)
    day = np.arange(n)
    frame = pd.DataFrame({"day": day, "x": rng.normal(size=n)})
    frame["y"] = 2 * frame["x"]
    text = NOISY.replace(
        "split: {method: kfold, folds: 3, test_size: 0.25}",
        "split: {method: time, time_column: day, folds: 3, test_size: 0.2}",
    )
    text = text.replace("gates: {r2: 0.999}", "gates: {}")
    result = run_project(
        make_project(text, frame.sample(frac=1, random_state=0)), settings=settings
    )
    assert result.metrics["r2"] == pytest.approx(1.0)
    from loopml.tracking.client import Client

    client = Client(settings)
    split = client.read_artifact(result.run_id, "project/split.json")
    assert b'"test_rows": 24' in split
    client.close()


def test_a_missing_target_fails_the_run_with_a_clear_error(
    make_project: Callable[..., Path], settings: Settings
) -> None:
    from loopml.tracking.client import Client

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "z": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(ConfigError, match=r"target column 'y' is not in the dataset.*x, z"):
        run_project(make_project(NOISY, frame), settings=settings)
    client = Client(settings)
    runs = client.search_runs([client.get_experiment_by_name("noisy").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    client.close()


def test_the_torch_mlp_trains_packages_and_registers(
    make_project: Callable[..., Path], settings: Settings
) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=150), "b": rng.normal(size=150)})
    frame["y"] = 3 * frame["a"] - frame["b"]
    text = NOISY.replace(
        "candidates: [linear_regression]",
        "candidates: [{name: mlp, params: {epochs: 40, learning_rate: 0.01}, space: {}}]",
    ).replace("gates: {r2: 0.999}", "gates: {r2: 0.8}")
    result = run_project(make_project(text, frame), settings=settings)
    assert result.best["candidate"] == "mlp"
    assert result.gates_passed
    assert "champion" in result.model["aliases"]


def test_a_project_that_allows_pickles_tags_its_version_with_the_opt_in(
    tmp_path: Path, settings: Settings
) -> None:
    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, project)
    text = (project / "loopml.yaml").read_text(encoding="utf-8")
    opted = text.replace(
        "model:\n  name: quickstart", "model:\n  name: quickstart\n  allow_pickle: true"
    )
    assert opted != text
    (project / "loopml.yaml").write_text(opted, encoding="utf-8")
    run_project(project, settings=settings, trials=1)
    registry = _registry(settings)
    version = registry.resolve("quickstart:1")  # type: ignore[attr-defined]
    assert version.tags["loopml.allow_pickle"] == "true"
    assert registry.read_artifact("quickstart", 1, "model.pkl")  # type: ignore[attr-defined]
    (project / "loopml.yaml").write_text(text, encoding="utf-8")
    run_project(project, settings=settings, trials=1)
    plain = registry.resolve("quickstart:2")  # type: ignore[attr-defined]
    assert "loopml.allow_pickle" not in plain.tags


HOUSES = """\
name: houses
data: {source: {type: file, path: data.csv}}
target: price
task: regression
features:
  - {column: rooms, transform: passthrough}
  - {column: district, transform: onehot}
split: {method: kfold, folds: 3, test_size: 0.25}
candidates: [linear_regression]
"""


def test_an_integer_column_is_a_float64_input_when_numeric_and_int64_when_categorical(
    make_project: Callable[..., Path], settings: Settings
) -> None:
    from loopml.data.versions import from_settings
    from loopml.package import InvalidFeedError, ModelCard, Signature, to_feed
    from loopml.package.bundle import CARD_FILE

    rng = np.random.default_rng(0)
    rooms = rng.integers(1, 8, 60)
    district = rng.choice([3, 7, 11], 60)
    frame = pd.DataFrame(
        {"rooms": rooms, "district": district, "price": 50 * rooms + 10 * (district == 7)}
    )
    result = run_project(make_project(HOUSES, frame), settings=settings)

    registry = _registry(settings)
    version = registry.resolve("houses:1")  # type: ignore[attr-defined]
    signature = Signature.from_dict(version.signature)
    card = ModelCard.from_json(registry.read_artifact("houses", 1, CARD_FILE))  # type: ignore[attr-defined]
    for described in (signature, card.signature):
        assert {spec.name: spec.dtype for spec in described.inputs} == {
            "rooms": "float64",
            "district": "int64",
        }
    from loopml.package import load_predictor

    predictor = load_predictor(registry, version)
    feed = to_feed(signature, {"rooms": [1.5, 2], "district": [7, 3]})
    variable = predictor.session.run(None, feed)[0].ravel()
    np.testing.assert_allclose(variable, [50 * 1.5 + 10, 100.0], atol=1e-6)
    # a district 1.5 does not exist: refused, naming the column and the expectation
    with pytest.raises(InvalidFeedError, match=r"column 'district'\) is 1.5; expected an integer"):
        to_feed(signature, [[2, 1.5]])
    # the stored dataset keeps its integer columns: only the model's view is widened
    stored = from_settings(settings).read(result.dataset["ref"], as_="pandas")
    assert str(stored["rooms"].dtype) == "int64"
    assert str(stored["district"].dtype) == "int64"
