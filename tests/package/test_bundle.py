"""package_model: ONNX + parity + card; files logged with the run; pickle only on opt-in."""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from loopml.config import Settings
from loopml.errors import IntegrityError, InvalidInputError, NotFoundError
from loopml.package import (
    ModelCard,
    OnnxPredictor,
    PackagingError,
    load_packaged_model,
    load_predictor,
    log_packaged_model,
    package_model,
)


@pytest.fixture
def article() -> tuple[LinearRegression, pd.DataFrame]:
    """The origin article's worked example: x = 1, 2, 3 and y = 2, 4, 6."""
    x = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    return LinearRegression().fit(x, [2.0, 4.0, 6.0]), x


@pytest.fixture
def client(sqlite_settings: Settings) -> Iterator[object]:
    from loopml import Client

    c = Client(sqlite_settings)
    yield c
    c.close()


def test_packaging_produces_onnx_and_a_card_but_no_pickle_by_default(
    article: tuple[LinearRegression, pd.DataFrame],
) -> None:
    model, x = article

    packaged = package_model(
        model,
        x,
        task="regression",
        run_id="r1",
        metrics={"rmse": np.float64(0.0), "r2": 1.0, "bad": float("nan")},
        lineage={"dataset_version": "ds-3", "code_commit": "abc123"},
        name="quickstart",
        version=1,
    )

    assert set(packaged.files()) == {"model.onnx", "model_card.json"}
    card = json.loads(packaged.files()["model_card.json"])
    assert card["name"] == "quickstart"
    assert card["version"] == "1"
    assert card["task"] == "regression"
    assert card["metrics"] == {"rmse": 0.0, "r2": 1.0, "bad": None}
    assert card["lineage"] == {"dataset_version": "ds-3", "code_commit": "abc123", "run_id": "r1"}
    assert card["onnx"]["sha256"] == hashlib.sha256(packaged.onnx_bytes).hexdigest()
    assert 13 <= card["onnx"]["opset"][""] <= 18  # skl2onnx uses the lowest that suffices
    assert card["parity"]["passed"] is True
    assert card["onnxruntime_version"]
    assert card["loopml_version"]
    assert card["created_at"].endswith("Z")
    assert card["signature"]["inputs"][0]["name"] == "x"
    assert "model.pkl" not in card["files"]


def test_the_article_model_predicts_2_4_6_from_the_packaged_onnx(
    article: tuple[LinearRegression, pd.DataFrame],
) -> None:
    model, x = article
    packaged = package_model(model, x, task="regression")

    predictor = OnnxPredictor(packaged.onnx_bytes)

    assert predictor.predict(x).tolist() == pytest.approx([2.0, 4.0, 6.0], abs=1e-12)
    assert not hasattr(predictor, "predict_proba")


def test_a_pickle_is_written_only_when_the_project_opts_in(
    article: tuple[LinearRegression, pd.DataFrame],
) -> None:
    model, x = article

    packaged = package_model(model, x, task="regression", allow_pickle=True)

    assert set(packaged.files()) == {"model.onnx", "model_card.json", "model.pkl"}
    assert packaged.card.has_pickle
    restored = pickle.loads(packaged.files()["model.pkl"])
    assert restored.predict(x).tolist() == pytest.approx([2.0, 4.0, 6.0])


class ShiftedRegression(LinearRegression):
    """Predicts one more than its ONNX form: what a step with a wrong converter looks like."""

    def predict(self, X: object) -> np.ndarray:
        return super().predict(X) + 1.0


def test_a_parity_failure_stops_packaging() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import calculate_linear_regressor_output_shapes
    from skl2onnx.operator_converters.linear_regressor import convert_sklearn_linear_regressor

    from loopml.package import ParityError

    update_registered_converter(
        ShiftedRegression,
        "TestShiftedRegression",
        calculate_linear_regressor_output_shapes,
        convert_sklearn_linear_regressor,
    )
    x = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    model = ShiftedRegression().fit(x, [2.0, 4.0, 6.0])

    with pytest.raises(ParityError, match=r"'variable' differs .* max abs diff 1 at row 0"):
        package_model(model, x, task="regression")


