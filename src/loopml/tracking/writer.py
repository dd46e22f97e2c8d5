"""Buffered, asynchronous writes of metrics, params and tags.

``log_metric`` in a training loop is called thousands of times; a database round trip per
call is what makes MLflow's tracking slow. Calls here are validated in the caller's thread,
appended to an in-memory buffer, and written by a daemon thread in one transaction per flush
(every ``interval`` seconds or ``max_pending`` records, whichever comes first).

Nothing is lost on the ways a Python process normally stops: ``flush()`` is called by
``end_run``, by the ``start_run`` context manager on an exception, at interpreter exit
(``atexit``) and on SIGTERM (see :mod:`loopml.tracking.fluent`). Under SIGKILL at most the
last ``interval`` seconds of values are lost, and the run shows as FAILED once its heartbeat
goes stale. A write that fails is kept and retried; if it still fails at an explicit flush
the error is raised there.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from loopml.errors import BackendUnavailableError, ConflictError, LoopMLError

if TYPE_CHECKING:
    from loopml.tracking.store import MetricRecord, TrackingStore

__all__ = ["BackgroundWriter"]


class _Pending:
    __slots__ = ("metrics", "params", "tags")

    def __init__(self) -> None:
        self.metrics: list[MetricRecord] = []
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)

    @classmethod
    def of(
        cls, metrics: list[MetricRecord], params: dict[str, str], tags: dict[str, str]
    ) -> _Pending:
        pending = cls()
        pending.metrics, pending.params, pending.tags = metrics, params, tags
        return pending


class BackgroundWriter:
    """Buffers run data per run and writes it from a background thread."""

    def __init__(
        self,
        store: TrackingStore,
        *,
        interval: float = 0.5,
        max_pending: int = 50_000,
        heartbeat_interval: float = 15.0,
    ) -> None:
        self.store = store
        self.interval = interval
        self.max_pending = max_pending
        self.heartbeat_interval = heartbeat_interval
        self._pending: dict[str, _Pending] = {}
        self._count = 0
        self._live_runs: set[str] = set()
        # Params each run was given through this writer, so that re-logging one with a
        # different value fails at the call even after the first value was flushed.
        self._known_params: dict[str, dict[str, str]] = {}
        # Re-entrant: the SIGTERM handler flushes on the main thread, which may be holding
        # either lock at the moment the signal lands.
        self._lock = threading.RLock()
        self._flush_lock = threading.RLock()  # one flush at a time, in order
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: LoopMLError | None = None

    # --- called from user threads -------------------------------------------------------------

    def add_metrics(self, run_id: str, records: Iterable[MetricRecord]) -> None:
        with self._lock:
            pending = self._pending.setdefault(run_id, _Pending())
            before = len(pending.metrics)
            pending.metrics.extend(records)
            self._count += len(pending.metrics) - before
            full = self._count >= self.max_pending
        self._ensure_thread()
        if full:
            self._wake.set()

    def add_params(self, run_id: str, params: dict[str, str]) -> None:
        with self._lock:
            known = self._known_params.setdefault(run_id, {})
            for key, value in params.items():
                if key in known and known[key] != value:
                    raise ConflictError(
                        f"param {key!r} of run {run_id} was already logged with value "
                        f"{known[key]!r}; it cannot change to {value!r}",
                        hint="params are immutable once logged; start a new run to change it",
                    )
            known.update(params)
            self._pending.setdefault(run_id, _Pending()).params.update(params)
        self._ensure_thread()

    def add_tags(self, run_id: str, tags: dict[str, str]) -> None:
        with self._lock:
            self._pending.setdefault(run_id, _Pending()).tags.update(tags)
        self._ensure_thread()

    def track(self, run_id: str) -> None:
        """Send heartbeats for ``run_id`` until :meth:`untrack`."""
        with self._lock:
            self._live_runs.add(run_id)
        self._ensure_thread()

    def untrack(self, run_id: str) -> None:
        with self._lock:
            self._live_runs.discard(run_id)

    def flush(
        self, run_id: str | None = None, *, end: tuple[str, int | None] | None = None
    ) -> None:
        """Write everything buffered now; raise the first write error seen since the last flush.

        With ``run_id`` and ``end``, that run's data and its final status go in one
        transaction (the rest of the buffer is flushed first, in order).
        """
        with self._flush_lock:
            self._write_all(raise_errors=True, keep_run=run_id if end else None)
            if run_id is not None and end is not None:
                with self._lock:
                    pending = self._pending.pop(run_id, None) or _Pending()
                    self._count -= len(pending.metrics)
                try:
                    self.store.log_batch(
                        run_id,
                        metrics=pending.metrics,
                        params=pending.params,
                        tags=pending.tags,
                        end=end,
                    )
                except BaseException:
                    # The run did not end: keep its values (and heartbeat) for a retry.
                    self._requeue(run_id, pending)
                    raise
                with self._lock:
                    self._live_runs.discard(run_id)
                    self._known_params.pop(run_id, None)
        error, self._error = self._error, None
        if error is not None:
            raise error

    def close(self) -> None:
        """Flush and stop the thread (idempotent)."""
        self._stopped.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        with self._flush_lock:
            self._write_all(raise_errors=False)

    @property
    def pending_count(self) -> int:
        with self._lock:
            return sum(len(p) for p in self._pending.values())

    # --- the writer thread --------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._stopped.clear()
                    self._thread = threading.Thread(
                        target=self._loop, name="loopml-writer", daemon=True
                    )
                    self._thread.start()

    def _loop(self) -> None:
        import time

        last_beat = time.monotonic()
        while not self._stopped.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            with self._flush_lock:
                try:
                    self._write_all(raise_errors=False)
                except Exception as exc:  # keep the thread (and heartbeats) alive
                    self._error = LoopMLError(f"background write failed: {exc}")
            if time.monotonic() - last_beat >= self.heartbeat_interval:
                last_beat = time.monotonic()
                with self._lock:
                    live = list(self._live_runs)
                # A missed beat is retried by the next one; it only risks a stale mark.
                with contextlib.suppress(LoopMLError):
                    self.store.heartbeat(live)

    def _write_all(self, *, raise_errors: bool, keep_run: str | None = None) -> None:
        with self._lock:
            if not self._pending:
                return
            taken = {k: v for k, v in self._pending.items() if k != keep_run and len(v)}
            for run_id in taken:
                del self._pending[run_id]
            self._count -= sum(len(v.metrics) for v in taken.values())
        if not taken:
            return
        try:
            self.store.log_batches(
                {run_id: (p.metrics, p.params, p.tags) for run_id, p in taken.items()}
            )
        except BackendUnavailableError as exc:
            # The store is unreachable or busy: keep everything and try again later.
            for run_id, p in taken.items():
                self._requeue(run_id, p)
            if raise_errors:
                raise
            self._error = exc
        except Exception:  # one run's bad data must not block the others
            # The flush rolled back as a whole: write run by run, so a run that no longer
            # exists or a param clash costs only that run's refused part.
            for run_id, p in taken.items():
                self._write_one(run_id, p)

    def _write_one(self, run_id: str, pending: _Pending) -> None:
        try:
            self.store.log_batch(
                run_id, metrics=pending.metrics, params=pending.params, tags=pending.tags
            )
            return
        except BackendUnavailableError as exc:
            self._requeue(run_id, pending)
            self._error = exc
            return
        except ConflictError as clash:
            self._error = clash
        except LoopMLError as exc:  # e.g. the run does not exist: nothing can be written
            self._error = exc
            return
        except Exception as exc:  # an unexpected driver error
            self._error = LoopMLError(
                f"could not write buffered values of run {run_id}: {exc}",
                hint="check the metadata store; the values were dropped",
            )
            return
        # A param clash: write everything else, and each param that does not clash.
        try:
            self.store.log_batch(run_id, metrics=pending.metrics, params={}, tags=pending.tags)
        except LoopMLError as exc:
            self._requeue(run_id, _Pending.of(pending.metrics, {}, pending.tags))
            self._error = exc
        for key, value in pending.params.items():
            with contextlib.suppress(ConflictError):
                self.store.log_batch(run_id, params={key: value})

    def _requeue(self, run_id: str, pending: _Pending) -> None:
        with self._lock:
            current = self._pending.get(run_id)
            if current is None:
                self._pending[run_id] = pending
            else:
                current.metrics[:0] = pending.metrics
                current.params = {**pending.params, **current.params}
                current.tags = {**pending.tags, **current.tags}
            self._count += len(pending.metrics)
