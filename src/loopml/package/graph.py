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

__all__ = ["cast_inputs", "finalize_outputs", "opsets_of", "set_metadata"]

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