def test_the_files_are_logged_under_model_in_the_run(
    article: tuple[LinearRegression, pd.DataFrame], client: object
) -> None:
    model, x = article
    run = client.create_run()  # type: ignore[attr-defined]
    run_id = run.info.run_id

    packaged = package_model(model, x, task="regression", run_id=run_id, client=client)

    assert packaged.logged is not None
    assert packaged.artifact_path == "model"
    assert set(packaged.logged.artifact_paths) == {"model/model.onnx", "model/model_card.json"}
    assert packaged.logged.onnx_sha256 == hashlib.sha256(packaged.onnx_bytes).hexdigest()
    stored = client.read_artifact(run_id, "model/model.onnx")  # type: ignore[attr-defined]
    assert stored == packaged.onnx_bytes
    listed = {a["path"] for a in client.list_artifacts(run_id, "model")}  # type: ignore[attr-defined]
    assert listed == {"model/model.onnx", "model/model_card.json"}


def test_logging_separately_returns_paths_and_checksum(
    article: tuple[LinearRegression, pd.DataFrame], client: object
) -> None:
    model, x = article
    run_id = client.create_run().info.run_id  # type: ignore[attr-defined]
    packaged = package_model(model, x, task="regression", allow_pickle=True)

    logged = log_packaged_model(packaged, run_id, client=client)  # type: ignore[arg-type]

    assert logged.artifact_paths == (
        "model/model.onnx",
        "model/model_card.json",
        "model/model.pkl",
    )
    assert logged.onnx_sha256 == packaged.onnx_sha256


def test_a_client_without_run_id_is_a_usage_error(
    article: tuple[LinearRegression, pd.DataFrame], client: object
) -> None:
    model, x = article

    with pytest.raises(PackagingError, match="needs run_id"):
        package_model(model, x, task="regression", client=client)  # type: ignore[arg-type]


def test_a_registered_version_loads_as_a_predictor(
    article: tuple[LinearRegression, pd.DataFrame], client: object, sqlite_settings: Settings
) -> None:
    from loopml.registry import ModelRegistry

    model, x = article
    run_id = client.create_run().info.run_id  # type: ignore[attr-defined]
    packaged = package_model(model, x, task="regression", run_id=run_id, client=client)
    registry = ModelRegistry.from_settings(sqlite_settings)
    version = registry.register_version(
        "quickstart", run_id, packaged.artifact_path, signature=packaged.signature.to_dict()
    )

    predictor = load_predictor(registry, version)

    assert predictor.predict(pd.DataFrame({"x": [4.0]})).tolist() == pytest.approx([8.0])


def test_a_packaged_folder_round_trips_and_tampering_is_caught(
    article: tuple[LinearRegression, pd.DataFrame], tmp_path: Path
) -> None:
    model, x = article
    packaged = package_model(model, x, task="regression", allow_pickle=True)
    packaged.write(tmp_path)

    again = load_packaged_model(tmp_path)

    assert again.onnx_bytes == packaged.onnx_bytes
    assert again.card.to_dict() == packaged.card.to_dict()
    (tmp_path / "model.onnx").write_bytes(packaged.onnx_bytes + b"\x00")
    with pytest.raises(IntegrityError, match=r"model.onnx has sha256 .*, the model card says"):
        load_packaged_model(tmp_path)
    (tmp_path / "model.onnx").unlink()
    with pytest.raises(NotFoundError, match=r"has no model\.onnx"):
        load_packaged_model(tmp_path)


def test_a_card_round_trips_and_refuses_unknown_schema_versions(
    article: tuple[LinearRegression, pd.DataFrame],
) -> None:
    model, x = article
    card = package_model(model, x, task="regression").card

    assert ModelCard.from_json(card.to_json()).to_dict() == card.to_dict()
    future = {**card.to_dict(), "schema_version": 99}
    with pytest.raises(InvalidInputError, match="schema_version 99 is not supported"):
        ModelCard.from_dict(future)
