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

loopml's own feature transformers (``Log1p``, ``Bucketizer``, ``DateParts``) are converted by
:mod:`loopml.data.features_onnx`, next to them, in the input's precision; this module only
makes sure they are registered, and builds its graphs with the same vocabulary
(:class:`~loopml.data.features_onnx.OnnxGraph`), so ``FunctionTransformer(np.log1p)`` and
``KBinsDiscretizer`` compute exactly as ``Log1p`` and ``Bucketizer`` do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from loopml.data.features_onnx import (
    OnnxGraph,
    bucket_graph,
    elem_type,
    input_width,
    log1p_graph,
    tensor_type_like,
)
from loopml.package.errors import PackagingError

__all__ = ["FUNCTION_TRANSFORMS", "register_converters"]

_LOCK = threading.Lock()
_DOUBLE = 11  # onnx.TensorProto.DOUBLE
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
            KBinsDiscretizer, "SklearnKBinsDiscretizer", _kbins_shape, _convert_kbins
        )
        update_registered_converter(
            FunctionTransformer,
            "SklearnFunctionTransformer",
            _function_shape,
            _convert_function_transformer,
        )
        from loopml.data.features_onnx import register_converters as register_feature_converters

        register_feature_converters()
        _register_torch_mlp()
        _register_least_squares(get_converter, get_shape_calculator)
        _REGISTERED = True


def _register_least_squares(get_converter: Any, get_shape_calculator: Any) -> None:
    # A LinearRegression with a refined solve: same fitted attributes, same converter.
    from skl2onnx import update_registered_converter

    from loopml.train.least_squares import LeastSquaresRegression

    update_registered_converter(
        LeastSquaresRegression,
        "LoopmlLeastSquaresRegression",
        get_shape_calculator("SklearnLinearRegressor"),
        # skl2onnx wraps registered functions; registering again needs the function itself.
        getattr(stock := get_converter("SklearnLinearRegressor"), "_fct", stock),
    )


# --- SimpleImputer ------------------------------------------------------------------------------


def _imputer_converter(stock: Callable[..., Any]) -> Callable[..., None]:
    def convert(scope: Any, operator: Any, container: Any) -> None:
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
        g = OnnxGraph(scope, container)
        x = g.inputs_as(operator, _DOUBLE)
        fill = g.const(statistics.reshape(1, -1), _DOUBLE)
        missing = model.missing_values
        if missing is None or (isinstance(missing, float) and np.isnan(missing)):
            mask = g.node("IsNaN", [x])
        elif isinstance(missing, int | float | np.number):
            mask = g.node("Equal", [x, g.const([float(missing)], _DOUBLE)])
        else:
            raise PackagingError(
                f"SimpleImputer(missing_values={missing!r}) on numbers cannot be exported",
                hint="use missing_values=np.nan for numeric columns",
            )
        g.node("Where", [mask, fill, x], operator.outputs[0].full_name)

    return convert


# --- KBinsDiscretizer -------------------------------------------------------------------------


def _kbins_shape(operator: Any) -> None:
    """Output keeps the input's float precision (ints become double)."""
    model = operator.raw_operator
    width = len(model.n_bins_) if model.encode == "ordinal" else int(sum(model.n_bins_))
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = tensor_type_like(operator, [n, width])


def _convert_kbins(scope: Any, operator: Any, container: Any) -> None:
    """Bin index = number of inner edges ``<= x``, as ``np.searchsorted(..., side="right")``
    in scikit-learn: the same comparison as loopml's ``Bucketizer``, so the same graph."""
    g = OnnxGraph(scope, container)
    model = operator.raw_operator
    out_type = elem_type(operator.outputs[0])
    x = g.inputs_as(operator, out_type)
    parts = []
    for j, edges in enumerate(model.bin_edges_):
        count = bucket_graph(g, g.column(x, j), edges[1:-1], out_type)
        if model.encode == "ordinal":
            parts.append(count)
        else:
            bins = np.arange(int(model.n_bins_[j])).reshape(1, -1)
            hot = g.node("Equal", [count, g.const(bins, out_type)])
            parts.append(g.cast(hot, out_type))
    if len(parts) == 1:
        g.node("Identity", parts, operator.outputs[0].full_name)
    else:
        g.node("Concat", parts, operator.outputs[0].full_name, axis=1)


# --- FunctionTransformer ----------------------------------------------------------------------


def _function_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import Int64TensorType

    n = operator.inputs[0].get_first_dimension()
    width = input_width(operator)
    first = operator.inputs[0].type
    if getattr(operator.raw_operator, "func", 0) is None and isinstance(first, Int64TensorType):
        operator.outputs[0].type = Int64TensorType([n, width])
    else:
        operator.outputs[0].type = tensor_type_like(operator, [n, width])


def _convert_function_transformer(scope: Any, operator: Any, container: Any) -> None:
    model = operator.raw_operator
    func = model.func
    if model.kw_args:
        raise PackagingError(
            f"FunctionTransformer(func={_func_name(func)}, kw_args={model.kw_args!r}) cannot "
            "be exported: keyword arguments have no ONNX form",
            hint="use a FunctionTransformer without kw_args",
        )
    g = OnnxGraph(scope, container)
    out_type = elem_type(operator.outputs[0])
    out = operator.outputs[0].full_name
    x = g.inputs_as(operator, out_type)
    if func is None:
        g.node("Identity", [x], out)
        return
    name = _function_table().get(func)
    match name:
        case "log1p":
            log1p_graph(g, x, out, out_type)  # the graph loopml's Log1p transform exports
        case "expm1":
            g.node("Sub", [g.node("Exp", [x]), g.const([1.0], out_type)], out)
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
