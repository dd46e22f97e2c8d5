"""Export torch networks to ONNX with ``torch.onnx.export`` (the ``torch`` extra).

Two ways in:

- :func:`export_torch_onnx` for a bare ``torch.nn.Module`` taking one float32 ``[N, k]``
  tensor: the result has the ``"tensor"`` input layout.
- loopml's ``TorchMLPRegressor``/``TorchMLPClassifier`` inside a scikit-learn pipeline go
  through :func:`~loopml.package.export_onnx` like any estimator: :func:`convert_torch_mlp`
  is their skl2onnx converter, which exports ``module_`` with torch and splices that graph
  after the feature transform, so one ONNX file holds both.

Either way the outputs follow loopml's convention: ``variable [N, 1]`` for regression,
``label [N]`` and ``probabilities [N, K]`` for classification (a softmax — or a sigmoid for a
single-logit binary network — is appended when the module returns logits).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from loopml._optional import require
from loopml._version import __version__
from loopml.errors import InvalidInputError
from loopml.package.errors import PackagingError
from loopml.package.signature import METADATA_KEY, TASKS, Signature, TensorSpec

if TYPE_CHECKING:
    import onnx
    import pandas as pd

    from loopml.package.export import OnnxExport

__all__ = ["convert_torch_mlp", "export_torch_onnx", "torch_graph"]

_FLOAT, _INT64, _STRING, _DOUBLE = 1, 7, 8, 11
_HEADS = ("logits", "probabilities")


def _torch() -> Any:
    return require("torch", extra="torch", purpose="exporting a torch model to ONNX")


def torch_graph(module: Any, n_features: int, opset: int) -> onnx.ModelProto:
    """``module`` as an ONNX graph: input ``input`` float32 ``[N, n_features]``, one output.

    Uses the ``torch.export``-based exporter (``dynamo=True``, which needs ``onnxscript``,
    part of the ``torch`` extra), with a dynamic batch dimension.
    """
    torch = _torch()
    require("onnxscript", extra="torch", purpose="exporting a torch model to ONNX")
    import onnx

    was_training = module.training
    module.eval()
    example = torch.zeros((2, n_features), dtype=torch.float32)
    try:
        with _quiet():
            program = torch.onnx.export(
                module,
                (example,),
                input_names=["input"],
                output_names=["output"],
                dynamic_shapes=({0: torch.export.Dim.DYNAMIC},),
                opset_version=max(opset, 18),
                dynamo=True,
                external_data=False,
                optimize=True,
                verbose=False,
                report=False,
            )
    except Exception as exc:
        raise PackagingError(
            f"torch.onnx.export failed for the {type(module).__name__}: "
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}",
            hint="the module's forward must take one float tensor [N, k] and return one tensor",
        ) from exc
    finally:
        module.train(was_training)
    proto = program.model_proto
    if proto.functions:
        import onnx.inliner

        proto = onnx.inliner.inline_local_functions(proto)
    if len(proto.graph.output) != 1:
        raise PackagingError(
            f"the {type(module).__name__} returns {len(proto.graph.output)} tensors; "
            "loopml exports modules that return one",
            hint="return a single tensor from forward()",
        )
    main = {o.domain or "": o.version for o in proto.opset_import}.get("", opset)
    if main != opset:
        proto = onnx.version_converter.convert_version(proto, opset)
    return proto


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch's exporter logs and warns about optional packages; none of it is actionable."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


# --- bare modules -------------------------------------------------------------------------------


def export_torch_onnx(
    module: Any,
    X_sample: pd.DataFrame | np.ndarray,
    *,
    task: str,
    classes: list[Any] | None = None,
    output: str = "logits",
    target_opset: int | None = None,
) -> OnnxExport:
    """Export a ``torch.nn.Module`` mapping float32 ``[N, k]`` to predictions or logits.

    ``X_sample`` gives ``k`` (and the feature names, if a DataFrame). For classification,
    ``output`` says whether the module returns ``"logits"`` (a softmax/sigmoid is appended)
    or ``"probabilities"``; ``classes`` are the labels of its output columns (default
    ``0..K-1``). Check the result with :func:`~loopml.package.check_parity` on the module.
    """
    import onnx

    from loopml.package.export import DEFAULT_OPSET, OnnxExport, _check_opset
    from loopml.package.graph import opsets_of, set_metadata
    from loopml.package.parity import TORCH_HEAD_KEY

    torch = _torch()
    if task not in TASKS:
        raise InvalidInputError(f"task {task!r} is not one of {', '.join(TASKS)}")
    if output not in _HEADS:
        raise InvalidInputError(f"output {output!r} is not one of {', '.join(_HEADS)}")
    opset = _check_opset(target_opset) if target_opset is not None else DEFAULT_OPSET
    values = X_sample.to_numpy() if hasattr(X_sample, "to_numpy") else np.asarray(X_sample)
    if values.ndim != 2 or values.shape[0] == 0 or values.dtype.kind not in "fiub":
        raise InvalidInputError(
            f"X_sample must be a non-empty numeric 2-D table, got shape {list(values.shape)} "
            f"of {values.dtype}",
            hint="a torch module takes the numeric feature matrix",
        )
    n_features = values.shape[1]
    feature_names = [str(c) for c in X_sample.columns] if hasattr(X_sample, "columns") else None
    with torch.no_grad():
        probe = module.eval()(torch.zeros((2, n_features), dtype=torch.float32))
    width = 1 if probe.dim() == 1 else int(probe.shape[1])
    proto = torch_graph(module, n_features, opset)
    raw = proto.graph.output[0].name
    graph = proto.graph
    helper = onnx.helper
    del graph.output[:]
    if task == "regression":
        if width != 1:
            raise PackagingError(
                f"a regression module must return one value per row, this one returns {width}",
                hint="end the network with a Linear(..., 1) layer",
            )
        shape = helper.make_tensor("loopml_shape", _INT64, [2], [-1, 1])
        graph.initializer.append(shape)
        graph.node.append(helper.make_node("Reshape", [raw, "loopml_shape"], ["loopml_col"]))
        graph.node.append(helper.make_node("Cast", ["loopml_col"], ["variable"], to=_DOUBLE))
        graph.output.append(helper.make_tensor_value_info("variable", _DOUBLE, ["N", 1]))
        classes = None
        head = "values"
    else:
        n_classes = 2 if width == 1 else width
        classes = list(classes) if classes is not None else list(range(n_classes))
        if len(classes) != n_classes:
            raise InvalidInputError(
                f"{len(classes)} classes given but the module scores {n_classes}",
                hint="pass one class label per output column",
            )
        _classification_head(graph, raw, width, output, classes)
        head = output
    signature = Signature(
        inputs=(TensorSpec("input", "float32", (-1, n_features)),),
        outputs=(
            (TensorSpec("variable", "float64", (-1, 1)),)
            if task == "regression"
            else (
                TensorSpec("label", "string" if _is_text(classes) else "int64", (-1,)),
                TensorSpec("probabilities", "float64", (-1, len(classes or []))),
            )
        ),
        task=task,
        classes=tuple(classes) if classes is not None else None,
        input_layout="tensor",
        feature_names=tuple(feature_names) if feature_names else None,
    )
    set_metadata(
        proto,
        {METADATA_KEY: signature.to_json(), "loopml.version": __version__, TORCH_HEAD_KEY: head},
    )
    proto.producer_name = "loopml"
    proto.producer_version = __version__
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise PackagingError(f"the exported torch graph is invalid: {exc}") from exc
    data = proto.SerializeToString()
    from loopml.package.session import load_onnx_session

    load_onnx_session(data)  # fails here, with a PackagingError, rather than at serving time
    return OnnxExport(
        onnx_bytes=data,
        signature=signature,
        opset=opsets_of(proto),
        converter=f"torch {torch.__version__}",
    )


def _is_text(classes: list[Any] | None) -> bool:
    return bool(classes) and all(isinstance(c, str) for c in classes or [])


def _classification_head(graph: Any, raw: str, width: int, output: str, classes: list[Any]) -> None:
    import onnx

    helper = onnx.helper
    nodes = graph.node
    if width == 1:
        flat_shape = helper.make_tensor("loopml_flat", _INT64, [2], [-1, 1])
        graph.initializer.append(flat_shape)
        nodes.append(helper.make_node("Reshape", [raw, "loopml_flat"], ["loopml_logit"]))
        positive = "loopml_logit"
        if output == "logits":
            nodes.append(helper.make_node("Sigmoid", ["loopml_logit"], ["loopml_p1"]))
            positive = "loopml_p1"
        one = helper.make_tensor("loopml_one", _FLOAT, [1], [1.0])
        graph.initializer.append(one)
        nodes.append(helper.make_node("Sub", ["loopml_one", positive], ["loopml_p0"]))
        nodes.append(helper.make_node("Concat", ["loopml_p0", positive], ["loopml_p"], axis=1))
    elif output == "logits":
        nodes.append(helper.make_node("Softmax", [raw], ["loopml_p"], axis=1))
    else:
        nodes.append(helper.make_node("Identity", [raw], ["loopml_p"]))
    nodes.append(helper.make_node("Cast", ["loopml_p"], ["probabilities"], to=_DOUBLE))
    nodes.append(helper.make_node("ArgMax", ["loopml_p"], ["loopml_index"], axis=1, keepdims=0))
    if _is_text(classes):
        table = helper.make_tensor(
            "loopml_classes", _STRING, [len(classes)], cast(Any, [str(c).encode() for c in classes])
        )
        label_type = _STRING
    else:
        table = helper.make_tensor(
            "loopml_classes", _INT64, [len(classes)], [int(c) for c in classes]
        )
        label_type = _INT64
    graph.initializer.append(table)
    nodes.append(helper.make_node("Gather", ["loopml_classes", "loopml_index"], ["label"], axis=0))
    graph.output.append(helper.make_tensor_value_info("label", label_type, ["N"]))
    graph.output.append(
        helper.make_tensor_value_info("probabilities", _DOUBLE, ["N", len(classes)])
    )


# --- inside a scikit-learn pipeline (skl2onnx converter) ----------------------------------------


def convert_torch_mlp(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter for loopml's ``TorchMLPRegressor`` and ``TorchMLPClassifier``."""
    estimator = operator.raw_operator
    module = getattr(estimator, "module_", None)
    if module is None:
        raise PackagingError(
            f"the {type(estimator).__name__} is not fitted (no module_)", hint="call fit() first"
        )
    proto = torch_graph(module, int(estimator.n_features_in_), int(container.target_opset))
    x = scope.get_unique_variable_name("mlp_input")
    container.add_node(
        "Cast",
        [operator.inputs[0].full_name],
        [x],
        name=scope.get_unique_operator_name("Cast"),
        to=_FLOAT,
    )
    raw = _splice(scope, container, proto, {proto.graph.input[0].name: x})

    def elem(variable: Any) -> int:
        return int(variable.type.to_onnx_type().tensor_type.elem_type)

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        container.add_node(op, inputs, [output], name=scope.get_unique_operator_name(op), **attrs)
        return output

    if not hasattr(estimator, "classes_"):
        out = operator.outputs[0]
        node("Cast", [raw], out.full_name, to=elem(out))
        return
    label, probabilities = operator.outputs[0], operator.outputs[1]
    proba = node("Softmax", [raw], scope.get_unique_variable_name("mlp_proba"), axis=1)
    node("Cast", [proba], probabilities.full_name, to=elem(probabilities))
    index = node("ArgMax", [proba], scope.get_unique_variable_name("mlp_index"), axis=1, keepdims=0)
    classes = np.asarray(estimator.classes_).tolist()
    table = scope.get_unique_variable_name("mlp_classes")
    if elem(label) == _STRING:
        container.add_initializer(table, _STRING, [len(classes)], [str(c) for c in classes])
    else:
        container.add_initializer(table, _INT64, [len(classes)], [int(c) for c in classes])
    node("Gather", [table, index], label.full_name, axis=0)


