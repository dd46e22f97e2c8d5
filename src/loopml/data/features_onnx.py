"""ONNX export of the feature transforms: converters for loopml's own transformers, and the
graph inputs a ``ColumnTransformer`` from :func:`~loopml.data.features.build_column_transformer`
expects.

Each feature column is one graph input named after the column, of shape ``[N, 1]``:
numeric transforms take float, ``onehot``/``ordinal`` take string (or int64 for integer
categories), ``date_parts`` takes int64 seconds since the Unix epoch (ONNX has no date type;
:func:`onnx_inputs` does that conversion for a data frame).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.data.errors import ExportUnsupportedError
from loopml.data.features import FeatureSpec, load_features

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["onnx_input_types", "onnx_inputs", "register_converters", "to_onnx"]

_REGISTERED = False
_NUMERIC = {"standardize", "minmax", "log1p", "bucketize", "passthrough"}


def register_converters() -> None:
    """Teach skl2onnx loopml's transformers (idempotent; called by :func:`to_onnx`)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from skl2onnx import update_registered_converter

    from loopml.data.transformers import Bucketizer, DateParts, Log1p

    update_registered_converter(Log1p, "LoopmlLog1p", _same_shape, _convert_log1p)
    update_registered_converter(Bucketizer, "LoopmlBucketizer", _one_column, _convert_bucketizer)
    update_registered_converter(DateParts, "LoopmlDateParts", _date_shape, _convert_date_parts)
    _REGISTERED = True


def onnx_input_types(
    features: list[FeatureSpec] | list[dict[str, Any]], sample: pd.DataFrame | None = None
) -> list[tuple[str, Any]]:
    """skl2onnx ``initial_types`` for the feature columns (one ``[None, 1]`` input each)."""
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType

    types: list[tuple[str, Any]] = []
    for spec in load_features(list(features)):
        if spec.transform == "drop":
            continue
        if spec.transform in _NUMERIC:
            types.append((spec.column, FloatTensorType([None, 1])))
        elif spec.transform == "date_parts":
            types.append((spec.column, Int64TensorType([None, 1])))
        else:
            integer = False
            if spec.categories:
                integer = all(isinstance(c, int | np.integer) for c in spec.categories)
            elif sample is not None and spec.column in sample:
                integer = np.issubdtype(np.asarray(sample[spec.column]).dtype, np.integer)
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
    from loopml.data.transformers import to_epoch_seconds

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


# -- shape calculators -----------------------------------------------------------------------


def _same_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    n, width = operator.inputs[0].type.shape
    operator.outputs[0].type = FloatTensorType([n, width])


def _one_column(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    operator.outputs[0].type = FloatTensorType([operator.inputs[0].type.shape[0], 1])


def _date_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    parts = len(operator.raw_operator.parts_)
    operator.outputs[0].type = FloatTensorType([operator.inputs[0].type.shape[0], parts])


# -- converters ------------------------------------------------------------------------------


class _Graph:
    """A few helpers over skl2onnx's container so converters read as arithmetic."""

    def __init__(self, scope: Any, container: Any) -> None:
        self.scope, self.container = scope, container

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        out = output or self.scope.get_unique_variable_name(op.lower())
        self.container.add_node(
            op, inputs, [out], name=self.scope.get_unique_operator_name(op), **attrs
        )
        return out

    def const(self, value: Any, dtype: Any) -> str:
        from onnx import TensorProto

        array = np.asarray(value, dtype=dtype)
        onnx_type = TensorProto.INT64 if array.dtype == np.int64 else TensorProto.FLOAT
        name = self.scope.get_unique_variable_name("const")
        self.container.add_initializer(name, onnx_type, list(array.shape), array.ravel().tolist())
        return name

    def cast(self, name: str, to: int) -> str:
        return self.node("Cast", [name], to=to)


def _convert_log1p(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto

    g = _Graph(scope, container)
    x = g.cast(operator.inputs[0].full_name, TensorProto.FLOAT)
    plus = g.node("Add", [x, g.const(1.0, np.float32)])
    g.node("Log", [plus], operator.outputs[0].full_name)


def _convert_bucketizer(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto

    g = _Graph(scope, container)
    edges = operator.raw_operator.edges_
    x = g.cast(operator.inputs[0].full_name, TensorProto.FLOAT)
    if len(edges) == 0:
        zero = g.node("Mul", [x, g.const(0.0, np.float32)])
        g.node("Identity", [zero], operator.outputs[0].full_name)
        return
    # Compare in float64 like numpy would, so values equal to an edge land the same side.
    x64 = g.cast(x, TensorProto.DOUBLE)
    edge = scope.get_unique_variable_name("edges")
    container.add_initializer(edge, TensorProto.DOUBLE, [1, len(edges)], list(map(float, edges)))
    below = g.node("Less", [x64, edge])
    at_or_above = g.cast(g.node("Not", [below]), TensorProto.FLOAT)
    g.node(
        "ReduceSum",
        [at_or_above, g.const([1], np.int64)],
        operator.outputs[0].full_name,
        keepdims=1,
    )


def _convert_date_parts(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto

    g = _Graph(scope, container)

    def c(v: int) -> str:
        return g.const(v, np.int64)

    def floordiv(a: str, b: int) -> str:  # exact floor division, also for negatives
        rem = g.node("Mod", [a, c(b)], fmod=0)
        return g.node("Div", [g.node("Sub", [a, rem]), c(b)])

    secs = g.cast(operator.inputs[0].full_name, TensorProto.INT64)
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
    jan_feb = g.cast(g.node("LessOrEqual", [month, c(2)]), TensorProto.INT64)
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
    g.node("Cast", [joined], operator.outputs[0].full_name, to=TensorProto.FLOAT)
