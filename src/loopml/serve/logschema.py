"""Columns of the prediction and feedback logs, built from queued entries in bulk.

Runs on the log's writer thread, never on the request path. Entries are grouped by model
version and UTC date, and each group becomes one Arrow record batch with vectorised columns
(one ``np.concatenate`` per input, no per-row Python), see :mod:`loopml.serve.predlog`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np

__all__ = ["feedback_batches", "prediction_batches"]

_MS_PER_DAY = 86_400_000


def prediction_batches(
    entries: list[Any], *, log_inputs: bool = True
) -> Iterator[tuple[tuple[str, str, str], Any]]:
    """``((model, version, date), RecordBatch)`` for a list of :class:`LogEntry`."""
    groups: dict[tuple[str, str, int, int], list[Any]] = {}
    for entry in entries:
        day = entry.timestamp_ms // _MS_PER_DAY
        groups.setdefault((entry.name, entry.version, day, id(entry.model)), []).append(entry)
    for (name, version, day, _), group in groups.items():
        yield (name, version, _date(day)), _prediction_batch(group, log_inputs)


def feedback_batches(entries: list[Any]) -> Iterator[tuple[tuple[str, str, str], Any]]:
    """``((model, version, date), RecordBatch)`` for a list of feedback entries."""
    import orjson
    import pyarrow as pa

    groups: dict[tuple[str, str, int], list[Any]] = {}
    for entry in entries:
        groups.setdefault(
            (entry.name, entry.version, entry.timestamp_ms // _MS_PER_DAY), []
        ).append(entry)
    for (name, version, day), group in groups.items():
        labels = [entry.label for entry in group]
        values = [float(v) if type(v) in (int, float) else None for v in labels]
        batch = pa.record_batch(
            {
                "request_id": pa.array([e.request_id for e in group], pa.string()),
                "row": pa.array([e.row for e in group], pa.int32()),
                "timestamp": pa.array(
                    [e.timestamp_ms for e in group], pa.timestamp("ms", tz="UTC")
                ),
                "model": pa.array([name] * len(group), pa.string()),
                "version": pa.array([version] * len(group), pa.string()),
                "label": pa.array([orjson.dumps(v).decode() for v in labels], pa.string()),
                "label_value": pa.array(values, pa.float64()),
            }
        )
        yield (name, version, _date(day)), batch


def _prediction_batch(group: list[Any], log_inputs: bool) -> Any:
    import pyarrow as pa

    ok = [e for e in group if e.status == 200 and e.outputs is not None]
    failed = [e for e in group if not (e.status == 200 and e.outputs is not None)]
    model = next((e.model for e in group if e.model is not None), None)
    counts = [len(model.predictions(e.outputs)) if model is not None else 0 for e in ok]
    total = sum(counts)
    reps = np.array(counts + [1] * len(failed), dtype=np.int64)
    every = ok + failed

    def repeat(values: list[Any], kind: Any) -> Any:
        return pa.array(np.repeat(np.array(values, dtype=object), reps), kind)

    rows = (
        np.concatenate(
            [np.arange(c, dtype=np.int32) for c in counts] + [np.full(len(failed), -1, np.int32)]
        )
        if every
        else np.empty(0, np.int32)
    )
    columns: dict[str, Any] = {
        "request_id": repeat([e.request_id for e in every], pa.string()),
        "row": pa.array(rows, pa.int32()),
        "timestamp": pa.array(
            np.repeat(np.array([e.timestamp_ms for e in every], np.int64), reps),
            pa.timestamp("ms", tz="UTC"),
        ),
        "model": repeat([e.name for e in every], pa.string()),
        "version": repeat([e.version for e in every], pa.string()),
        "target": repeat([e.target for e in every], pa.string()),
        "shadow": pa.array(np.repeat(np.array([e.shadow for e in every], bool), reps), pa.bool_()),
        "protocol": repeat([e.protocol for e in every], pa.string()),
        "status": pa.array(
            np.repeat(np.array([e.status for e in every], np.int16), reps), pa.int16()
        ),
        "error": repeat([e.error for e in every], pa.string()),
        "latency_ms": pa.array(
            np.repeat(np.array([e.latency_ms for e in every], np.float64), reps), pa.float64()
        ),
    }
    if model is not None:
        columns["inputs"] = _inputs(model, ok, total, len(failed), log_inputs)
        prediction, others = _outputs(model, ok, total, len(failed))
        columns["prediction"] = prediction
        if others is not None:
            columns["outputs"] = others
    return pa.record_batch(columns)


def _inputs(model: Any, ok: list[Any], total: int, n_failed: int, log_inputs: bool) -> Any:
    import pyarrow as pa

    schema = model.schema
    fields: list[tuple[str, Any]] = []  # (column name, values as numpy 1-d of length total)
    usable = log_inputs and all(e.inputs is not None for e in ok)
    if schema.layout == "tensor":
        spec = schema.inputs[0]
        width = spec.width or 0
        names = list(schema.features or [f"f{j}" for j in range(width)])
        matrix = (
            _concat([e.inputs[spec.name] for e in ok], (0, width), spec.dtype) if usable else None
        )
        for j, name in enumerate(names):
            fields.append((name, matrix[:, j] if matrix is not None and matrix.ndim == 2 else None))
    else:
        for spec in schema.inputs:
            if usable and len(spec.shape) <= 2 and (len(spec.shape) < 2 or spec.shape[1] == 1):
                values = _concat([e.inputs[spec.name].reshape(-1) for e in ok], (0,), spec.dtype)
            else:
                values = None
            fields.append((spec.name, values))
    arrays, names_out = [], []
    for name, values in fields:
        kind = _arrow_type(
            model.schema.inputs[0].dtype if schema.layout == "tensor" else _spec(schema, name).dtype
        )
        if values is None:
            arrays.append(pa.nulls(total + n_failed, kind))
        else:
            arrays.append(pa.concat_arrays([pa.array(values, kind), pa.nulls(n_failed, kind)]))
        names_out.append(name)
    if not arrays:
        return pa.nulls(total + n_failed, pa.struct([]))
    mask = None
    if n_failed or not usable:
        mask = pa.array([not usable] * total + [True] * n_failed)
    return pa.StructArray.from_arrays(arrays, names=names_out, mask=mask)


def _outputs(model: Any, ok: list[Any], total: int, n_failed: int) -> tuple[Any, Any]:
    import pyarrow as pa

    schema = model.schema
    pred_values = _concat([np.asarray(model.predictions(e.outputs)) for e in ok], (0,), None)
    prediction = _to_arrow(pred_values, n_failed)
    index = [s.name for s in schema.outputs].index(schema.prediction_output)
    arrays, names = [], []
    for i, spec in enumerate(schema.outputs):
        if i == index:
            continue
        parts = [e.outputs[i] for e in ok]
        if not all(isinstance(p, np.ndarray) for p in parts):
            continue  # e.g. ZipMap sequences of maps: not worth a column
        values = _concat(parts, (0, *spec.shape[1:]) if spec.shape else (0,), None)
        arrays.append(_to_arrow(values, n_failed))
        names.append(spec.name)
    if not arrays:
        return prediction, None
    mask = pa.array([False] * total + [True] * n_failed) if n_failed else None
    return prediction, pa.StructArray.from_arrays(arrays, names=names, mask=mask)


def _to_arrow(values: np.ndarray, n_failed: int) -> Any:
    import pyarrow as pa

    if values.ndim == 2:
        width = values.shape[1]
        kind = _arrow_type(values.dtype)
        flat = pa.array(values.reshape(-1), kind)
        array = pa.FixedSizeListArray.from_arrays(flat, width)
        return pa.concat_arrays([array, pa.nulls(n_failed, array.type)])
    if values.ndim > 2:
        values = np.array([str(v.tolist()) for v in values], dtype=object)
    kind = _arrow_type(values.dtype)
    return pa.concat_arrays([pa.array(values, kind), pa.nulls(n_failed, kind)])


def _concat(parts: list[np.ndarray], empty_shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    if not parts:
        return np.empty(empty_shape, dtype=dtype or np.float64)
    if len(parts) == 1:
        return np.asarray(parts[0])
    return np.concatenate(parts)


def _spec(schema: Any, name: str) -> Any:
    return next(spec for spec in schema.inputs if spec.name == name)


def _arrow_type(dtype: np.dtype[Any]) -> Any:
    import pyarrow as pa

    if dtype.kind in "OUS":
        return pa.string()
    return pa.from_numpy_dtype(dtype)


def _date(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")
