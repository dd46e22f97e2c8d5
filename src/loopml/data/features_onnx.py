"""ONNX export of the feature transforms: the one set of converters for loopml's own
transformers, and the graph inputs feature columns travel as.

Each feature column is one graph input named after the column, of shape ``[N, 1]``.
:func:`column_wire_type` says how a column travels by its dtype (numbers, booleans, strings,
and datetimes as int64 seconds since the Unix epoch: ONNX has no date type);
:func:`onnx_input_types` says what :func:`to_onnx`'s graph takes per feature spec: numeric
transforms (:data:`~loopml.data.features.NUMERIC_TRANSFORMS`) take float whatever the column's
dtype, as a trained model does (see :func:`~loopml.data.features.model_frame`);
``onehot``/``ordinal`` take string (or int64 for integer categories); ``date_parts`` takes
int64 epoch seconds (:func:`onnx_inputs` does that conversion for a data frame).

The converters registered here compute in the precision of their input: a ``double`` input
gives ``double`` arithmetic and output, exactly as scikit-learn and NumPy compute (a float32
rounding of a feature is enough to send a row down the other branch of a tree); a ``float``
input gives ``float`` output. :mod:`loopml.package` exports through these same converters, and
builds its own with :class:`OnnxGraph`, :func:`log1p_graph` and :func:`bucket_graph`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.data.errors import ExportUnsupportedError
from loopml.data.features import NUMERIC_TRANSFORMS, FeatureSpec, load_features

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "OnnxGraph",
    "bucket_graph",
    "column_wire_type",
    "elem_type",
    "input_width",
    "log1p_graph",
    "onnx_input_types",
    "onnx_inputs",
    "register_converters",
    "tensor_type_like",
    "to_onnx",
]

_LOCK = threading.Lock()
_REGISTERED = False

# ONNX element types (onnx.TensorProto), spelled out so this module imports onnx lazily
_INT64, _DOUBLE = 7, 11


def register_converters() -> None:
    """Teach skl2onnx loopml's transformers (idempotent, thread-safe; called by
    :func:`to_onnx` and by :mod:`loopml.package`)."""
    global _REGISTERED
    if _REGISTERED:
        return
    with _LOCK:
        if _REGISTERED:
            return
        from skl2onnx import update_registered_converter

        from loopml.data.transformers import Bucketizer, DateParts, Log1p

        update_registered_converter(Log1p, "LoopmlLog1p", _log1p_shape, _convert_log1p)
        update_registered_converter(
            Bucketizer, "LoopmlBucketizer", _bucketizer_shape, _convert_bucketizer
        )
        update_registered_converter(
            DateParts, "LoopmlDateParts", _date_parts_shape, _convert_date_parts
        )
        _REGISTERED = True


def column_wire_type(values: pd.Series) -> str | None:
    """How a data-frame column travels into an ONNX graph, decided by its dtype.

    ``"bool"``, ``"int64"`` (integers without missing values), ``"float64"`` (other numbers),
    ``"string"`` (text, all non-missing values ``str``), ``"datetime"`` (sent as int64 epoch
    seconds), or None when ONNX has no input type for it. A categorical column travels as
    its categories do.
    """
    import pandas as pd

    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = dtype.categories
        if pd.api.types.is_integer_dtype(categories.dtype) and not values.isna().any():
            return "int64"
    elif pd.api.types.is_bool_dtype(dtype):
        return "bool"
    elif pd.api.types.is_integer_dtype(dtype) and not values.isna().any():
        return "int64"
    elif pd.api.types.is_numeric_dtype(dtype):
        return "float64"
    elif pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
        or dtype == np.dtype(object)
    ) and all(isinstance(v, str) for v in values.dropna().tolist()):
        return "string"
    return None


def onnx_input_types(
    features: list[FeatureSpec] | list[dict[str, Any]], sample: pd.DataFrame | None = None
) -> list[tuple[str, Any]]:
    """skl2onnx ``initial_types`` for the feature columns (one ``[None, 1]`` input each)."""
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType

    types: list[tuple[str, Any]] = []
    for spec in load_features(list(features)):
        if spec.transform == "drop":
            continue
        if spec.transform in NUMERIC_TRANSFORMS:
            types.append((spec.column, FloatTensorType([None, 1])))
        elif spec.transform == "date_parts":
            types.append((spec.column, Int64TensorType([None, 1])))
        else:
            integer = False
            if spec.categories:
                integer = all(isinstance(c, int | np.integer) for c in spec.categories)
            elif sample is not None and spec.column in sample:
                integer = column_wire_type(sample[spec.column]) == "int64"
            types.append(
                (
                    spec.column,
                    Int64TensorType([None, 1]) if integer else StringTensorType([None, 1]),
                )
            )
    return types


def onnx_inputs(
    features: list[FeatureSpec] | list[dict[str, Any]], frame: pd.DataFrame
) -> dict[str, np.ndarray]:
    """Feed for ``onnxruntime``: each feature column as an ``[N, 1]`` array of its input type."""
    from loopml.data.dates import to_epoch_seconds

    feed: dict[str, np.ndarray] = {}
    for (name, kind), spec in zip(
        onnx_input_types(features, frame),
        [s for s in load_features(list(features)) if s.transform != "drop"],
        strict=True,
    ):
        values = frame[spec.column]
        kind_name = type(kind).__name__
        if kind_name == "FloatTensorType":
            array = np.asarray(values, dtype=np.float32)
        elif spec.transform == "date_parts":
            array = to_epoch_seconds(values)
        elif kind_name == "Int64TensorType":
            array = np.asarray(values, dtype=np.int64)
        else:
            array = np.asarray(values.astype(str), dtype=object)
        feed[name] = array.reshape(-1, 1)
    return feed


def to_onnx(
    transformer: Any,
    features: list[FeatureSpec] | list[dict[str, Any]],
    sample: pd.DataFrame | None = None,
    *,
    target_opset: int | None = None,
) -> Any:
    """Convert a fitted feature ``ColumnTransformer`` (or a pipeline starting with one)."""
    from skl2onnx import convert_sklearn

    register_converters()
    try:
        return convert_sklearn(
            transformer,
            initial_types=onnx_input_types(features, sample),
            target_opset=target_opset,
        )
    except Exception as exc:  # skl2onnx raises bare RuntimeError/NotImplementedError
        raise ExportUnsupportedError(
            f"the feature transformer cannot be exported to ONNX: {type(exc).__name__}: {exc}",
            hint="use transforms from loopml.data.features.TRANSFORMS; custom steps need "
            "an skl2onnx converter",
        ) from exc


# -- a small vocabulary over skl2onnx's scope and container, shared with loopml.package ------


class OnnxGraph:
    """Builds nodes into skl2onnx's container so converters read as arithmetic."""

    def __init__(self, scope: Any, container: Any) -> None:
        self.scope = scope
        self.container = container

    @property
    def opset(self) -> int:
        return int(self.container.target_opset)

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        """Add ``op`` and return the name of its (single) output."""
        out = output or self.scope.get_unique_variable_name(op.lower())
        self.container.add_node(
            op, inputs, [out], name=self.scope.get_unique_operator_name(op), **attrs
        )
        return out

    def const(self, value: Any, elem: int, shape: list[int] | None = None) -> str:
        """An initializer of ONNX element type ``elem`` (shape: ``value``'s by default)."""
        array = np.asarray(value, dtype=np.int64 if elem == _INT64 else np.float64)
        name = self.scope.get_unique_variable_name("const")
        self.container.add_initializer(
            name,
            elem,
            list(array.shape) if shape is None else shape,
            array.ravel().tolist(),
        )
        return name

    def cast(self, name: str, to: int, output: str | None = None) -> str:
        return self.node("Cast", [name], output, to=to)

    def reduce_sum(self, x: str, axis: int, output: str | None = None) -> str:
        """Sum over ``axis``, keeping it (the axes moved from attribute to input in opset 13)."""
        if self.opset >= 13:
            return self.node("ReduceSum", [x, self.const([axis], _INT64)], output, keepdims=1)
        return self.node("ReduceSum", [x], output, axes=[axis], keepdims=1)

    def column(self, x: str, index: int) -> str:
        """Column ``index`` of the 2-D tensor ``x``, as ``[N, 1]``."""
        bounds = [self.const([index], _INT64), self.const([index + 1], _INT64)]
        return self.node("Slice", [x, *bounds, self.const([1], _INT64)])

    def inputs_as(self, operator: Any, elem: int) -> str:
        """The operator's (possibly several) inputs as one 2-D tensor of element type
        ``elem``."""
        names = []
        for variable in operator.inputs:
            name = variable.full_name
            if elem_type(variable) != elem:
                name = self.cast(name, elem)
            names.append(name)
        return names[0] if len(names) == 1 else self.node("Concat", names, axis=1)


