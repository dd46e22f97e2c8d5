"""Signatures: plain JSON data, stored in the ONNX file, validated on the way in."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from onnx import TensorProto, helper
from sklearn.linear_model import LogisticRegression

from loopml.errors import InvalidInputError
from loopml.package import PackagingError, Signature, TensorSpec, export_onnx, load_onnx_session


def _signature() -> Signature:
    return Signature(
        inputs=(
            TensorSpec("age", "int64", (-1, 1)),
            TensorSpec("income", "float64", (-1, 1), nullable=True),
            TensorSpec("city", "string", (-1, 1)),
            TensorSpec("member", "bool", (-1, 1)),
        ),
        outputs=(
            TensorSpec("label", "string", (-1,)),
            TensorSpec("probabilities", "float64", (-1, 2)),
        ),
        task="binary",
        classes=("approved", "declined"),
    )


def test_a_signature_round_trips_through_json() -> None:
    signature = _signature()

    again = Signature.from_json(signature.to_json())

    assert again == signature
    assert json.loads(signature.to_json())["inputs"][1] == {
        "name": "income",
        "dtype": "float64",
        "shape": [-1, 1],
        "nullable": True,
    }


def test_the_exported_model_carries_its_signature() -> None:
    frame = pd.DataFrame({"a": np.linspace(-1, 1, 30), "b": np.linspace(2, 0, 30)})
    model = LogisticRegression().fit(frame, np.where(frame["a"] > 0, "yes", "no"))
    exported = export_onnx(model, frame, task="binary")

    from_bytes = Signature.from_onnx(exported.onnx_bytes)
    from_session = Signature.from_session(load_onnx_session(exported.onnx_bytes))

    assert from_bytes == exported.signature == from_session
    assert from_bytes.classes == ("no", "yes")
    assert from_bytes.prediction_output == "label"


def test_a_foreign_onnx_model_gets_an_inferred_signature() -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["variable"])],
        "foreign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, ["N", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])

    signature = Signature.from_onnx(model.SerializeToString())

    assert signature.input_layout == "tensor"
    assert signature.inputs == (TensorSpec("x", "float32", (-1, 4)),)
    assert signature.task == "regression"


def test_a_stored_signature_that_no_longer_matches_the_graph_is_ignored() -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["variable"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["N", 1])],
        [helper.make_tensor_value_info("variable", TensorProto.DOUBLE, ["N", 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    entry = model.metadata_props.add()
    entry.key = "loopml.signature"
    entry.value = _signature().to_json()  # describes other inputs

    signature = Signature.from_onnx(model)

    assert signature.input_names == ("x",)


def test_bytes_that_are_not_onnx_are_refused() -> None:
    with pytest.raises(PackagingError, match="not an ONNX model"):
        Signature.from_onnx(b"definitely not protobuf \xff\xfe")


def test_a_model_with_an_unsupported_input_type_is_refused() -> None:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.COMPLEX64, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.COMPLEX64, ["N", 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])

    with pytest.raises(PackagingError, match="'x' has element type 14"):
        Signature.from_onnx(model.SerializeToString())


def test_any_numeric_tensor_type_is_described_so_foreign_files_can_be_served() -> None:
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT32)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, ["N", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])

    from_bytes = Signature.from_onnx(model.SerializeToString())
    from_session = Signature.from_session(load_onnx_session(model.SerializeToString()))

    assert from_bytes == from_session
    assert from_bytes.inputs == (TensorSpec("x", "float16", (-1, 3)),)
    assert [s.v2_datatype for s in (*from_bytes.inputs, *from_bytes.outputs)] == ["FP16", "INT32"]


def test_a_zipmap_output_reads_as_its_probability_tensor() -> None:
    from skl2onnx import to_onnx

    x = np.linspace(-1, 1, 40).reshape(-1, 1).astype(np.float32)
    model = LogisticRegression().fit(x, (x[:, 0] > 0).astype(np.int64))
    onnx_bytes = to_onnx(model, x[:1]).SerializeToString()  # skl2onnx's default: a ZipMap

    signature = Signature.from_session(load_onnx_session(onnx_bytes))

    assert signature == Signature.from_onnx(onnx_bytes)
    assert signature.output_names == ("output_label", "output_probability")
    assert signature.outputs[1] == TensorSpec("output_probability", "float32", (-1, -1))
    assert signature.prediction_output == "output_label"
    assert signature.batchable


def test_a_recorded_signature_must_describe_the_graph_it_is_served_with() -> None:
    frame = pd.DataFrame({"a": np.linspace(-1, 1, 30), "b": np.linspace(2, 0, 30)})
    model = LogisticRegression().fit(frame, np.where(frame["a"] > 0, "yes", "no"))
    exported = export_onnx(model, frame, task="binary")
    session = load_onnx_session(exported.onnx_bytes)

    assert Signature.from_session(session, declared=exported.signature.to_dict()) == (
        exported.signature
    )
    with pytest.raises(InvalidInputError, match="does not describe its ONNX graph") as err:
        Signature.from_session(session, declared=_signature())
    assert "re-register" in (err.value.hint or "")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "ranking"}, "task 'ranking' is not one of"),
        ({"input_layout": "rows"}, "input_layout 'rows' is not one of"),
        ({"inputs": []}, "at least one input and one output"),
        ({"classes": ["only"]}, "at least two classes"),
    ],
)
def test_invalid_signatures_are_refused(change: dict[str, object], message: str) -> None:
    data = {**_signature().to_dict(), **change}

    with pytest.raises(InvalidInputError, match=message):
        Signature.from_dict(data)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "x", "dtype": "complex", "shape": [-1, 1]}, "dtype 'complex'"),
        ({"name": "x", "dtype": "float64", "shape": [0, 1]}, "shape \\[0, 1\\]"),
        ({"name": "", "dtype": "float64", "shape": [-1]}, "non-empty string"),
        ({"dtype": "float64", "shape": [-1]}, "needs 'name', 'dtype' and 'shape'"),
    ],
)
def test_invalid_tensor_specs_are_refused(spec: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        TensorSpec.from_dict(spec)


def test_the_tensor_layout_checks_feature_names_against_the_width() -> None:
    with pytest.raises(InvalidInputError, match="feature_names has 2 names but the input"):
        Signature(
            inputs=(TensorSpec("input", "float32", (-1, 3)),),
            outputs=(TensorSpec("variable", "float64", (-1, 1)),),
            task="regression",
            input_layout="tensor",
            feature_names=("a", "b"),
        )


def test_v2_datatypes_follow_the_open_inference_protocol() -> None:
    assert [spec.v2_datatype for spec in _signature().inputs] == ["INT64", "FP64", "BYTES", "BOOL"]
