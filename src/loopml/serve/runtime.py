"""Running one model version: its input/output schema and the engine that executes it.

The schema comes from the packaged signature (``inputs``/``outputs`` with ``name``, ``dtype``,
``shape``; ``task``; ``classes``; ``input_layout``) and is checked against the ONNX graph, so
the server never trusts a card that disagrees with the model. Engines: onnxruntime (always),
and a pickled scikit-learn estimator only when the operator opted in with ``allow_pickle``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from loopml.errors import InvalidInputError, LoopMLError

__all__ = [
    "V2_DATATYPES",
    "ModelSchema",
    "OnnxEngine",
    "PickleEngine",
    "TensorSpec",
    "load_engine",
]

# numpy dtype -> Open Inference Protocol datatype, and back.
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
_ONNX_TYPES = {
    "float": "float32",
    "double": "float64",
    "float16": "float16",
    "int64": "int64",
    "int32": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "uint64": "uint64",
    "bool": "bool",
    "string": "object",
}
_DTYPE_ALIASES = {"str": "object", "string": "object", "float": "float32", "double": "float64"}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One input or output: name, numpy dtype and shape (``-1`` for a variable dimension)."""

    name: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]

    @property
    def datatype(self) -> str:
        """The Open Inference Protocol datatype (``FP32``, ``INT64``, ``BYTES``...)."""
        return V2_DATATYPES.get(self.dtype.name, "BYTES")

    @property
    def width(self) -> int | None:
        """Values per row of a ``[batch, width]`` tensor, or ``None`` for other ranks."""
        if len(self.shape) == 2 and self.shape[1] > 0:
            return self.shape[1]
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class ModelSchema:
    """How requests map onto the model's inputs and how its outputs read."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    layout: str  # "tensor": one [batch, n_features] input; "columns": one input per column
    features: tuple[str, ...] | None = None
    task: str | None = None
    classes: tuple[Any, ...] | None = None
    nullable: frozenset[str] = frozenset()  # inputs that accept NaN/null (signature says so)

    @property
    def batchable(self) -> bool:
        """Whether requests can be stacked: every input has a variable first dimension."""
        return all(spec.shape[:1] == (-1,) for spec in self.inputs)

    @property
    def prediction_output(self) -> str:
        """The output returned as ``predictions``: the label for classifiers, else the first."""
        names = [spec.name for spec in self.outputs]
        for preferred in ("label", "output_label", "predictions", "variable"):
            if preferred in names:
                return preferred
        return names[0]

    def columns(self) -> tuple[str, ...] | None:
        """Column names a request may use, in order (``None`` when the model has none)."""
        if self.layout == "columns":
            return tuple(spec.name for spec in self.inputs)
        return self.features

    @classmethod
    def build(
        cls, signature: dict[str, Any] | None, graph: list[TensorSpec], outputs: list[TensorSpec]
    ) -> ModelSchema:
        """Merge the packaged ``signature`` with what the ONNX graph declares.

        The graph wins on names, dtypes and ranks; the signature adds the layout, feature
        names, task and classes. A signature naming inputs the graph lacks is rejected.
        """
        sig = signature or {}
        graph_names = [spec.name for spec in graph]
        declared = [
            str(item.get("name")) for item in sig.get("inputs") or [] if isinstance(item, dict)
        ]
        unknown = [name for name in declared if name not in graph_names]
        if declared and unknown and sig.get("input_layout", "columns") == "columns":
            raise InvalidInputError(
                f"the model signature names inputs {unknown} that the ONNX graph does not have "
                f"(graph inputs: {graph_names})",
                hint="re-register the model so its card is written from the exported graph",
            )
        layout = sig.get("input_layout")
        if layout not in ("tensor", "columns"):
            layout = "tensor" if len(graph) == 1 and (graph[0].width or 0) >= 1 else "columns"
        features = sig.get("features") or sig.get("feature_names") or sig.get("columns")
        if (
            layout == "tensor"
            and not features
            and declared
            and len(declared) == (graph[0].width or 0)
        ):
            # A tensor-layout signature may list one entry per feature column.
            features = declared
        if features is not None:
            features = tuple(str(f) for f in features)
            if layout == "tensor" and graph[0].width not in (None, len(features)):
                features = None
        classes = sig.get("classes")
        return cls(
            inputs=tuple(graph),
            outputs=tuple(outputs),
            layout=layout,
            features=features,
            task=sig.get("task"),
            classes=tuple(classes) if classes else None,
            nullable=frozenset(
                str(item.get("name"))
                for item in sig.get("inputs") or []
                if isinstance(item, dict) and item.get("nullable")
            ),
        )


class Engine(Protocol):
    """Executes a feed of named arrays; outputs come back in ``schema.outputs`` order."""

    schema: ModelSchema

    def run(self, feed: dict[str, np.ndarray]) -> list[Any]: ...


class OnnxEngine:
    """onnxruntime, one thread by default: the server scales with processes, not threads."""

    def __init__(self, onnx: bytes, signature: dict[str, Any] | None, *, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Spinning threads would steal the core the event loop needs between requests.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise InvalidInputError(
                f"the ONNX model cannot be loaded by onnxruntime: {str(exc)[:300]}",
                hint="re-export the model with loopml's packaging step (loopml models package)",
            ) from None
        if signature is None:
            # loopml's packaging stores the signature in the model's own metadata.
            import orjson

            stored = self._session.get_modelmeta().custom_metadata_map.get("loopml.signature")
            if stored:
                try:
                    signature = orjson.loads(stored)
                except orjson.JSONDecodeError:
                    signature = None
        graph = [_spec(arg) for arg in self._session.get_inputs()]
        outputs = [_spec(arg) for arg in self._session.get_outputs()]
        self.schema = ModelSchema.build(signature, graph, outputs)
        names = [spec.name for spec in outputs]
        inner = getattr(self._session, "_sess", None)
        if inner is not None and hasattr(inner, "run"):
            # The binding under InferenceSession.run: same call, without the per-call checks
            # of the Python wrapper (a third of the cost of running a linear model).
            self._run = lambda feed: inner.run(names, feed, None)
        else:  # pragma: no cover - other onnxruntime layouts
            self._run = lambda feed: self._session.run(names, feed)

    def run(self, feed: dict[str, np.ndarray]) -> list[Any]:
        try:
            return self._run(feed)
        except Exception as exc:
            raise InvalidInputError(f"the model rejected the input: {_short(exc)}") from None


class PickleEngine:
    """A pickled estimator with ``predict`` (opt-in: unpickling runs arbitrary code)."""

    def __init__(self, payload: bytes, signature: dict[str, Any] | None) -> None:
        import pickle

        self._model = pickle.loads(payload)
        sig = signature or {}
        graph = [_spec_from_signature(item) for item in sig.get("inputs") or []]
        if not graph:
            raise InvalidInputError(
                "a pickled model needs a signature listing its inputs",
                hint="register the model with a signature, or export it to ONNX",
            )
        outputs = [TensorSpec("predictions", np.dtype("float64"), (-1,))]
        self.schema = ModelSchema.build(sig, graph, outputs)

    def run(self, feed: dict[str, np.ndarray]) -> list[Any]:
        if self.schema.layout == "tensor":
            matrix = feed[self.schema.inputs[0].name]
            frame: Any = matrix
            if self.schema.features:
                import pandas as pd

                frame = pd.DataFrame(matrix, columns=list(self.schema.features))
        else:
            import pandas as pd

            frame = pd.DataFrame({name: values.reshape(-1) for name, values in feed.items()})
        try:
            return [np.asarray(self._model.predict(frame))]
        except Exception as exc:
            raise InvalidInputError(f"the model rejected the input: {_short(exc)}") from None


def load_engine(
    onnx: bytes | None,
    pickle: bytes | None,
    signature: dict[str, Any] | None,
    *,
    allow_pickle: bool,
    threads: int = 1,
    label: str,
) -> tuple[Engine, float]:
    """Build the engine for one model version; returns it with its load time in seconds."""
    started = time.perf_counter()
    engine: Engine
    if onnx is not None:
        engine = OnnxEngine(onnx, signature, threads=threads)
    elif pickle is not None and allow_pickle:
        engine = PickleEngine(pickle, signature)
    elif not allow_pickle:
        raise LoopMLError(
            f"model {label} has no ONNX artifact, and serving pickles is not allowed",
            hint="package it to ONNX (loopml models package), or opt in with allow_pickle: true "
            "if you trust who wrote the pickle (loading one executes code)",
        )
    else:
        raise LoopMLError(f"model {label} has neither an ONNX artifact nor a pickle")
    return engine, time.perf_counter() - started


def _spec(arg: Any) -> TensorSpec:
    kind = str(arg.type)
    inner = kind[len("tensor(") : -1] if kind.startswith("tensor(") else kind
    dtype = np.dtype(_ONNX_TYPES.get(inner, "object"))
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or []))
    return TensorSpec(arg.name, dtype, shape)


def _spec_from_signature(item: dict[str, Any]) -> TensorSpec:
    name = str(item.get("name"))
    dtype_name = str(item.get("dtype", "float32"))
    dtype = np.dtype(_DTYPE_ALIASES.get(dtype_name, dtype_name))
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in item.get("shape") or [-1, 1])
    return TensorSpec(name, dtype, shape)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return text[:300]
