"""What a packaged model takes and returns: its :class:`Signature`.

A signature names every ONNX input and output with its dtype and shape, the task, the class
labels, and how request data maps onto the inputs (``input_layout``):

- ``"columns"``: one ONNX input per feature column, each of shape ``[-1, 1]`` with the column's
  own dtype (what scikit-learn pipelines with a ``ColumnTransformer`` export to);
- ``"tensor"``: one 2-D input ``[-1, k]`` holding every feature (a plain numeric model or a torch
  module); ``feature_names`` then gives the column order when it is known.

The signature travels inside ``model.onnx`` (metadata key ``loopml.signature``) and in the model
card, so a server needs nothing but the ONNX bytes. It is plain data: ``to_dict``/``from_dict``
round-trip through JSON. The server reads the same type (:meth:`Signature.from_session`), and
:mod:`loopml.package.feed` turns request data into the feed it describes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInputError
from loopml.package.errors import PackagingError

if TYPE_CHECKING:
    import numpy as np
    import onnx
    import onnxruntime

__all__ = [
    "DTYPES",
    "INPUT_LAYOUTS",
    "METADATA_KEY",
    "TASKS",
    "V2_DATATYPES",
    "Signature",
    "TensorSpec",
]

# What loopml's own exports produce come first; the other numeric types are there so that any
# ONNX file with tensor inputs can be served (``loopml serve --model-file``).
DTYPES = (
    "float64",
    "float32",
    "int64",
    "string",
    "bool",
    "float16",
    "int32",
    "int16",
    "int8",
    "uint64",
    "uint32",
    "uint16",
    "uint8",
)
TASKS = ("regression", "binary", "multiclass")
INPUT_LAYOUTS = ("columns", "tensor")
METADATA_KEY = "loopml.signature"

# ONNX TensorProto element types <-> signature dtypes (only the ones a request can carry).
_ONNX_ELEM_TO_DTYPE = {
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "string",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
}
# onnxruntime's type strings, for signatures read off a live session.
_ORT_TYPE_TO_DTYPE = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(string)": "string",
    **{f"tensor({name})": name for name in DTYPES if name not in ("float32", "float64", "string")},
}
# skl2onnx's ZipMap output, a sequence of {class: probability} maps, reads as the [rows,
# classes] tensor of its values: that is how a server answers it.
_ORT_ZIPMAP = re.compile(r"seq\(map\((?:int64|string),tensor\((float|double)\)\)\)")
#: numpy dtype name -> Open Inference Protocol (KServe V2) datatype; strings travel as BYTES.
V2_DATATYPES: dict[str, str] = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "object": "BYTES",
}
# Preferred outputs for ``predictions`` when the task's own (variable / label) is absent, as
# in ONNX files not exported by loopml (skl2onnx names its label ``output_label``).
_PREDICTION_OUTPUTS = ("label", "output_label", "predictions", "variable")


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

    @cached_property
    def np_dtype(self) -> np.dtype[Any]:
        """The numpy dtype of the array onnxruntime takes (``object`` for strings)."""
        import numpy as np

        return np.dtype(object if self.dtype == "string" else self.dtype)

    @property
    def width(self) -> int | None:
        """Values per row of a ``[batch, width]`` tensor, or ``None`` (other ranks, or a
        variable width)."""
        shape = self.shape
        if len(shape) == 2 and shape[1] > 0:
            return shape[1]
        return None

    @property
    def v2_datatype(self) -> str:
        """The Open Inference Protocol datatype name (``FP64``, ``INT64``, ``BYTES``...)."""
        return V2_DATATYPES[self.np_dtype.name]

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
        """The output holding the answer: ``variable`` for regression, ``label`` otherwise
        (for other ONNX files: a label-like output if there is one, else the first)."""
        names = self.output_names
        wanted = "variable" if self.task == "regression" else "label"
        if wanted in names:
            return wanted
        return next((name for name in _PREDICTION_OUTPUTS if name in names), names[0])

    @property
    def batchable(self) -> bool:
        """Whether requests can be stacked into one call: every input has a variable batch."""
        return all(spec.shape[0] == -1 for spec in self.inputs)

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
    def from_session(
        cls,
        session: onnxruntime.InferenceSession,
        *,
        declared: Signature | Mapping[str, Any] | None = None,
    ) -> Signature:
        """The signature of a loaded session, without parsing the model a second time.

        ``declared`` is a signature recorded outside the file (the registry, a model card): it
        must describe this graph's inputs and outputs, or :class:`InvalidInputError` says
        so. Without it, the signature stored in the model's metadata is used while it still
        matches the graph, and one is inferred from the graph otherwise.
        """
        metadata = session.get_modelmeta().custom_metadata_map
        inputs = [_spec_from_ort(arg) for arg in session.get_inputs()]
        outputs = [_spec_from_ort(arg) for arg in session.get_outputs()]
        if declared is None:
            return _merge_with_metadata(metadata.get(METADATA_KEY), inputs, outputs)
        signature = declared if isinstance(declared, Signature) else cls.from_dict(declared)
        if not _describes(signature, inputs, outputs):
            raise InvalidInputError(
                "the model's recorded signature does not describe its ONNX graph: it has "
                f"inputs {list(signature.input_names)} and outputs "
                f"{list(signature.output_names)}; the graph has "
                + ", ".join(f"{s.name} {s.describe()}" for s in inputs)
                + " -> "
                + ", ".join(f"{s.name} {s.describe()}" for s in outputs),
                hint="re-register the model so its card is written from the exported graph",
            )
        return signature


def _describes(signature: Signature, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> bool:
    """Whether ``signature`` names the graph's inputs and outputs with their dtypes."""
    return {(s.name, s.dtype) for s in signature.inputs} == {
        (s.name, s.dtype) for s in inputs
    } and {(s.name, s.dtype) for s in signature.outputs} == {(s.name, s.dtype) for s in outputs}


