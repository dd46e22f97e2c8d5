"""What a packaged model takes and returns: its :class:`Signature`.

A signature names every ONNX input and output with its dtype and shape, the task, the class
labels, and how request data maps onto the inputs (``input_layout``):

- ``"columns"``: one ONNX input per feature column, each of shape ``[-1, 1]`` with the column's
  own dtype (what scikit-learn pipelines with a ``ColumnTransformer`` export to);
- ``"tensor"``: one 2-D input ``[-1, k]`` holding every feature (a plain numeric model or a torch
  module); ``feature_names`` then gives the column order when it is known.

The signature travels inside ``model.onnx`` (metadata key ``loopml.signature``) and in the model
card, so a server needs nothing but the ONNX bytes. It is plain data: ``to_dict``/``from_dict``
round-trip through JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInputError
from loopml.package.errors import PackagingError

if TYPE_CHECKING:
    import onnx
    import onnxruntime

__all__ = [
    "DTYPES",
    "INPUT_LAYOUTS",
    "METADATA_KEY",
    "TASKS",
    "Signature",
    "TensorSpec",
]

DTYPES = ("float64", "float32", "int64", "string", "bool")
TASKS = ("regression", "binary", "multiclass")
INPUT_LAYOUTS = ("columns", "tensor")
METADATA_KEY = "loopml.signature"

# ONNX TensorProto element types <-> signature dtypes (only the ones a request can carry).
_ONNX_ELEM_TO_DTYPE = {1: "float32", 11: "float64", 7: "int64", 8: "string", 9: "bool"}
# onnxruntime's type strings, for signatures read off a live session.
_ORT_TYPE_TO_DTYPE = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(string)": "string",
    "tensor(bool)": "bool",
}
# Open Inference Protocol (KServe V2) datatype names, for servers that speak it.
_V2_DATATYPES = {
    "float64": "FP64",
    "float32": "FP32",
    "int64": "INT64",
    "string": "BYTES",
    "bool": "BOOL",
}


def _fail(message: str) -> InvalidInputError:
    return InvalidInputError(message, hint="a signature is normally written by loopml.package")


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: ``dtype`` is one of :data:`DTYPES`; ``-1`` in ``shape`` is the batch.

    ``nullable`` (inputs only) says whether NaN/None may be sent for this input: true only when
    the exported model was shown to give the native model's answer on a missing value.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    nullable: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise _fail(f"tensor name must be a non-empty string, got {self.name!r}")
        if self.dtype not in DTYPES:
            raise _fail(
                f"tensor {self.name!r} has dtype {self.dtype!r}; valid dtypes: {', '.join(DTYPES)}"
            )
        shape = tuple(self.shape)
        if not shape or any(not isinstance(d, int) or d < -1 or d == 0 for d in shape):
            raise _fail(
                f"tensor {self.name!r} has shape {list(self.shape)!r}; expected a list of "
                "positive sizes with -1 for variable ones, e.g. [-1, 1]"
            )
        object.__setattr__(self, "shape", shape)

    @property
    def v2_datatype(self) -> str:
        """The Open Inference Protocol datatype name (``FP64``, ``INT64``, ``BYTES``...)."""
        return _V2_DATATYPES[self.dtype]

    def describe(self) -> str:
        """Human form used in error messages: ``float64 [-1, 1]``."""
        return f"{self.dtype} {list(self.shape)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "nullable": self.nullable,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorSpec:
        try:
            return cls(
                name=data["name"],
                dtype=data["dtype"],
                shape=tuple(data["shape"]),
                nullable=bool(data.get("nullable", False)),
            )
        except (KeyError, TypeError) as exc:
            raise _fail(
                f"tensor spec {dict(data)!r} is malformed: needs 'name', 'dtype' and 'shape'"
            ) from exc


@dataclass(frozen=True)
class Signature:
    """Inputs, outputs, task and classes of a packaged model (see the module docstring)."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    task: str
    classes: tuple[Any, ...] | None = None
    input_layout: str = "columns"
    feature_names: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(self.classes))
        if self.feature_names is not None:
            object.__setattr__(self, "feature_names", tuple(self.feature_names))
        if self.task not in TASKS:
            raise _fail(f"task {self.task!r} is not one of {', '.join(TASKS)}")
        if self.input_layout not in INPUT_LAYOUTS:
            raise _fail(
                f"input_layout {self.input_layout!r} is not one of {', '.join(INPUT_LAYOUTS)}"
            )
        if not self.inputs or not self.outputs:
            raise _fail("a signature needs at least one input and one output")
        names = [spec.name for spec in self.inputs]
        if len(set(names)) != len(names):
            raise _fail(f"input names must be unique, got {names}")
        if self.input_layout == "tensor":
            if len(self.inputs) != 1 or len(self.inputs[0].shape) != 2:
                raise _fail("the 'tensor' layout needs exactly one 2-D input [-1, k]")
            width = self.inputs[0].shape[1]
            if self.feature_names is not None and width != -1 and len(self.feature_names) != width:
                raise _fail(
                    f"feature_names has {len(self.feature_names)} names but the input "
                    f"{self.inputs[0].name!r} has {width} columns"
                )
        elif any(spec.shape not in ((-1,), (-1, 1)) for spec in self.inputs):
            raise _fail("the 'columns' layout needs every input to have shape [-1] or [-1, 1]")
        if self.task != "regression" and self.classes is not None and len(self.classes) < 2:
            raise _fail(f"a {self.task} signature needs at least two classes")

    # --- convenient views ---------------------------------------------------------------------

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.outputs)

    @property
    def columns(self) -> tuple[str, ...]:
        """The feature columns a request names: one per input, or ``feature_names``."""
        if self.input_layout == "tensor":
            return self.feature_names or ()
        return self.input_names

    @property
    def prediction_output(self) -> str:
        """The output holding the answer: ``variable`` for regression, ``label`` otherwise."""
        wanted = "variable" if self.task == "regression" else "label"
        return wanted if wanted in self.output_names else self.outputs[0].name

    def input(self, name: str) -> TensorSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise InvalidInputError(
            f"the model has no input {name!r}",
            hint=f"inputs are: {', '.join(self.input_names)}",
        )

    # --- JSON ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [spec.to_dict() for spec in self.inputs],
            "outputs": [spec.to_dict() for spec in self.outputs],
            "task": self.task,
            "classes": list(self.classes) if self.classes is not None else None,
            "input_layout": self.input_layout,
            "feature_names": list(self.feature_names) if self.feature_names is not None else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        if not isinstance(data, Mapping):
            raise _fail(f"a signature must be a JSON object, got {type(data).__name__}")
        try:
            inputs: Sequence[Mapping[str, Any]] = data["inputs"]
            outputs: Sequence[Mapping[str, Any]] = data["outputs"]
            task = data["task"]
        except KeyError as exc:
            raise _fail(f"signature is missing the key {exc.args[0]!r}") from exc
        classes = data.get("classes")
        feature_names = data.get("feature_names")
        return cls(
            inputs=tuple(TensorSpec.from_dict(item) for item in inputs),
            outputs=tuple(TensorSpec.from_dict(item) for item in outputs),
            task=task,
            classes=tuple(classes) if classes is not None else None,
            input_layout=data.get("input_layout", "columns"),
            feature_names=tuple(feature_names) if feature_names is not None else None,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Signature:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise _fail(f"signature is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    # --- reading it back from a model ---------------------------------------------------------

    @classmethod
    def from_onnx(cls, model: bytes | onnx.ModelProto) -> Signature:
        """The signature stored in an ONNX model, or one inferred from its graph.

        Models exported by loopml carry their signature in the metadata; for any other ONNX
        file the inputs and outputs are read from the graph and the task is guessed
        (``probabilities`` or ``scores`` output → classification).
        """
        import onnx

        if isinstance(model, bytes | bytearray | memoryview):
            try:
                proto = onnx.load_model_from_string(bytes(model))
            except Exception as exc:  # protobuf raises its own DecodeError
                raise PackagingError(
                    "the bytes given are not an ONNX model",
                    hint="pass the content of a model.onnx file",
                ) from exc
        else:
            proto = model
        metadata = {prop.key: prop.value for prop in proto.metadata_props}
        inputs = [_spec_from_value_info(v, nullable=False) for v in proto.graph.input]
        # Initializers may be listed as graph inputs in old IR versions; they are not features.
        initializers = {init.name for init in proto.graph.initializer}
        inputs = [spec for spec in inputs if spec.name not in initializers]
        outputs = [_spec_from_value_info(v, nullable=False) for v in proto.graph.output]
        return _merge_with_metadata(metadata.get(METADATA_KEY), inputs, outputs)

    @classmethod
    def from_session(cls, session: onnxruntime.InferenceSession) -> Signature:
        """The signature of a loaded session, without parsing the model a second time."""
        metadata = session.get_modelmeta().custom_metadata_map
        inputs = [_spec_from_ort(arg) for arg in session.get_inputs()]
        outputs = [_spec_from_ort(arg) for arg in session.get_outputs()]
        return _merge_with_metadata(metadata.get(METADATA_KEY), inputs, outputs)


def _merge_with_metadata(
    stored: str | None, inputs: list[TensorSpec], outputs: list[TensorSpec]
) -> Signature:
    """Trust the stored signature only when it still describes the graph it sits in."""
    if stored:
        signature = Signature.from_json(stored)
        graph_in = {(s.name, s.dtype) for s in inputs}
        graph_out = {(s.name, s.dtype) for s in outputs}
        if {(s.name, s.dtype) for s in signature.inputs} == graph_in and {
            (s.name, s.dtype) for s in signature.outputs
        } == graph_out:
            return signature
    names = {spec.name for spec in outputs}
    task = "regression"
    classes = None
    for output in outputs:
        if output.name in ("probabilities", "scores") and len(output.shape) == 2:
            task = "binary" if output.shape[1] == 2 else "multiclass"
    if task != "regression" and "label" not in names:
        task = "regression"
    layout = "columns"
    if len(inputs) == 1 and len(inputs[0].shape) == 2 and inputs[0].shape[1] != 1:
        layout = "tensor"
    if layout == "columns":
        inputs = [
            TensorSpec(s.name, s.dtype, (-1, 1) if len(s.shape) == 2 else (-1,)) for s in inputs
        ]
    return Signature(
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        task=task,
        classes=classes,
        input_layout=layout,
    )


def _spec_from_value_info(value: Any, *, nullable: bool) -> TensorSpec:
    tensor_type = value.type.tensor_type
    dtype = _ONNX_ELEM_TO_DTYPE.get(tensor_type.elem_type)
    if dtype is None:
        raise PackagingError(
            f"ONNX tensor {value.name!r} has element type {tensor_type.elem_type}, which a "
            f"loopml request cannot carry; supported: {', '.join(DTYPES)}",
            hint="export the model with float, double, int64, string or bool inputs and outputs",
        )
    dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim)
    return TensorSpec(value.name, dtype, dims or (-1,), nullable=nullable)


def _spec_from_ort(arg: Any) -> TensorSpec:
    dtype = _ORT_TYPE_TO_DTYPE.get(arg.type)
    if dtype is None:
        raise PackagingError(
            f"ONNX tensor {arg.name!r} has type {arg.type}, which a loopml request cannot carry",
            hint="export the model with float, double, int64, string or bool inputs and outputs",
        )
    dims = tuple(d if isinstance(d, int) and d > 0 else -1 for d in arg.shape)
    return TensorSpec(arg.name, dtype, dims or (-1,))