def elem_type(variable: Any) -> int:
    """ONNX element type of an skl2onnx variable (``TensorProto.FLOAT``, ``DOUBLE``...)."""
    return int(variable.type.to_onnx_type().tensor_type.elem_type)


def input_width(operator: Any) -> int | None:
    """Columns across the operator's inputs (None when any is unknown)."""
    width: int | None = 0
    for variable in operator.inputs:
        shape = variable.type.shape
        size = shape[1] if len(shape) > 1 else None
        width = None if size is None or width is None else width + size
    return width


def tensor_type_like(operator: Any, shape: list[Any], otherwise: Any = None) -> Any:
    """An skl2onnx tensor type of ``shape`` in the precision of the operator's first input:
    float stays float, double stays double; anything else becomes ``otherwise`` (a tensor
    type class; double by default, as NumPy computes on integers)."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    first = operator.inputs[0].type
    if isinstance(first, FloatTensorType):
        return FloatTensorType(shape)
    if isinstance(first, DoubleTensorType):
        return DoubleTensorType(shape)
    return (otherwise or DoubleTensorType)(shape)


def log1p_graph(g: OnnxGraph, x: str, output: str, elem: int) -> str:
    """``np.log1p(x)`` in ``elem`` precision, accurate near 0 as well.

    ``log(1 + x)`` alone loses the digits of a small ``x`` when ``1 + x`` is rounded; with
    ``u = 1 + x``, ``log(u) * x / (u - 1)`` cancels that rounding (Goldberg's trick, a few
    ulps from the exact value). It is used for ``|x| < 1``; beyond, ``log(u)`` is large and
    the plain form is already accurate (and stays right for ``x = inf``).
    """
    one = g.const([1.0], elem)
    u = g.node("Add", [x, one])
    plain = g.node("Log", [u])
    shifted = g.node("Sub", [u, one])
    near_zero = g.node("Less", [g.node("Abs", [x]), one])
    exact_one = g.node("Equal", [shifted, g.const([0.0], elem)])
    # where u == 1 the answer is x itself; divide by 1 there to keep the unused branch finite
    safe = g.node("Where", [exact_one, one, shifted])
    careful = g.node("Mul", [plain, g.node("Div", [x, safe])])
    careful = g.node("Where", [exact_one, x, careful])
    return g.node("Where", [near_zero, careful, plain], output)


def bucket_graph(g: OnnxGraph, x: str, edges: Any, elem: int, output: str | None = None) -> str:
    """For a one-column ``x`` of element type ``elem``: how many ``edges`` are ``<=`` each
    value, as ``elem`` (``np.searchsorted(edges, x, side="right")``; NaN counts none).

    Values and edges are compared in double whatever ``x``'s precision: a float32 value is
    exact in double, so the comparison is NumPy's, which promotes to float64.
    """
    if len(edges) == 0:
        from onnx.helper import make_tensor

        zero = make_tensor("zero", elem, [1], [0.0])
        return g.node("ConstantOfShape", [g.node("Shape", [x])], output, value=zero)
    x64 = x if elem == _DOUBLE else g.cast(x, _DOUBLE)
    row = g.const(np.asarray(edges, dtype=np.float64).reshape(1, -1), _DOUBLE)
    if g.opset >= 12:
        at_or_above = g.node("GreaterOrEqual", [x64, row])
    else:  # Not(Less) would count NaN
        at_or_above = g.node("Or", [g.node("Greater", [x64, row]), g.node("Equal", [x64, row])])
    return g.reduce_sum(g.cast(at_or_above, elem), axis=1, output=output)


# -- loopml's transformers -------------------------------------------------------------------


def _log1p_shape(operator: Any) -> None:
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = tensor_type_like(operator, [n, input_width(operator)])


def _convert_log1p(scope: Any, operator: Any, container: Any) -> None:
    g = OnnxGraph(scope, container)
    elem = elem_type(operator.outputs[0])
    log1p_graph(g, g.inputs_as(operator, elem), operator.outputs[0].full_name, elem)


def _bucketizer_shape(operator: Any) -> None:
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = tensor_type_like(operator, [n, 1])


def _convert_bucketizer(scope: Any, operator: Any, container: Any) -> None:
    g = OnnxGraph(scope, container)
    elem = elem_type(operator.outputs[0])
    x = g.inputs_as(operator, elem)
    bucket_graph(g, x, operator.raw_operator.edges_, elem, operator.outputs[0].full_name)


def _date_parts_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    n = operator.inputs[0].get_first_dimension()
    parts = len(operator.raw_operator.parts_)
    # calendar parts are small integers, exact in float; double only beside double features
    operator.outputs[0].type = tensor_type_like(operator, [n, parts], FloatTensorType)


def _convert_date_parts(scope: Any, operator: Any, container: Any) -> None:
    """Epoch seconds to calendar parts in exact int64 arithmetic (days-from-civil inverted,
    as :meth:`DateParts.transform <loopml.data.transformers.DateParts.transform>` does)."""
    g = OnnxGraph(scope, container)

    def c(v: int) -> str:
        return g.const(v, _INT64)

    def floordiv(a: str, b: int) -> str:  # exact floor division, also for negatives
        rem = g.node("Mod", [a, c(b)], fmod=0)
        return g.node("Div", [g.node("Sub", [a, rem]), c(b)])

    secs = g.inputs_as(operator, _INT64)
    days = floordiv(secs, 86_400)
    z = g.node("Add", [days, c(719_468)])
    era = floordiv(z, 146_097)
    doe = g.node("Sub", [z, g.node("Mul", [era, c(146_097)])])
    t = g.node("Sub", [doe, floordiv(doe, 1460)])
    t = g.node("Add", [t, floordiv(doe, 36_524)])
    t = g.node("Sub", [t, floordiv(doe, 146_096)])
    yoe = floordiv(t, 365)
    base = g.node("Mul", [yoe, c(365)])
    base = g.node("Add", [base, floordiv(yoe, 4)])
    base = g.node("Sub", [base, floordiv(yoe, 100)])
    doy = g.node("Sub", [doe, base])
    mp = floordiv(g.node("Add", [g.node("Mul", [doy, c(5)]), c(2)]), 153)
    day = g.node(
        "Add",
        [
            g.node("Sub", [doy, floordiv(g.node("Add", [g.node("Mul", [mp, c(153)]), c(2)]), 5)]),
            c(1),
        ],
    )
    early = g.node("Less", [mp, c(10)])
    month = g.node("Where", [early, g.node("Add", [mp, c(3)]), g.node("Sub", [mp, c(9)])])
    jan_feb = g.cast(g.node("LessOrEqual", [month, c(2)]), _INT64)
    year = g.node("Add", [g.node("Add", [yoe, g.node("Mul", [era, c(400)])]), jan_feb])
    parts = {
        "year": year,
        "month": month,
        "day": day,
        "dayofweek": g.node("Mod", [g.node("Add", [days, c(3)]), c(7)], fmod=0),
        "hour": floordiv(g.node("Mod", [secs, c(86_400)], fmod=0), 3600),
    }
    chosen = [parts[p] for p in operator.raw_operator.parts_]
    joined = g.node("Concat", chosen, axis=1) if len(chosen) > 1 else chosen[0]
    g.cast(joined, elem_type(operator.outputs[0]), operator.outputs[0].full_name)
