"""The parity check: onnxruntime against the native model, with errors that say where."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import numpy_helper
from sklearn.linear_model import LinearRegression, LogisticRegression

from loopml.package import ParityError, ParityReport, check_parity, export_onnx
from loopml.package.errors import PackagingError


@pytest.fixture
def linear() -> tuple[LinearRegression, pd.DataFrame]:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
    model = LinearRegression().fit(frame, 3 * frame["a"] - frame["b"] + 1)
    return model, frame


def _tamper_coefficients(onnx_bytes: bytes, factor: float) -> bytes:
    """Scale every float initializer of the graph: a model whose ONNX output differs."""
    proto = onnx.load_model_from_string(onnx_bytes)
    for i, init in enumerate(proto.graph.initializer):
        array = numpy_helper.to_array(init)
        if array.dtype.kind == "f" and array.size > 1:
            proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(array * factor, init.name))
    return proto.SerializeToString()


def test_a_faithful_export_passes_with_a_report(
    linear: tuple[LinearRegression, pd.DataFrame],
) -> None:
    model, frame = linear
    exported = export_onnx(model, frame, task="regression")

    report = check_parity(model, exported.onnx_bytes, frame, task="regression")

    assert report.passed
    (output,) = report.outputs
    assert output.output == "variable"
    assert output.native == "predict"
    assert output.max_abs_diff < 1e-12
    assert report.onnxruntime_version


def test_a_tampered_onnx_model_fails_naming_output_difference_row_and_tolerance(
    linear: tuple[LinearRegression, pd.DataFrame],
) -> None:
    model, frame = linear
    tampered = _tamper_coefficients(export_onnx(model, frame, task="regression").onnx_bytes, 1.01)

    with pytest.raises(ParityError) as err:
        check_parity(model, tampered, frame, task="regression")

    message = str(err.value)
    expected_diff = np.abs(0.01 * (model.predict(frame) - model.intercept_))
    worst = int(np.argmax(expected_diff))
    assert "ONNX output 'variable' differs from the native predict()" in message
    assert f"at row {worst}" in message
    assert f"max abs diff {expected_diff[worst]:.6g}" in message
    assert "rtol=0.0001, atol=1e-05" in message
    assert "loosen rtol/atol only if" in message
    assert err.value.report.passed is False
    assert err.value.code == "PARITY_FAILED"


def test_a_model_changed_after_export_fails_on_labels() -> None:
    frame = pd.DataFrame({"a": np.linspace(-3, 3, 40)})
    labels = (frame["a"] > 0).astype(int)
    model = LogisticRegression().fit(frame, labels)
    onnx_bytes = export_onnx(model, frame, task="binary").onnx_bytes
    model.coef_ = -model.coef_  # the native model now says the opposite

    with pytest.raises(ParityError, match=r"ONNX output 'label' disagrees with the native predict"):
        check_parity(model, onnx_bytes, frame, task="binary")


def test_without_raising_the_report_lists_every_output() -> None:
    frame = pd.DataFrame({"a": np.linspace(-3, 3, 40)})
    model = LogisticRegression().fit(frame, (frame["a"] > 0).astype(int))
    onnx_bytes = export_onnx(model, frame, task="binary").onnx_bytes
    model.coef_ = -model.coef_

    report = check_parity(model, onnx_bytes, frame, task="binary", raise_on_failure=False)

    assert not report.passed
    assert {o.output: o.passed for o in report.outputs} == {
        "label": False,
        "probabilities": False,
    }


def test_tolerance_is_respected(linear: tuple[LinearRegression, pd.DataFrame]) -> None:
    model, frame = linear
    tampered = _tamper_coefficients(export_onnx(model, frame, task="regression").onnx_bytes, 1.001)

    largest = float(np.max(np.abs(0.001 * (model.predict(frame) - model.intercept_))))

    loose = check_parity(model, tampered, frame, task="regression", atol=largest * 1.5)
    strict = check_parity(
        model, tampered, frame, task="regression", atol=largest / 2, raise_on_failure=False
    )

    assert loose.passed
    assert not strict.passed


def test_the_report_round_trips_through_json(
    linear: tuple[LinearRegression, pd.DataFrame],
) -> None:
    model, frame = linear
    report = check_parity(
        model, export_onnx(model, frame, task="regression").onnx_bytes, frame, task="regression"
    )

    again = ParityReport.from_dict(json.loads(json.dumps(report.to_dict())))

    assert again.to_dict() == report.to_dict()


def test_the_task_must_be_the_exported_one(linear: tuple[LinearRegression, pd.DataFrame]) -> None:
    model, frame = linear
    onnx_bytes = export_onnx(model, frame, task="regression").onnx_bytes

    with pytest.raises(PackagingError, match="exported for task 'regression', not 'binary'"):
        check_parity(model, onnx_bytes, frame, task="binary")


def test_an_empty_holdout_is_refused(linear: tuple[LinearRegression, pd.DataFrame]) -> None:
    model, frame = linear
    onnx_bytes = export_onnx(model, frame, task="regression").onnx_bytes

    with pytest.raises(PackagingError, match="at least one held-out row"):
        check_parity(model, onnx_bytes, frame.iloc[:0], task="regression")


def test_holdout_the_native_model_cannot_score_is_reported(
    linear: tuple[LinearRegression, pd.DataFrame],
) -> None:
    model, frame = linear
    onnx_bytes = export_onnx(model, frame, task="regression").onnx_bytes
    broken = frame.assign(a=np.nan)

    with pytest.raises(PackagingError, match="native model failed on the held-out data"):
        check_parity(model, onnx_bytes, broken, task="regression")


def test_polars_frames_are_accepted(linear: tuple[LinearRegression, pd.DataFrame]) -> None:
    import polars as pl

    model, frame = linear
    exported = export_onnx(model, pl.from_pandas(frame), task="regression")

    assert check_parity(model, exported.onnx_bytes, frame, task="regression").passed
    assert exported.signature.input_names == ("a", "b")
