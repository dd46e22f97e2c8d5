"""Pickles are served only when the operator opts in: loading one runs arbitrary code."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from loopml.errors import LoopMLError
from loopml.serve import ModelPackage, Resolved, ServeSettings, create_app

from .conftest import TestClient

SIGNATURE = {
    "inputs": [{"name": "x", "dtype": "float64", "shape": [-1, 1]}],
    "outputs": [{"name": "variable", "dtype": "float64", "shape": [-1, 1]}],
    "task": "regression",
    "input_layout": "columns",
}


class PickleOnlySource:
    """A registry whose only version has a pickle and no ONNX file."""

    def __init__(self) -> None:
        x = pd.DataFrame({"x": np.arange(10.0)})
        self.payload = pickle.dumps(LinearRegression().fit(x, 2 * x["x"]))

    def resolve(self, ref: str) -> Resolved:
        return Resolved("legacy", "1")

    def fetch(self, name: str, version: str, *, allow_pickle: bool = False) -> ModelPackage:
        return ModelPackage(
            name, version, None, signature=SIGNATURE, pickle=self.payload if allow_pickle else None
        )


def test_a_pickle_is_refused_by_default_with_the_way_out(tmp_path: Any) -> None:
    settings = ServeSettings(models=("legacy:1",), log_dir=str(tmp_path / "logs"))
    with pytest.raises(
        LoopMLError, match="has no ONNX artifact, and serving pickles is not allowed"
    ) as info:
        create_app(settings, source=PickleOnlySource(), home=tmp_path)
    assert "allow_pickle" in str(info.value.hint)


def test_a_pickle_is_served_when_allowed(tmp_path: Any) -> None:
    settings = ServeSettings(
        models=("legacy:1",), allow_pickle=True, log_dir=str(tmp_path / "logs")
    )
    with TestClient(create_app(settings, source=PickleOnlySource(), home=tmp_path)) as client:
        response = client.post("/predict", json={"instances": [[1.0], [3.0]]})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pytest.approx([2.0, 6.0])
