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
_TEXT = "text"  # a nullable string column (stored plain: Parquet has no null dictionary values)


def prediction_batches(
    entries: list[Any], *, log_inputs: bool = True
) -> Iterator[tuple[tuple[str, str, str], Any, Any]]:
    """``((model, version, date), RecordBatch, served)`` for a list of :class:`LogEntry`.

    ``served`` holds the predictions answered to clients (not shadows, not failures), for the
    metrics' prediction summaries; ``None`` when there are none.
    """
    first = entries[0] if entries else None
    if first is not None and _one_group(entries, first):
        # The common case (one model version, one day) needs no per-entry keys.
        batch, served = _prediction_batch(entries, log_inputs)
        yield (first.name, first.version, _date(first.timestamp_ms // _MS_PER_DAY)), batch, served
        return
    groups: dict[tuple[str, str, int, int], list[Any]] = {}
    for entry in entries:
        day = entry.timestamp_ms // _MS_PER_DAY
        groups.setdefault((entry.name, entry.version, day, id(entry.model)), []).append(entry)
    for (name, version, day, _), group in groups.items():
        batch, served = _prediction_batch(group, log_inputs)
        yield (name, version, _date(day)), batch, served


def _one_group(entries: list[Any], first: Any) -> bool:
    """Whether every entry has ``first``'s model, name, version and UTC day."""
    model, name, version = first.model, first.name, first.version
    day_start = first.timestamp_ms // _MS_PER_DAY * _MS_PER_DAY
    day_end = day_start + _MS_PER_DAY
    for entry in entries:
        if (
            entry.model is not model
            or not day_start <= entry.timestamp_ms < day_end
            or entry.name != name
            or entry.version != version
        ):
            return False
    return True


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


def _prediction_batch(group: list[Any], log_inputs: bool) -> tuple[Any, Any]:
    import pyarrow as pa

    ok = [e for e in group if e.status == 200 and e.outputs is not None]
    failed = [e for e in group if not (e.status == 200 and e.outputs is not None)]
    model = next((e.model for e in group if e.model is not None), None)
    every = ok + failed if failed else ok
    values = None
    counts: list[int] = []
    if model is not None and ok:
        index_of = model.prediction_index
        parts = [e.outputs[index_of] for e in ok]
        counts = [len(part) for part in parts]
        values = np.asarray(model.flatten(_concat(parts, (0,), None)))
    total = sum(counts)
    # Row i of the batch belongs to entry gather[i]; with one row per request (the common
    # case) that is the identity and request-level columns need no gathering at all.
    single_rows = total == len(ok) and not failed
    reps = np.array(counts + [1] * len(failed), dtype=np.int64)
    gather = None if single_rows else np.repeat(np.arange(len(every), dtype=np.int32), reps)
    # One pass in C turns the entries (named tuples) into columns.
    (request_id, timestamp, _, _, _, target, shadow, protocol, status, error, latency) = (
        list(zip(*every, strict=True))[:11] if every else [()] * 11
    )

    indices = pa.array(
        gather if gather is not None else np.arange(len(every), dtype=np.int32), pa.int32()
    )

    def per_entry(values: Any, kind: Any) -> Any:
        if kind == _TEXT and gather is None:
            return pa.array(values, pa.string())
        if kind == pa.string():
            # Each request's text repeated for its rows: a dictionary over the requests costs
            # nothing per row, and Parquet stores such columns dictionary-encoded anyway.
            return pa.DictionaryArray.from_arrays(indices, pa.array(values, kind))
        if gather is None:
            return pa.array(values, kind)
        if kind == _TEXT:
            return pa.array(np.asarray(values, dtype=object)[gather], pa.string())
        return pa.array(np.asarray(values)[gather], kind)

    if single_rows:
        rows = np.zeros(total, dtype=np.int32)
    else:
        starts = np.cumsum(reps) - reps
        rows = (np.arange(int(reps.sum())) - np.repeat(starts, reps)).astype(np.int32)
        if failed:
            rows[total:] = -1
    n = len(rows)
    name, version = (every[0].name, every[0].version) if every else ("", "")
    columns: dict[str, Any] = {
        "request_id": per_entry(request_id, pa.string()),
        "row": pa.array(rows, pa.int32()),
        "timestamp": per_entry(timestamp, pa.timestamp("ms", tz="UTC")),
        "model": pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), pa.array([name])),
        "version": pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), pa.array([version])),
        "target": per_entry(target, pa.string()),
        "shadow": per_entry(shadow, pa.bool_()),
        "protocol": per_entry(protocol, pa.string()),
        "status": per_entry(status, pa.int16()),
        "error": per_entry(error, _TEXT),
        "latency_ms": per_entry(latency, pa.float64()),
    }
    served = None
    if model is not None:
        if values is None:
            values = np.empty(0, dtype=np.float64)
        columns["inputs"] = _inputs(model, ok, total, len(failed), log_inputs)
        prediction, others = _outputs(model, ok, values, total, len(failed))
        columns["prediction"] = prediction
        if others is not None:
            columns["outputs"] = others
        if ok:
            answered = ~np.repeat(np.array(shadow[: len(ok)], dtype=bool), counts)
            served = values[answered] if not answered.all() else values
    return pa.record_batch(columns), served


def _inputs(model: Any, ok: list[Any], total: int, n_failed: int, log_inputs: bool) -> Any:
    import pyarrow as pa

    schema = model.schema
    fields: list[tuple[str, Any]] = []  # (column name, values as numpy 1-d of length total)
    usable = log_inputs and all(e.inputs is not None for e in ok)
    if schema.input_layout == "tensor":
        spec = schema.inputs[0]
        width = spec.width or 0
        names = list(schema.feature_names or [f"f{j}" for j in range(width)])
        matrix = (
            _concat([e.inputs[spec.name] for e in ok], (0, width), spec.np_dtype)
            if usable
            else None
        )
        for j, name in enumerate(names):
            fields.append((name, matrix[:, j] if matrix is not None and matrix.ndim == 2 else None))
    else:
        for spec in schema.inputs:
            if usable and len(spec.shape) <= 2 and (len(spec.shape) < 2 or spec.shape[1] == 1):
                # Every feed of one input has the same number of dimensions: join, then flatten.
                name = spec.name
                values = _concat([e.inputs[name] for e in ok], (0,), spec.np_dtype).reshape(-1)
            else:
                values = None
            fields.append((spec.name, values))
    arrays, names_out = [], []
    for name, values in fields:
        kind = _arrow_type(
            model.schema.inputs[0].np_dtype
            if schema.input_layout == "tensor"
            else _spec(schema, name).np_dtype
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


def _outputs(
    model: Any, ok: list[Any], pred_values: np.ndarray, total: int, n_failed: int
) -> tuple[Any, Any]:
    import pyarrow as pa

    schema = model.schema
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
