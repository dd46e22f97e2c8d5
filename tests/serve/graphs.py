"""Small ONNX graphs built by hand, for datatypes and output kinds the packaged models lack."""

from __future__ import annotations

import numpy as np


def flags_onnx() -> bytes:
    """Inputs ``flag`` (BOOL) and ``count`` (INT64), both ``[-1, 1]``; outputs ``not_flag``
    (BOOL, the negation) and ``double`` (INT64, ``2 * count``)."""
    import onnx
    from onnx import TensorProto, helper

    def column(name: str, kind: int) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, kind, ["N", 1])

    graph = helper.make_graph(
        [
            helper.make_node("Not", ["flag"], ["not_flag"]),
            helper.make_node("Add", ["count", "count"], ["double"]),
        ],
        "flags",
        [column("flag", TensorProto.BOOL), column("count", TensorProto.INT64)],
        [column("not_flag", TensorProto.BOOL), column("double", TensorProto.INT64)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def zipmap_classifier_onnx() -> bytes:
    """A plain skl2onnx logistic regression on 3 float32 features: ``output_label`` (INT64) and
    ``output_probability``, a sequence of ``{class: probability}`` maps (ZipMap)."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    features = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    labels = (features[:, 0] > 0).astype(np.int64)
    model = LogisticRegression().fit(features, labels)
    return to_onnx(model, features[:1]).SerializeToString()
