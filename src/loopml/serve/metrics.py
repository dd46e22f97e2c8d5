"""Prometheus metrics of the server, cheap enough for the hot path.

Labelled children are created once and cached, so a request costs two dictionary lookups and
two locked additions. Prediction value summaries are fed by the prediction log's writer
thread, off the request path. With ``--workers N`` the CLI sets ``PROMETHEUS_MULTIPROC_DIR``
and ``/metrics`` aggregates every worker (prometheus-client's multiprocess mode).

==================================  =========  ===============================================
metric                              type       labels
==================================  =========  ===============================================
``loopml_requests_total``           counter    model, version, route, status
``loopml_request_seconds``          histogram  model, route
``loopml_in_flight_requests``       gauge      (none)
``loopml_batch_requests``           histogram  model, version (requests merged per call)
``loopml_batch_rows``               histogram  model, version (rows per call)
``loopml_inference_seconds``        histogram  model, version (one onnxruntime call)
``loopml_model_load_seconds``       gauge      model, version
``loopml_model_info``               gauge      model, version, target (1 while served)
``loopml_predictions_total``        counter    model, version (predicted rows)
``loopml_prediction_value``         summary    model, version (numeric predictions)
``loopml_prediction_class_total``   counter    model, version, class (classifiers)
``loopml_reloads_total``            counter    model, outcome (swapped / failed)
==================================  =========  ===============================================
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ServeMetrics"]

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
_MAX_CLASSES = 50


class ServeMetrics:
    """The server's metrics in their own registry (several apps can live in one process)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "loopml_requests",
            "Requests answered.",
            ["model", "version", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "loopml_request_seconds",
            "Time to answer a request.",
            ["model", "route"],
            buckets=_LATENCY,
            registry=r,
        )
        self.in_flight = Gauge(
            "loopml_in_flight_requests",
            "Requests being answered.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.batch_requests = Histogram(
            "loopml_batch_requests",
            "Requests merged into one model call.",
            ["model", "version"],
            buckets=_SIZES,
            registry=r,
        )
        self.batch_rows = Histogram(
            "loopml_batch_rows",
            "Rows in one model call.",
            ["model", "version"],
            buckets=_SIZES,
            registry=r,
        )
        self.inference = Histogram(
            "loopml_inference_seconds",
            "Duration of one model call.",
            ["model", "version"],
            buckets=_LATENCY,
            registry=r,
        )
        self.load_seconds = Gauge(
            "loopml_model_load_seconds",
            "Time to load a model version.",
            ["model", "version"],
            registry=r,
            multiprocess_mode="max",
        )
        self.model_info = Gauge(
            "loopml_model_info",
            "1 for each version served, by target.",
            ["model", "version", "target"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.predictions = Counter(
            "loopml_predictions", "Predicted rows.", ["model", "version"], registry=r
        )
        self.prediction_value = Summary(
            "loopml_prediction_value",
            "Numeric predictions (count and sum give the mean).",
            ["model", "version"],
            registry=r,
        )
        self.prediction_class = Counter(
            "loopml_prediction_class",
            "Predicted rows by class.",
            ["model", "version", "class"],
            registry=r,
        )
        self.reloads = Counter(
            "loopml_reloads", "Hot reloads of a model.", ["model", "outcome"], registry=r
        )
        self._request_children: dict[tuple[str, str, str, int], Any] = {}
        self._latency_children: dict[tuple[str, str], Any] = {}

    # ---- hot path --------------------------------------------------------------------

    def request(self, model: str, version: str, route: str, status: int, seconds: float) -> None:
        key = (model, version, route, status)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self.requests.labels(model, version, route, str(status))
            self._request_children[key] = counter
        counter.inc()
        latency = self._latency_children.get((model, route))
        if latency is None:
            latency = self.latency.labels(model, route)
            self._latency_children[(model, route)] = latency
        latency.observe(seconds)

    def batch_observer(self, model: str, version: str) -> Callable[[int, int, float], None]:
        """A callback for one model version's batcher."""
        requests = self.batch_requests.labels(model, version)
        rows_hist = self.batch_rows.labels(model, version)
        inference = self.inference.labels(model, version)

        def observe(n_requests: int, rows: int, seconds: float) -> None:
            requests.observe(n_requests)
            rows_hist.observe(rows)
            inference.observe(seconds)

        return observe

    # ---- off the hot path ------------------------------------------------------------

    def loaded(self, model: str, version: str, target: str, seconds: float) -> None:
        self.load_seconds.labels(model, version).set(seconds)
        self.model_info.labels(model, version, target).set(1)

    def unloaded(self, model: str, version: str, target: str) -> None:
        with contextlib.suppress(KeyError):
            self.model_info.remove(model, version, target)

    def summarize(self, entries: list[Any]) -> None:
        """Prediction summaries from logged entries (called by the log's writer thread)."""
        for entry in entries:
            if entry.status != 200 or entry.outputs is None or entry.model is None or entry.shadow:
                continue
            values = entry.model.predictions(entry.outputs)
            n = len(values)
            self.predictions.labels(entry.name, entry.version).inc(n)
            array = np.asarray(values)
            if array.dtype.kind in "fiu" and entry.model.schema.classes is None:
                summary = self.prediction_value.labels(entry.name, entry.version)
                finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
                for value in finite.reshape(-1)[:1000].tolist():
                    summary.observe(value)
            else:
                labels, counts = np.unique(array.astype(str), return_counts=True)
                for label, count in zip(labels[:_MAX_CLASSES], counts[:_MAX_CLASSES], strict=True):
                    self.prediction_class.labels(entry.name, entry.version, str(label)).inc(
                        int(count)
                    )

    def exposition(self) -> tuple[bytes, str]:
        """The ``/metrics`` body and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
