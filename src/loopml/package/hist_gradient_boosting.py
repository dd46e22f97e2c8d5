"""HistGradientBoosting to ONNX in double precision (``ai.onnx.ml`` ``TreeEnsemble``, opset 5).

scikit-learn's histogram gradient boosting compares features with its thresholds in float64,
and its thresholds are often exactly values seen in training (every bin edge of a column with
few distinct values). skl2onnx's converter uses the float32-only ``TreeEnsembleRegressor``, so
a held-out value equal to a threshold can round across it: on scikit-learn's diabetes data
three of 133 predictions moved by up to 3.9. ``TreeEnsemble`` (ai.onnx.ml opset 5, in
onnxruntime since 1.20) takes double inputs and thresholds, which makes every comparison the
one scikit-learn makes. The raw scores then go through the same link as
``predict``/``predict_proba`` (identity, exp, sigmoid, softmax), in double.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loopml.package.errors import PackagingError

__all__ = ["ML_OPSET", "convert_hist_gradient_boosting", "raise_ml_opset"]

#: The ``ai.onnx.ml`` opset ``TreeEnsemble`` needs. Older tree operators are deprecated there,
#: so a graph using it must not contain skl2onnx's ``TreeEnsembleRegressor/Classifier``.
ML_OPSET = 5

_DOUBLE, _INT64, _STRING = 11, 7, 8
_BRANCH_LEQ = 0
_SUM = 1


def convert_hist_gradient_boosting(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter for ``HistGradientBoostingRegressor`` and ``...Classifier``."""
    model = operator.raw_operator
    _check_supported(model)
    per_iteration = int(model.n_trees_per_iteration_)
    attributes = _ensemble_attributes(model._predictors, per_iteration)

    def name(seed: str) -> str:
        return scope.get_unique_variable_name(seed)

    def node(op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        out = output or name(op.lower())
        domain = attrs.pop("op_domain", "")
        version = attrs.pop("op_version", None)
        container.add_node(
            op,
            inputs,
            [out],
            name=scope.get_unique_operator_name(op),
            op_domain=domain,
            op_version=version,
            **attrs,
        )
        return out

    def const(values: Any, elem_type: int, shape: list[int]) -> str:
        constant = name("hgb_const")
        container.add_initializer(constant, elem_type, shape, np.asarray(values).ravel().tolist())
        return constant

    x = operator.inputs[0].full_name
    if int(operator.inputs[0].type.to_onnx_type().tensor_type.elem_type) != _DOUBLE:
        x = node("Cast", [x], to=_DOUBLE)
    # skl2onnx 1.20 refuses to target ai.onnx.ml 5; the node is declared at its opset 3 and
    # export_onnx raises the model's ai.onnx.ml import to 5 afterwards (see needs_ml_opset_5).
    scores = node("TreeEnsemble", [x], op_domain="ai.onnx.ml", op_version=3, **attributes)
    baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(1, per_iteration)
    raw = node("Add", [scores, const(baseline, _DOUBLE, [1, per_iteration])])

    def cast_to(variable: Any, source: str) -> None:
        elem = int(variable.type.to_onnx_type().tensor_type.elem_type)
        node("Cast", [source], variable.full_name, to=elem)

    if not hasattr(model, "classes_"):
        link = type(model._loss.link).__name__
        if link == "IdentityLink":
            cast_to(operator.outputs[0], raw)
        elif link == "LogLink":
            cast_to(operator.outputs[0], node("Exp", [raw]))
        else:
            raise PackagingError(
                f"HistGradientBoostingRegressor(loss={model.loss!r}) uses the {link}, which "
                "loopml cannot export yet",
                hint="use loss='squared_error', 'absolute_error', 'quantile', 'poisson' or 'gamma'",
            )
        return

    label, probabilities = operator.outputs[0], operator.outputs[1]
    if per_iteration == 1:
        positive = node("Sigmoid", [raw])
        one = const([1.0], _DOUBLE, [1])
        proba = node("Concat", [node("Sub", [one, positive]), positive], axis=1)
        # scikit-learn: class 1 when the raw score is > 0 (a 0.5 tie goes to class 0)
        above = node("Greater", [raw, const([0.0], _DOUBLE, [1])])
        flat = node("Reshape", [above, const([-1], _INT64, [1])])
        index = node("Cast", [flat], to=_INT64)
    else:
        proba = node("Softmax", [raw], axis=1)
        index = node("ArgMax", [raw], axis=1, keepdims=0)
    cast_to(probabilities, proba)
    classes = np.asarray(model.classes_).tolist()
    label_type = int(label.type.to_onnx_type().tensor_type.elem_type)
    table = name("hgb_classes")
    if label_type == _STRING:
        container.add_initializer(table, _STRING, [len(classes)], [str(c) for c in classes])
    else:
        container.add_initializer(table, _INT64, [len(classes)], [int(c) for c in classes])
    node("Gather", [table, index], label.full_name, axis=0)


def raise_ml_opset(model: Any) -> None:
    """Import ai.onnx.ml at opset 5 when the graph has a ``TreeEnsemble`` node."""
    if not any(n.op_type == "TreeEnsemble" and n.domain == "ai.onnx.ml" for n in model.graph.node):
        return
    deprecated = {"TreeEnsembleRegressor", "TreeEnsembleClassifier"}
    if any(n.op_type in deprecated for n in model.graph.node):
        raise PackagingError(
            "the pipeline mixes HistGradientBoosting with other tree models, whose ONNX "
            "operators cannot share one graph",
            hint="use one kind of tree ensemble per pipeline",
        )
    for opset in model.opset_import:
        if opset.domain == "ai.onnx.ml":
            opset.version = max(opset.version, ML_OPSET)
            return
    model.opset_import.add(domain="ai.onnx.ml", version=ML_OPSET)


def _check_supported(model: Any) -> None:
    categorical = getattr(model, "is_categorical_", None)
    if getattr(model, "_preprocessor", None) is not None or (
        categorical is not None and bool(np.any(categorical))
    ):
        raise PackagingError(
            f"{type(model).__name__} with native categorical features cannot be exported",
            hint="encode categories in the feature transform (onehot/ordinal) instead",
        )


def _ensemble_attributes(predictors: list[list[Any]], per_iteration: int) -> dict[str, Any]:
    """``TreeEnsemble`` attributes for every tree; tree k of an iteration feeds target k."""
    from onnx import numpy_helper

    roots: list[int] = []
    features: list[int] = []
    splits: list[float] = []
    true_ids: list[int] = []
    true_leaf: list[int] = []
    false_ids: list[int] = []
    false_leaf: list[int] = []
    missing_true: list[int] = []
    leaf_targets: list[int] = []
    leaf_weights: list[float] = []

    for iteration in predictors:
        for target, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if bool(nodes["is_leaf"][0]):
                # a tree that is one leaf: ONNX needs a split, so both branches reach it
                leaf = len(leaf_weights)
                leaf_targets.append(target)
                leaf_weights.append(float(nodes["value"][0]))
                roots.append(len(features))
                features.append(0)
                splits.append(0.0)
                true_ids.append(leaf)
                true_leaf.append(1)
                false_ids.append(leaf)
                false_leaf.append(1)
                missing_true.append(1)
                continue
            interior: dict[int, int] = {}
            leaves: dict[int, int] = {}
            for i in range(len(nodes)):
                if bool(nodes["is_leaf"][i]):
                    leaves[i] = len(leaf_weights) + len(leaves)
                else:
                    interior[i] = len(features) + len(interior)
            roots.append(interior[0])
            for i in sorted(interior):
                features.append(int(nodes["feature_idx"][i]))
                splits.append(float(nodes["num_threshold"][i]))
                for child, ids, is_leaf in (
                    (int(nodes["left"][i]), true_ids, true_leaf),
                    (int(nodes["right"][i]), false_ids, false_leaf),
                ):
                    if child in leaves:
                        ids.append(leaves[child])
                        is_leaf.append(1)
                    else:
                        ids.append(interior[child])
                        is_leaf.append(0)
                missing_true.append(int(bool(nodes["missing_go_to_left"][i])))
            for i in sorted(leaves):
                leaf_targets.append(target)
                leaf_weights.append(float(nodes["value"][i]))

    return {
        "aggregate_function": _SUM,
        "post_transform": 0,
        "n_targets": per_iteration,
        "tree_roots": roots,
        "nodes_featureids": features,
        "nodes_modes": numpy_helper.from_array(
            np.full(len(features), _BRANCH_LEQ, dtype=np.uint8), "nodes_modes"
        ),
        "nodes_splits": numpy_helper.from_array(np.asarray(splits, dtype=np.float64), "splits"),
        "nodes_truenodeids": true_ids,
        "nodes_trueleafs": true_leaf,
        "nodes_falsenodeids": false_ids,
        "nodes_falseleafs": false_leaf,
        "nodes_missing_value_tracks_true": missing_true,
        "leaf_targetids": leaf_targets,
        "leaf_weights": numpy_helper.from_array(
            np.asarray(leaf_weights, dtype=np.float64), "leaf_weights"
        ),
    }
