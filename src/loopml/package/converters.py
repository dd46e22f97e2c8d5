"""skl2onnx converters loopml adds or fixes so every training candidate exports faithfully.

loopml exports numeric features as ``double`` (the precision scikit-learn computes in), which
skl2onnx 1.20 handles for most steps but not all. Registered here, once per process:

- ``SimpleImputer`` on doubles: onnxruntime's ``Imputer`` kernel has no double version, so a
  ``Where(IsNaN(x), statistics, x)`` graph replaces it (other inputs keep skl2onnx's converter).
- ``KBinsDiscretizer``: skl2onnx's converter rounds the data to float32 before comparing with
  the bin edges and mislabels its output type; this one compares in the input's precision,
  exactly as ``np.searchsorted(edges, x, side="right")`` does, for ordinal and one-hot.
- ``FunctionTransformer``: skl2onnx only knows the identity; NumPy ufuncs with an exact ONNX
  counterpart (``np.log1p``, ``np.expm1``, ``np.log``, ``np.exp``, ``np.sqrt``, ``np.abs``,
  ``np.square``) are added. Anything else raises :class:`PackagingError`.
- ``HistGradientBoosting*``: replaced by a double-precision converter (see
  :mod:`loopml.package.hist_gradient_boosting`).
- loopml's torch MLP estimators (:mod:`loopml.train.torch_mlp`): the network goes through
  ``torch.onnx.export`` and is spliced into the pipeline's graph (see
  :mod:`loopml.package.torch_export`).
- loopml's ``Log1p`` and ``Bucketizer`` feature transformers: :mod:`loopml.data.features_onnx`
  registers float32 converters for them; a float32 rounding of a feature is enough to send a
  row down the other branch of a tree (seen in tests: a random forest's vote flipped), so they
  are re-registered here to compute in the input's precision. ``DateParts`` (integer
  arithmetic, exact) keeps its converter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from loopml.package.errors import PackagingError

__all__ = ["FUNCTION_TRANSFORMS", "register_converters"]

_LOCK = threading.Lock()
_REGISTERED = False


def _function_table() -> dict[Any, str]:
    return {
        np.log1p: "log1p",
        np.expm1: "expm1",
        np.log: "log",
        np.exp: "exp",
        np.sqrt: "sqrt",
        np.abs: "abs",
        np.square: "square",
    }


#: The ``FunctionTransformer(func=...)`` functions that export, by name.
FUNCTION_TRANSFORMS = ("log1p", "expm1", "log", "exp", "sqrt", "abs", "square")


def register_converters() -> None:
    """Register loopml's converters with skl2onnx (idempotent, thread-safe)."""
    global _REGISTERED
    if _REGISTERED:
        return
    with _LOCK:
        if _REGISTERED:
            return
        from skl2onnx import update_registered_converter
        from skl2onnx.common._registration import get_converter, get_shape_calculator
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import FunctionTransformer, KBinsDiscretizer

        _register_hist_gradient_boosting()
        _allow_zipmap_option_on_linear_svc()

        stock_imputer = get_converter("SklearnSimpleImputer")
        update_registered_converter(
            SimpleImputer,
            "SklearnSimpleImputer",
            get_shape_calculator("SklearnSimpleImputer"),
            _imputer_converter(stock_imputer),
        )
        update_registered_converter(
            KBinsDiscretizer, "SklearnKBinsDiscretizer", _same_type_shape, _convert_kbins
        )
        update_registered_converter(
            FunctionTransformer,
            "SklearnFunctionTransformer",
            _function_shape,
            _convert_function_transformer,
        )
        from loopml.data.features_onnx import register_converters as register_feature_converters
        from loopml.data.transformers import Bucketizer, Log1p

        register_feature_converters()
        update_registered_converter(Log1p, "LoopmlLog1p", _function_shape, _convert_log1p)
        update_registered_converter(
            Bucketizer, "LoopmlBucketizer", _bucket_shape, _convert_bucketizer
        )
        _register_torch_mlp()
        _REGISTERED = True


# --- a little graph-building vocabulary over skl2onnx's container -----------------------------


