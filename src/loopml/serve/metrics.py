"""Prometheus metrics of the server, cheap enough for the hot path.

A request only adds one to a counter in a dictionary and appends its latency to a list
(about 0.15 µs); every half second the event loop folds those into the Prometheus metrics in
bulk (one locked addition per bucket and label set, not per request), and ``/metrics`` folds
before answering, so a scrape is always current. Folding on the event loop rather than on a
thread of its own means no lock on the hot path, and no background thread holding the GIL
while a request waits for it. Prediction value summaries are fed by the prediction log's
converter. With ``--workers N`` the CLI sets ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics``
aggregates every worker (prometheus-client's multiprocess mode).

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
import threading
from collections.abc import Callable, Sequence
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
        # Filled on the hot path, folded into the metrics by :meth:`flush`; both happen on
        # the event loop's thread, so neither needs a lock.
        self._counts: dict[tuple[str, str, str, int], int] = {}
        self._latencies: dict[tuple[str, str], list[float]] = {}
        self._batches: dict[int, tuple[Any, list[int], list[int], list[float]]] = {}
        self._flush_lock = threading.Lock()
        self._timer: Any = None
        self._load: Any = None

    # ---- hot path --------------------------------------------------------------------

    def request(self, model: str, version: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request (aggregated here; folded in by :meth:`flush`)."""
        key = (model, version, route, status)
        counts = self._counts
        counts[key] = counts.get(key, 0) + 1
        latencies = self._latencies.get((model, route))
        if latencies is None:
            latencies = self._latencies[(model, route)] = []
        latencies.append(seconds)

    def batch_observer(self, model: str, version: str) -> Callable[[int, int, float], None]:
        """A callback for one model version's batcher."""
        children = (
            self.batch_requests.labels(model, version),
            self.batch_rows.labels(model, version),
            self.inference.labels(model, version),
        )
        batches = self._batches
        key = id(children)

        def observe(n_requests: int, rows: int, seconds: float) -> None:
            item = batches.get(key)
            if item is None:
                item = batches[key] = (children, [], [], [])
            item[1].append(n_requests)
            item[2].append(rows)
            item[3].append(seconds)

        return observe

    # ---- folding in ------------------------------------------------------------------

    def start(self, load: Any = None, interval: float = 0.5) -> None:
        """Fold every ``interval`` seconds on the running event loop; ``load`` (requests in
        flight) is sampled at each fold."""
        import asyncio

        if self._timer is not None:
            return
        self._load = load
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.flush()
            self._timer = loop.call_later(interval, tick)

        self._timer = loop.call_later(interval, tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush()

    def flush(self) -> None:
        """Fold everything counted since the last fold into the Prometheus metrics.

        Call it on the thread that serves requests (the event loop's): the hot path adds to
        the same dictionaries without a lock.
        """
        with self._flush_lock:
            if self._load is not None:
                self.in_flight.set(self._load.active)
            counts, self._counts = self._counts, {}
            for (model, version, route, status), n in counts.items():
                self.requests.labels(model, version, route, str(status)).inc(n)
            latencies, self._latencies = self._latencies, {}
            for (model, route), values in latencies.items():
                _observe_many(self.latency.labels(model, route), values)
            for item in list(self._batches.values()):
                children, sizes, rows, durations = item
                if not sizes:
                    continue
                # Empty the lists in place: the observer keeps its reference to them.
                taken = (sizes[:], rows[:], durations[:])
                del sizes[:], rows[:], durations[:]
                _observe_many(children[0], taken[0])
                _observe_many(children[1], taken[1])
                _observe_many(children[2], taken[2])

    # ---- off the hot path ------------------------------------------------------------

    def loaded(self, model: str, version: str, target: str, seconds: float) -> None:
        self.load_seconds.labels(model, version).set(seconds)
        self.model_info.labels(model, version, target).set(1)

    def unloaded(self, model: str, version: str, target: str) -> None:
        with contextlib.suppress(KeyError):
            self.model_info.remove(model, version, target)

    def summarize(self, model: str, version: str, values: np.ndarray) -> None:
        """Prediction summaries for answered rows (called by the log's writer thread).

        Float predictions (regression, scores) feed the value summary; labels (integers or
        strings, i.e. classes) feed per-class counts, for at most 50 distinct classes.
        """
        self.predictions.labels(model, version).inc(len(values))
        if values.dtype.kind == "f":
            finite = values[np.isfinite(values)]
            summary = self.prediction_value.labels(model, version)
            count, total = getattr(summary, "_count", None), getattr(summary, "_sum", None)
            if count is not None and total is not None:
                # One addition per batch instead of one observe() per row.
                count.inc(len(finite))
                total.inc(float(finite.sum()))
            else:  # pragma: no cover - other prometheus-client layouts
                for value in finite.tolist():
                    summary.observe(value)
            return
        if values.ndim != 1:
            return
        labels, counts = np.unique(values.astype(str), return_counts=True)
        for label, n in zip(labels[:_MAX_CLASSES].tolist(), counts.tolist(), strict=False):
            self.prediction_class.labels(model, version, label).inc(n)

    def exposition(self) -> tuple[bytes, str]:
        """The ``/metrics`` body and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        self.flush()
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _observe_many(histogram: Any, values: Sequence[float]) -> None:
    """``observe`` each value, as one addition per bucket (prometheus-client internals)."""
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:  # pragma: no cover
        for value in values:
            histogram.observe(value)
        return
    array = np.asarray(values, dtype=np.float64)
    index = np.searchsorted(np.asarray(bounds, dtype=np.float64), array, side="left")
    for i, n in enumerate(np.bincount(index, minlength=len(bounds)).tolist()):
        if n and i < len(buckets):
            buckets[i].inc(n)
    total.inc(float(array.sum()))
