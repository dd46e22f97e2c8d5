"""torch networks to ONNX: bare modules, and loopml's MLP inside a feature pipeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest

from loopml.package import check_parity, export_onnx, export_torch_onnx, frame_to_feed

torch = pytest.importorskip("torch", reason="the torch extra is not installed")


class Doubler(torch.nn.Module):
    """y = 2 * x0 + x1 - 0.5 * x2, as a tiny network with known weights."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([[2.0, 1.0, -0.5]]))
            self.linear.bias.fill_(0.25)

    def forward(self, x: Any) -> Any:
        return self.linear(x)


@pytest.fixture
def features() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    return pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])


def test_a_bare_regression_module_exports_with_a_tensor_input(features: pd.DataFrame) -> None:
    module = Doubler()

    exported = export_torch_onnx(module, features, task="regression")
    session = ort.InferenceSession(exported.onnx_bytes)
    (predictions,) = session.run(None, {"input": np.array([[1.0, 2.0, 4.0]], dtype=np.float32)})

    assert predictions.tolist() == [[pytest.approx(2.0 + 2.0 - 2.0 + 0.25)]]
    assert exported.signature.input_layout == "tensor"
    assert exported.signature.feature_names == ("a", "b", "c")
    assert exported.converter.startswith("torch ")
    assert check_parity(module, exported.onnx_bytes, features, task="regression").passed


def test_a_batch_of_any_size_runs(features: pd.DataFrame) -> None:
    exported = export_torch_onnx(Doubler(), features, task="regression")
    session = ort.InferenceSession(exported.onnx_bytes)

    for n in (1, 7, 40):
        (out,) = session.run(None, frame_to_feed(exported.signature, features.iloc[:n]))
        assert out.shape == (n, 1)


def test_a_classifier_module_gets_softmax_labels_and_probabilities(
    features: pd.DataFrame,
) -> None:
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))

    exported = export_torch_onnx(
        module, features, task="multiclass", classes=["low", "mid", "high"]
    )
    report = check_parity(module, exported.onnx_bytes, features, task="multiclass")

    assert report.passed
    assert exported.signature.output_names == ("label", "probabilities")
    assert exported.signature.outputs[0].dtype == "string"
    session = ort.InferenceSession(exported.onnx_bytes)
    labels, probabilities = session.run(None, frame_to_feed(exported.signature, features))
    assert set(labels.tolist()) <= {"low", "mid", "high"}
    assert np.allclose(probabilities.sum(axis=1), 1.0)


def test_a_single_logit_binary_module_gets_two_probability_columns(
    features: pd.DataFrame,
) -> None:
    module = Doubler()

    exported = export_torch_onnx(module, features, task="binary", classes=[0, 1])
    report = check_parity(module, exported.onnx_bytes, features, task="binary")

    assert report.passed
    assert exported.signature.outputs[1].shape == (-1, 2)


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_the_mlp_candidate_exports_with_its_feature_transform(
    task: str, fit_candidate: Callable[..., Any], holdout_frame: pd.DataFrame
) -> None:
    model = fit_candidate("mlp", task, epochs=3, hidden_units=8)

    exported = export_onnx(model, holdout_frame, task=task)
    report = check_parity(model, exported.onnx_bytes, holdout_frame, task=task)

    assert report.passed, report.to_dict()
    assert exported.signature.input_layout == "columns"
    assert exported.signature.input("city").dtype == "string"


def test_a_regression_module_with_several_outputs_is_refused(features: pd.DataFrame) -> None:
    from loopml.package import PackagingError

    with pytest.raises(PackagingError, match="one value per row, this one returns 2"):
        export_torch_onnx(torch.nn.Linear(3, 2), features, task="regression")