class _Graph:
    def __init__(self, scope: Any, container: Any) -> None:
        self.scope = scope
        self.container = container

    @property
    def opset(self) -> int:
        return int(self.container.target_opset)

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        out = output or self.scope.get_unique_variable_name(op.lower())
        self.container.add_node(
            op, inputs, [out], name=self.scope.get_unique_operator_name(op), **attrs
        )
        return out

    def const(self, value: Any, elem_type: int, shape: list[int] | None = None) -> str:
        array = np.asarray(value)
        name = self.scope.get_unique_variable_name("const")
        self.container.add_initializer(
            name,
            elem_type,
            list(array.shape) if shape is None else shape,
            array.ravel().tolist(),
        )
        return name

    def reduce_sum(self, x: str, axis: int, output: str | None = None) -> str:
        from onnx import TensorProto

        if self.opset >= 13:
            return self.node(
                "ReduceSum", [x, self.const([axis], TensorProto.INT64)], output, keepdims=1
            )
        return self.node("ReduceSum", [x], output, axes=[axis], keepdims=1)

    def column(self, x: str, index: int) -> str:
        from onnx import TensorProto

        i64 = TensorProto.INT64
        return self.node(
            "Slice",
            [
                x,
                self.const([index], i64),
                self.const([index + 1], i64),
                self.const([1], i64),
            ],
        )


def _elem_type(variable: Any) -> int:
    return int(variable.type.to_onnx_type().tensor_type.elem_type)


def _numpy_dtype(elem_type: int) -> Any:
    from onnx import TensorProto

    return np.float64 if elem_type == TensorProto.DOUBLE else np.float32


def _concat_inputs(g: _Graph, operator: Any, elem_type: int) -> str:
    """One 2-D tensor of ``elem_type`` from the operator's (possibly several) inputs."""
    names = []
    for variable in operator.inputs:
        name = variable.full_name
        if _elem_type(variable) != elem_type:
            name = g.node("Cast", [name], to=elem_type)
        names.append(name)
    if len(names) == 1:
        return names[0]
    return g.node("Concat", names, axis=1)


