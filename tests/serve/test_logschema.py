"""Log columns: entries become one Arrow batch per model version and UTC date."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from loopml.serve.app import create_app
from loopml.serve.logschema import prediction_batches
from loopml.serve.predlog import LogEntry
from loopml.serve.settings import ServeSettings

_DAY_MS = 86_400_000
_MIDNIGHT = 20_000 * _DAY_MS  # 2024-10-04 00:00 UTC


def _loaded(models: dict[str, Path], tmp_path: Path, *names: str) -> dict[str, Any]:
    settings = ServeSettings(
        model_files={name: str(models[name]) for name in names}, log_predictions=False
    )
    app = create_app(settings, home=tmp_path)
    return {model.name: model for model in app.state.table.loaded()}


def _entry(model: Any, request_id: str, timestamp_ms: int, x: float) -> LogEntry:
    spec = model.schema.inputs[0]
    width = 20 if model.name == "forest" else 1
    inputs = {spec.name: np.full((1, width), x, dtype=spec.np_dtype)}
    outputs = [np.array([[2.0 * x]])]
    return LogEntry(
        request_id, timestamp_ms, model, model.name, model.version, model.version, False,
        "predict", 200, None, 0.1, inputs, outputs,
    )  # fmt: skip


def test_entries_of_one_version_and_day_make_one_batch_in_arrival_order(
    models: dict[str, Path], tmp_path: Path
) -> None:
    linear = _loaded(models, tmp_path, "linear")["linear"]
    entries = [_entry(linear, f"r{i}", _MIDNIGHT + 1000 * i, float(i)) for i in range(5)]
    batches = list(prediction_batches(entries))
    assert [key for key, _, _ in batches] == [("linear", "1", "2024-10-04")]
    batch = batches[0][1]
    assert batch.column("request_id").to_pylist() == ["r0", "r1", "r2", "r3", "r4"]
    assert batch.column("prediction").to_pylist() == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert batch.column("inputs").to_pylist() == [{"x": float(i)} for i in range(5)]


def test_entries_are_split_by_model_and_by_utc_date_across_midnight(
    models: dict[str, Path], tmp_path: Path
) -> None:
    loaded = _loaded(models, tmp_path, "linear", "forest")
    linear, forest = loaded["linear"], loaded["forest"]
    entries = [
        _entry(linear, "a", _MIDNIGHT - 1, 1.0),  # the last millisecond of 2024-10-03
        _entry(forest, "b", _MIDNIGHT - 1, 2.0),
        _entry(linear, "c", _MIDNIGHT, 3.0),
        _entry(linear, "d", _MIDNIGHT - 2, 4.0),
        _entry(forest, "e", _MIDNIGHT + 5, 5.0),
    ]
    ids = {
        key: batch.column("request_id").to_pylist() for key, batch, _ in prediction_batches(entries)
    }
    assert ids == {
        ("linear", "1", "2024-10-03"): ["a", "d"],
        ("forest", "1", "2024-10-03"): ["b"],
        ("linear", "1", "2024-10-04"): ["c"],
        ("forest", "1", "2024-10-04"): ["e"],
    }


def test_one_model_across_midnight_makes_one_batch_per_date(
    models: dict[str, Path], tmp_path: Path
) -> None:
    linear = _loaded(models, tmp_path, "linear")["linear"]
    entries = [_entry(linear, "a", _MIDNIGHT - 1, 1.0), _entry(linear, "b", _MIDNIGHT, 2.0)]
    ids = {key: b.column("request_id").to_pylist() for key, b, _ in prediction_batches(entries)}
    assert ids == {("linear", "1", "2024-10-03"): ["a"], ("linear", "1", "2024-10-04"): ["b"]}
