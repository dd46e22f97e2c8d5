"""Pickles are served only for versions that carry their project's opt-in: loading one runs code.

The opt-in is the version tag ``loopml.allow_pickle=true`` (written by ``loopml run`` when the
project sets ``model.allow_pickle: true``); no server flag can grant it.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from loopml import Client
from loopml.cli.main import main
from loopml.config import Settings
from loopml.errors import InvalidInputError, LoopMLError
from loopml.registry import ModelRegistry
from loopml.serve import (
    FileSource,
    ModelPackage,
    RegistrySource,
    Resolved,
    ServeSettings,
    create_app,
)

from .conftest import TestClient

SIGNATURE = {
    "inputs": [{"name": "x", "dtype": "float64", "shape": [-1, 1]}],
    "outputs": [{"name": "variable", "dtype": "float64", "shape": [-1, 1]}],
    "task": "regression",
    "input_layout": "columns",
}


def _pickled_line() -> bytes:
    x = pd.DataFrame({"x": np.arange(10.0)})
    return pickle.dumps(LinearRegression().fit(x, 2 * x["x"]))


class PickleOnlySource:
    """A source whose only version has a pickle and no ONNX file."""

    def __init__(self, *, opted_in: bool) -> None:
        self.opted_in = opted_in
        self.payload = _pickled_line()

    def resolve(self, ref: str) -> Resolved:
        return Resolved("legacy", "1")

    def fetch(self, name: str, version: str) -> ModelPackage:
        return ModelPackage(
            name,
            version,
            None,
            signature=SIGNATURE,
            pickle=self.payload if self.opted_in else None,
            allow_pickle=self.opted_in,
        )


def test_a_version_without_the_opt_in_is_refused_naming_the_project_setting(
    tmp_path: Path,
) -> None:
    settings = ServeSettings(models=("legacy:1",), log_dir=str(tmp_path / "logs"))
    with pytest.raises(LoopMLError, match="does not opt in to serving its pickle") as info:
        create_app(settings, source=PickleOnlySource(opted_in=False), home=tmp_path)
    assert "model.allow_pickle: true in loopml.yaml and re-run" in str(info.value.hint)


def test_a_version_that_opted_in_is_served_from_its_pickle(tmp_path: Path) -> None:
    settings = ServeSettings(models=("legacy:1",), log_dir=str(tmp_path / "logs"))
    app = create_app(settings, source=PickleOnlySource(opted_in=True), home=tmp_path)
    with TestClient(app) as client:
        response = client.post("/predict", json={"instances": [[1.0], [3.0]]})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pytest.approx([2.0, 6.0])


# --- through the registry -----------------------------------------------------------------------


@pytest.fixture
def registry(settings: Settings, tmp_path: Path) -> Iterator[ModelRegistry]:
    """``legacy`` v1: a pickle only, no opt-in; v2: the same pickle, tagged with the opt-in."""
    client = Client(settings)
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(_pickled_line())
    run_id = client.create_run(None, run_name="legacy").info.run_id
    client.log_artifacts(run_id, folder, "model")
    client.set_terminated(run_id)
    client.close()
    registry = ModelRegistry.from_settings(settings)
    registry.register_version("legacy", run_id, "model", signature=SIGNATURE)
    registry.register_version(
        "legacy", run_id, "model", signature=SIGNATURE, tags={"loopml.allow_pickle": "true"}
    )
    yield registry
    registry.db.dispose()


def test_the_registry_hands_out_a_pickle_only_to_a_version_that_opted_in(
    registry: ModelRegistry,
) -> None:
    source = RegistrySource(registry)
    refused = source.fetch("legacy", "1")
    assert refused.pickle is None  # never even read
    assert not refused.allow_pickle
    allowed = source.fetch("legacy", "2")
    assert allowed.allow_pickle
    assert allowed.pickle is not None


def test_a_registry_version_is_served_from_its_pickle_only_with_its_tag(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    source = RegistrySource(registry)
    with pytest.raises(LoopMLError, match=r"legacy:1 has no ONNX artifact") as info:
        create_app(
            ServeSettings(models=("legacy:1",), log_dir=str(tmp_path / "logs")),
            source=source,
            home=tmp_path,
        )
    assert "model.allow_pickle: true" in str(info.value.hint)
    app = create_app(
        ServeSettings(models=("legacy:2",), log_dir=str(tmp_path / "logs")),
        source=source,
        home=tmp_path,
    )
    with TestClient(app) as client:
        response = client.post("/predict", json={"instances": [[2.0]]})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pytest.approx([4.0])


def test_a_version_with_onnx_is_served_from_onnx_even_with_the_opt_in(
    settings: Settings, tmp_path: Path, models: dict[str, Path]
) -> None:
    client = Client(settings)
    folder = tmp_path / "both"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(models["linear"].read_bytes())
    (folder / "model.pkl").write_bytes(b"\x80 not a pickle: loading it would fail")
    run_id = client.create_run(None).info.run_id
    client.log_artifacts(run_id, folder, "model")
    client.close()
    registry = ModelRegistry.from_settings(settings)
    registry.register_version("both", run_id, "model", tags={"loopml.allow_pickle": "true"})
    package = RegistrySource(registry).fetch("both", "1")
    assert package.onnx is not None
    assert package.pickle is None
    registry.db.dispose()


# --- model files and the CLI --------------------------------------------------------------------


def test_a_pickle_given_as_a_model_file_is_refused_as_onnx_only(tmp_path: Path) -> None:
    path = tmp_path / "legacy.onnx"  # a pickle whatever its name says
    path.write_bytes(_pickled_line())
    with pytest.raises(InvalidInputError, match="is a pickle; model files are served as ONNX"):
        FileSource({"legacy": path}).fetch("legacy", "1")


def test_the_removed_allow_pickle_flag_says_where_the_opt_in_lives(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--model", "legacy:1", "--allow-pickle"]) == 1
    err = capsys.readouterr().err
    assert "--allow-pickle is no longer a server option" in err
    assert "model.allow_pickle: true in loopml.yaml" in err
    assert "Traceback" not in err