def _splice(scope: Any, container: Any, proto: Any, bound: dict[str, str]) -> str:
    """Copy ``proto``'s graph into the skl2onnx container under fresh names; returns the
    name its output got. ``bound`` maps graph input names to existing tensors."""
    from onnx import helper, numpy_helper

    prefix = scope.get_unique_variable_name("torch") + "_"
    names = dict(bound)

    def rename(name: str) -> str:
        if not name:
            return name  # an omitted optional input
        if name not in names:
            names[name] = prefix + name
        return names[name]

    for init in proto.graph.initializer:
        array = numpy_helper.to_array(init)
        container.add_initializer(rename(init.name), init.data_type, list(array.shape), array)
    for item in proto.graph.node:
        if item.domain not in ("", "ai.onnx"):
            raise PackagingError(
                f"the torch graph uses operator {item.domain}::{item.op_type}, which cannot "
                "be embedded in a pipeline graph",
                hint="keep the network to standard layers (Linear, activations)",
            )
        attrs = {}
        for attribute in item.attribute:
            if attribute.type in (attribute.GRAPH, attribute.GRAPHS):
                raise PackagingError(
                    f"the torch graph has control flow ({item.op_type}); loopml embeds "
                    "straight-line networks only",
                    hint="remove data-dependent control flow from forward()",
                )
            attrs[attribute.name] = helper.get_attribute_value(attribute)
        container.add_node(
            item.op_type,
            [rename(name) for name in item.input],
            [rename(name) for name in item.output],
            name=scope.get_unique_operator_name(item.op_type),
            **attrs,
        )
    return rename(proto.graph.output[0].name)
