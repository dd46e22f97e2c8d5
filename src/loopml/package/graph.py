"""Small, explicit edits to an exported ONNX graph.

Converters produce a correct graph; these edits give every loopml model the same face:
inputs typed as the data frame's columns (an ``int64`` or ``bool`` column stays ``int64`` or
``bool`` on the wire and is cast inside the graph), outputs with fixed names and dtypes
(``variable`` / ``label`` / ``probabilities`` / ``scores``, floats as ``double``), and the
signature stored in the model's metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import onnx

__all__ = [
    "cast_inputs",
    "finalize_outputs",
    "label_from_probabilities",
    "opsets_of",
    "prune_dead_nodes",
    "rename_inputs",
    "set_metadata",
]

_CAST_SUFFIX = "__loopml_cast"


def cast_inputs(model: onnx.ModelProto, wire_types: Mapping[str, int]) -> None:
    """Change graph inputs to ``wire_types`` and cast them back to what the graph expects.

    ``wire_types`` maps input name → ONNX element type clients send; the graph keeps using
    the type it was converted with (through a ``Cast`` node placed first).
    """
    import onnx

    if not wire_types:
        return
    graph = model.graph
    casts = []
    for value in graph.input:
        wire = wire_types.get(value.name)
        tensor_type = value.type.tensor_type
        if wire is None or tensor_type.elem_type == wire:
            continue
        internal = tensor_type.elem_type
        cast_name = value.name + _CAST_SUFFIX
        _rename_uses(graph.node, value.name, cast_name)
        casts.append(onnx.helper.make_node("Cast", [value.name], [cast_name], to=internal))
        tensor_type.elem_type = wire
    for node in reversed(casts):
        graph.node.insert(0, node)


def rename_inputs(model: onnx.ModelProto, names: list[str]) -> None:
    """Give the graph inputs exactly ``names`` (in order).

    skl2onnx rewrites input names it finds unsafe (``"od280/od315"`` becomes
    ``"od280_od315"``); ONNX allows any string, and requests use the column names.
    """
    graph = model.graph
    if len(graph.input) != len(names):
        return
    for value, wanted in zip(graph.input, names, strict=True):
        if value.name != wanted:
            _rename_uses(graph.node, value.name, wanted)
            value.name = wanted


def finalize_outputs(model: onnx.ModelProto, wanted: Mapping[str, tuple[str, int | None]]) -> None:
    """Rename and/or cast graph outputs: ``{current: (new_name, elem_type or None)}``.

    Outputs not named in ``wanted`` are removed from the graph's outputs (their nodes stay and
    are pruned by onnxruntime's optimiser).
    """
    import onnx

    graph = model.graph
    kept = []
    for value in graph.output:
        if value.name not in wanted:
            continue
        new_name, elem_type = wanted[value.name]
        tensor_type = value.type.tensor_type
        target = elem_type if elem_type is not None else tensor_type.elem_type
        if new_name == value.name and target == tensor_type.elem_type:
            kept.append(value)
            continue
        source = value.name
        if new_name == value.name:
            # the output keeps its name: the producer now writes to a private name instead
            source = value.name + "__loopml_raw"
            _rename_producers(graph.node, value.name, source)
            _rename_uses(graph.node, value.name, source)
        if target == tensor_type.elem_type:
            graph.node.append(onnx.helper.make_node("Identity", [source], [new_name]))
        else:
            graph.node.append(onnx.helper.make_node("Cast", [source], [new_name], to=target))
        replacement = onnx.ValueInfoProto()
        replacement.CopyFrom(value)
        replacement.name = new_name
        replacement.type.tensor_type.elem_type = target
        kept.append(replacement)
    del graph.output[:]
    graph.output.extend(kept)


def label_from_probabilities(model: onnx.ModelProto, classes: list[Any]) -> bool:
    """Make ``label`` the class with the highest probability, first one on ties.

    That is how scikit-learn's tree ensembles predict (``classes_[argmax(proba)]``);
    onnxruntime's tree kernels break a 50/50 vote the other way. Returns False (graph
    unchanged) when the classes are neither all integers nor all strings.
    """
    import onnx

    if all(isinstance(c, str) for c in classes):
        table = onnx.helper.make_tensor(
            "loopml_classes", onnx.TensorProto.STRING, [len(classes)], [c.encode() for c in classes]
        )
    elif all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        table = onnx.helper.make_tensor(
            "loopml_classes", onnx.TensorProto.INT64, [len(classes)], classes
        )
    else:
        return False
    graph = model.graph
    _rename_producers(graph.node, "label", "loopml_unused_label")
    graph.initializer.append(table)
    # Votes are summed in float32 in an order that depends on onnxruntime's threads, so an
    # exact 50/50 tie comes out as 0.50000024/0.49999979 one way or the other. Rounding to
    # 1e-6 first restores the tie, which ArgMax then breaks like NumPy: first class wins.
    scale = onnx.helper.make_tensor("loopml_vote_scale", onnx.TensorProto.DOUBLE, [1], [1e6])
    graph.initializer.append(scale)
    graph.node.append(
        onnx.helper.make_node("Mul", ["probabilities", "loopml_vote_scale"], ["loopml_votes"])
    )
    graph.node.append(onnx.helper.make_node("Round", ["loopml_votes"], ["loopml_rounded"]))
    graph.node.append(
        onnx.helper.make_node(
            "ArgMax", ["loopml_rounded"], ["loopml_label_index"], axis=1, keepdims=0
        )
    )
    graph.node.append(
        onnx.helper.make_node("Gather", ["loopml_classes", "loopml_label_index"], ["label"], axis=0)
    )
    prune_dead_nodes(model)
    return True


def prune_dead_nodes(model: onnx.ModelProto) -> None:
    """Drop nodes none of whose outputs reach a graph output (and unused initializers)."""
    graph = model.graph
    needed = {value.name for value in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
            for attribute in node.attribute:
                for sub in [attribute.g, *attribute.graphs]:
                    for inner in sub.node:
                        needed.update(name for name in inner.input if name)
    kept.reverse()
    del graph.node[:]
    graph.node.extend(kept)
    initializers = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def set_metadata(model: onnx.ModelProto, values: Mapping[str, str]) -> None:
    """Set (replace) ``metadata_props`` entries."""
    existing = {prop.key: prop for prop in model.metadata_props}
    for key, value in values.items():
        if key in existing:
            existing[key].value = value
        else:
            prop = model.metadata_props.add()
            prop.key = key
            prop.value = value


def opsets_of(model: onnx.ModelProto) -> dict[str, int]:
    """``{domain: version}`` the model imports (the default domain as ``""``)."""
    return {opset.domain or "": int(opset.version) for opset in model.opset_import}


def output_elem_types(model: onnx.ModelProto) -> dict[str, int]:
    return {value.name: value.type.tensor_type.elem_type for value in model.graph.output}


def _rename_uses(nodes: Iterable[Any], old: str, new: str) -> None:
    for node in nodes:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for attribute in node.attribute:
            # subgraphs (If/Loop/Scan bodies) may read outer-scope values by name
            if attribute.g.node:
                _rename_uses(attribute.g.node, old, new)
            for sub in attribute.graphs:
                _rename_uses(sub.node, old, new)


def _rename_producers(nodes: Iterable[Any], old: str, new: str) -> None:
    for node in nodes:
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