def _same_type_shape(operator: Any) -> None:
    """Output keeps the input's float precision (ints become double)."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    model = operator.raw_operator
    width = len(model.n_bins_) if model.encode == "ordinal" else int(sum(model.n_bins_))
    n = operator.inputs[0].get_first_dimension()
    kind = FloatTensorType if isinstance(operator.inputs[0].type, FloatTensorType) else None
    operator.outputs[0].type = (kind or DoubleTensorType)([n, width])


# --- SimpleImputer ------------------------------------------------------------------------------


def _imputer_converter(stock: Callable[..., Any]) -> Callable[..., None]:
    def convert(scope: Any, operator: Any, container: Any) -> None:
        from onnx import TensorProto
        from skl2onnx.common.data_types import DoubleTensorType

        if not isinstance(operator.inputs[0].type, DoubleTensorType):
            stock(scope, operator, container)
            return
        model = operator.raw_operator
        if getattr(model, "add_indicator", False):
            raise PackagingError(
                "SimpleImputer(add_indicator=True) cannot be exported to ONNX",
                hint="drop add_indicator, or add an explicit missing-value flag column",
            )
        statistics = np.asarray(model.statistics_, dtype=np.float64)
        if np.isnan(statistics).any():
            raise PackagingError(
                "SimpleImputer learned no fill value for a column that was entirely missing "
                "in the training data, so its output has fewer columns than its input",
                hint="drop the empty column before training",
            )
        g = _Graph(scope, container)
        x = _concat_inputs(g, operator, TensorProto.DOUBLE)
        fill = g.const(statistics.reshape(1, -1), TensorProto.DOUBLE)
        missing = model.missing_values
        if missing is None or (isinstance(missing, float) and np.isnan(missing)):
            mask = g.node("IsNaN", [x])
        elif isinstance(missing, int | float | np.number):
            mask = g.node("Equal", [x, g.const([float(missing)], TensorProto.DOUBLE)])
        else:
            raise PackagingError(
                f"SimpleImputer(missing_values={missing!r}) on numbers cannot be exported",
                hint="use missing_values=np.nan for numeric columns",
            )
        g.node("Where", [mask, fill, x], operator.outputs[0].full_name)

    return convert


# --- KBinsDiscretizer -------------------------------------------------------------------------


def _convert_kbins(scope: Any, operator: Any, container: Any) -> None:
    import onnx

    g = _Graph(scope, container)
    model = operator.raw_operator
    out_type = _elem_type(operator.outputs[0])
    dtype = _numpy_dtype(out_type)
    x = _concat_inputs(g, operator, out_type)
    parts = []
    for j, edges in enumerate(model.bin_edges_):
        inner = np.asarray(edges[1:-1], dtype=dtype)
        column = g.column(x, j)
        if inner.size == 0:
            # a single bin: every value lands in bin 0
            zero = onnx.helper.make_tensor("zero", out_type, [1], [0.0])
            count = g.node("ConstantOfShape", [g.node("Shape", [column])], value=zero)
        else:
            # bin index = number of inner edges <= x  (np.searchsorted(..., side="right"))
            at_or_above = g.node(
                "GreaterOrEqual", [column, g.const(inner.reshape(1, -1), out_type)]
            )
            count = g.reduce_sum(g.node("Cast", [at_or_above], to=out_type), axis=1)
        if model.encode == "ordinal":
            parts.append(count)
        else:
            bins = np.arange(int(model.n_bins_[j]), dtype=dtype).reshape(1, -1)
            hot = g.node("Equal", [count, g.const(bins, out_type)])
            parts.append(g.node("Cast", [hot], to=out_type))
    if len(parts) == 1:
        g.node("Identity", parts, operator.outputs[0].full_name)
    else:
        g.node("Concat", parts, operator.outputs[0].full_name, axis=1)


# --- FunctionTransformer ----------------------------------------------------------------------


def _function_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, Int64TensorType

    n = operator.inputs[0].get_first_dimension()
    width: int | None = 0
    for variable in operator.inputs:
        size = variable.type.shape[1] if len(variable.type.shape) > 1 else None
        width = None if size is None or width is None else width + size
    first = operator.inputs[0].type
    if getattr(operator.raw_operator, "func", 0) is None and isinstance(first, Int64TensorType):
        operator.outputs[0].type = Int64TensorType([n, width])
    elif isinstance(first, FloatTensorType):
        operator.outputs[0].type = FloatTensorType([n, width])
    else:
        operator.outputs[0].type = DoubleTensorType([n, width])


def _convert_function_transformer(scope: Any, operator: Any, container: Any) -> None:
    model = operator.raw_operator
    func = model.func
    if model.kw_args:
        raise PackagingError(
            f"FunctionTransformer(func={_func_name(func)}, kw_args={model.kw_args!r}) cannot "
            "be exported: keyword arguments have no ONNX form",
            hint="use a FunctionTransformer without kw_args",
        )
    g = _Graph(scope, container)
    out_type = _elem_type(operator.outputs[0])
    out = operator.outputs[0].full_name
    x = _concat_inputs(g, operator, out_type)
    if func is None:
        g.node("Identity", [x], out)
        return
    name = _function_table().get(func)
    one = g.const([1.0], out_type) if name == "expm1" else ""
    match name:
        case "log1p":
            _log1p(g, x, out, out_type)
        case "expm1":
            g.node("Sub", [g.node("Exp", [x]), one], out)
        case "log":
            g.node("Log", [x], out)
        case "exp":
            g.node("Exp", [x], out)
        case "sqrt":
            g.node("Sqrt", [x], out)
        case "abs":
            g.node("Abs", [x], out)
        case "square":
            g.node("Mul", [x, x], out)
        case _:
            raise PackagingError(
                f"FunctionTransformer(func={_func_name(func)}) has no ONNX equivalent",
                hint="use one of numpy's "
                + ", ".join(f"np.{f}" for f in FUNCTION_TRANSFORMS)
                + ", or a transformer with a registered skl2onnx converter",
            )


def _log1p(g: _Graph, x: str, out: str, elem_type: int) -> None:
    """``log1p`` accurate near 0 too: ``log(u) * x / (u - 1)`` with ``u = 1 + x`` where
    ``|x|`` is small (Goldberg's trick; ``log(1 + x)`` alone loses digits there)."""
    one = g.const([1.0], elem_type)
    u = g.node("Add", [x, one])
    plain = g.node("Log", [u])
    shifted = g.node("Sub", [u, one])
    small = g.node("Less", [g.node("Abs", [x]), g.const([1e-4], elem_type)])
    exact_zero = g.node("Equal", [shifted, g.const([0.0], elem_type)])
    # where u - 1 == 0 the quotient is never selected; divide by 1 there to keep it finite
    safe = g.node("Where", [exact_zero, one, shifted])
    careful = g.node("Mul", [plain, g.node("Div", [x, safe])])
    careful = g.node("Where", [exact_zero, x, careful])
    g.node("Where", [small, careful, plain], out)


def _convert_log1p(scope: Any, operator: Any, container: Any) -> None:
    """loopml's ``Log1p`` feature transform, in the input's precision."""
    g = _Graph(scope, container)
    out_type = _elem_type(operator.outputs[0])
    _log1p(g, _concat_inputs(g, operator, out_type), operator.outputs[0].full_name, out_type)


def _bucket_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    n = operator.inputs[0].get_first_dimension()
    kind = FloatTensorType if isinstance(operator.inputs[0].type, FloatTensorType) else None
    operator.outputs[0].type = (kind or DoubleTensorType)([n, 1])


def _convert_bucketizer(scope: Any, operator: Any, container: Any) -> None:
    """loopml's ``Bucketizer``: the number of edges ``<= x``, compared in the input's
    precision (as NumPy does)."""
    import onnx

    g = _Graph(scope, container)
    out_type = _elem_type(operator.outputs[0])
    x = _concat_inputs(g, operator, out_type)
    edges = np.asarray(operator.raw_operator.edges_, dtype=_numpy_dtype(out_type))
    out = operator.outputs[0].full_name
    if edges.size == 0:
        zero = onnx.helper.make_tensor("zero", out_type, [1], [0.0])
        g.node("ConstantOfShape", [g.node("Shape", [x])], out, value=zero)
        return
    at_or_above = g.node("GreaterOrEqual", [x, g.const(edges.reshape(1, -1), out_type)])
    g.reduce_sum(g.node("Cast", [at_or_above], to=out_type), axis=1, output=out)


def _func_name(func: Any) -> str:
    module = getattr(func, "__module__", None) or ""
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    return f"{module}.{name}" if module and module != "builtins" else str(name)


def function_is_exportable(func: Any) -> bool:
    """True when ``FunctionTransformer(func)`` converts (used by the pre-flight check)."""
    return func is None or func in _function_table()


# --- HistGradientBoosting -----------------------------------------------------------------------


def _register_hist_gradient_boosting() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx.common._registration import get_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from loopml.package.hist_gradient_boosting import convert_hist_gradient_boosting

    update_registered_converter(
        HistGradientBoostingRegressor,
        "SklearnHistGradientBoostingRegressor",
        calculate_linear_regressor_output_shapes,
        convert_hist_gradient_boosting,
    )
    options = get_converter("SklearnHistGradientBoostingClassifier").get_allowed_options()
    update_registered_converter(
        HistGradientBoostingClassifier,
        "SklearnHistGradientBoostingClassifier",
        calculate_linear_classifier_output_shapes,
        convert_hist_gradient_boosting,
        options={"zipmap": [True, False, "columns"], "nocl": [True, False], **(options or {})},
    )


def _allow_zipmap_option_on_linear_svc() -> None:
    """skl2onnx asks every classifier for the ``zipmap`` option, but ``LinearSVC``'s converter
    does not declare it, so a LinearSVC with integer labels fails to convert ("Option 'zipmap'
    not in [...]"). Declaring it (loopml always passes ``zipmap=False``) fixes that."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common._registration import get_converter, get_shape_calculator
    from sklearn.svm import LinearSVC

    converter = get_converter("SklearnLinearSVC")
    options = dict(converter.get_allowed_options() or {})
    if "zipmap" in options:
        return
    options["zipmap"] = [True, False, "columns"]
    update_registered_converter(
        LinearSVC,
        "SklearnLinearSVC",
        get_shape_calculator("SklearnLinearSVC"),
        getattr(converter, "_fct", converter),  # the function inside skl2onnx's wrapper
        options=options,
    )


# --- torch MLP ----------------------------------------------------------------------------------


def _register_torch_mlp() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    from loopml.package.torch_export import convert_torch_mlp
    from loopml.train.torch_mlp import TorchMLPClassifier, TorchMLPRegressor

    update_registered_converter(
        TorchMLPRegressor,
        "LoopmlTorchMLPRegressor",
        calculate_linear_regressor_output_shapes,
        convert_torch_mlp,
    )
    update_registered_converter(
        TorchMLPClassifier,
        "LoopmlTorchMLPClassifier",
        calculate_linear_classifier_output_shapes,
        convert_torch_mlp,
        options={"zipmap": [False, True, "columns"], "nocl": [False, True]},
    )