def _merge_with_metadata(
    stored: str | None, inputs: list[TensorSpec], outputs: list[TensorSpec]
) -> Signature:
    """Trust the stored signature only when it still describes the graph it sits in."""
    if stored:
        signature = Signature.from_json(stored)
        if _describes(signature, inputs, outputs):
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
    kind = value.type
    if kind.HasField("sequence_type") and kind.sequence_type.elem_type.HasField("map_type"):
        values = kind.sequence_type.elem_type.map_type.value_type.tensor_type.elem_type
        if values in (1, 11):  # a ZipMap of float or double probabilities
            return TensorSpec(value.name, _ONNX_ELEM_TO_DTYPE[values], (-1, -1))
    tensor_type = kind.tensor_type
    dtype = _ONNX_ELEM_TO_DTYPE.get(tensor_type.elem_type)
    if dtype is None:
        raise PackagingError(
            f"ONNX tensor {value.name!r} has element type {tensor_type.elem_type}, which a "
            f"loopml request cannot carry; supported: {', '.join(DTYPES)}",
            hint="export the model with numeric, string or bool tensor inputs and outputs",
        )
    dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim)
    return TensorSpec(value.name, dtype, dims or (-1,), nullable=nullable)


def _spec_from_ort(arg: Any) -> TensorSpec:
    dtype = _ORT_TYPE_TO_DTYPE.get(arg.type)
    if dtype is None:
        zipmap = _ORT_ZIPMAP.fullmatch(arg.type)
        if zipmap is not None:
            return TensorSpec(arg.name, _ORT_TYPE_TO_DTYPE[f"tensor({zipmap[1]})"], (-1, -1))
        raise PackagingError(
            f"ONNX tensor {arg.name!r} has type {arg.type}, which a loopml request cannot carry",
            hint="export the model with numeric, string or bool tensor inputs and outputs",
        )
    dims = tuple(d if isinstance(d, int) and d > 0 else -1 for d in arg.shape)
    return TensorSpec(arg.name, dtype, dims or (-1,))
