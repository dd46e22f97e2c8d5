"""Adaptive micro-batching: requests that meet at a busy model share one onnxruntime call.

No timer runs when traffic is light. A request that finds the server otherwise idle (alone in
its turn of the event loop, after a quiet turn, with nothing queued) executes at once, so
latency at one connection is the model's own (see :class:`Load`). Under concurrency, requests
that arrive while the event loop is busy are queued; the queue is flushed on the next turn of
the loop as one call of up to ``max_rows`` rows. While
requests keep arriving, the flush is put off turn by turn, but never past ``max_wait`` after
the first queued request: that is the latency budget batching may spend.

Fast models run on the event loop (a thread hop costs more than they do). A model whose calls
average more than ``offload_threshold`` runs in its own worker thread, and requests arriving
meanwhile queue up for the next call, which is where batching pays most.

If a merged call fails, each request is retried alone so one bad request cannot fail the
others that happened to share its batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from loopml.package.feed import Feed

__all__ = ["Batcher", "Load"]

Outputs = list[Any]
BatchObserver = Callable[[int, int, float], None]


class Load:
    """How busy this process is: requests in flight, and requests met per turn of the loop.

    uvicorn runs each request as a task; a fast request runs start to finish in one step, so
    "in flight" alone rarely sees concurrency even at 64 connections. What does show it is
    several requests starting in the same turn of the event loop: the second one of a turn,
    and every request of a turn that follows a busy one, is worth batching.
    """

    __slots__ = ("_busy", "_turn", "active")

    def __init__(self) -> None:
        self.active = 0
        self._turn = 0  # requests started in the current turn of the loop
        self._busy = False  # whether the previous turn saw more than one

    def concurrent(self) -> bool:
        """Count this request in the current turn; ``True`` if it is not alone."""
        if self._turn == 0:
            asyncio.get_running_loop().call_soon(self._end_turn)
        self._turn += 1
        return self._turn > 1 or self._busy or self.active > 1

    def _end_turn(self) -> None:
        self._busy = self._turn > 1
        self._turn = 0


class Batcher:
    """Merges concurrent calls to one model's ``run``; one per loaded model version."""

    def __init__(
        self,
        run: Callable[[dict[str, np.ndarray]], Outputs],
        *,
        load: Load,
        enabled: bool = True,
        max_rows: int = 512,
        max_wait_s: float = 0.002,
        offload_threshold_s: float = 0.002,
        observe: BatchObserver | None = None,
    ) -> None:
        self._run = run
        self._load = load
        self.enabled = enabled
        self._max_rows = max_rows
        self._max_wait = max_wait_s
        self._offload_threshold = offload_threshold_s
        self._observe = observe
        self._pending: list[tuple[Feed, asyncio.Future[Outputs]]] = []
        self._pending_rows = 0
        self._scheduled = False
        self._busy = False
        self._first_at = 0.0
        self._seen = 0
        self._mean_s = 0.0  # moving average of one call's duration
        self._executor: ThreadPoolExecutor | None = None

    async def __call__(self, feed: Feed) -> Outputs:
        """Outputs of the model for this feed (only this request's rows)."""
        if (
            not self._pending
            and not self._busy
            and (not self.enabled or not self._load.concurrent())
        ):
            if self._mean_s < self._offload_threshold:
                return self._timed([feed], feed.arrays, feed.rows)
            if not self.enabled:
                return await self._in_thread(feed.arrays, [feed], feed.rows)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outputs] = loop.create_future()
        self._pending.append((feed, future))
        self._pending_rows += feed.rows
        if not self._scheduled and not self._busy:
            self._scheduled = True
            self._first_at = time.perf_counter()
            self._seen = 0
            loop.call_soon(self._flush)
        return await future

    def close(self) -> None:
        """Stop the worker thread, if one was started."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    # ---- internals -------------------------------------------------------------------

    def _flush(self) -> None:
        self._scheduled = False
        if self._busy or not self._pending:
            return
        loop = asyncio.get_running_loop()
        waited = time.perf_counter() - self._first_at
        growing = len(self._pending) > self._seen
        if (
            growing
            and self._pending_rows < self._max_rows
            and waited < self._max_wait
            and self._load.active > len(self._pending)
        ):
            # Requests are still arriving: give them one more turn of the loop to join.
            self._seen = len(self._pending)
            self._scheduled = True
            loop.call_soon(self._flush)
            return
        batch, rows = self._take()
        if not self.enabled or self._mean_s < self._offload_threshold:
            self._execute(batch, rows)
            if self._pending:
                self._reschedule(loop)
            return
        self._busy = True
        task = loop.create_task(self._execute_in_thread(batch, rows))
        task.add_done_callback(lambda _: self._after_thread(loop))

    def _take(self) -> tuple[list[tuple[Feed, asyncio.Future[Outputs]]], int]:
        pending = self._pending
        count, rows = 0, 0
        while count < len(pending) and (
            count == 0 or (self.enabled and rows + pending[count][0].rows <= self._max_rows)
        ):
            rows += pending[count][0].rows
            count += 1
        batch = pending[:count]
        del pending[:count]
        self._pending_rows -= rows
        return batch, rows

    def _reschedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._first_at = time.perf_counter()
            self._seen = len(self._pending)
            loop.call_soon(self._flush)

    def _execute(self, batch: list[tuple[Feed, asyncio.Future[Outputs]]], rows: int) -> None:
        feeds = [feed for feed, _ in batch]
        try:
            merged = self._timed(feeds, _merge(feeds), rows)
            parts = _split(merged, feeds, rows)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc=exc)
                return
            self._one_by_one(batch)
            return
        for (_, future), part in zip(batch, parts, strict=True):
            _settle(future, result=part)

    async def _execute_in_thread(
        self, batch: list[tuple[Feed, asyncio.Future[Outputs]]], rows: int
    ) -> None:
        feeds = [feed for feed, _ in batch]
        try:
            merged = await self._in_thread(_merge(feeds), feeds, rows)
            parts = _split(merged, feeds, rows)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc=exc)
                return
            for feed, future in batch:
                try:
                    _settle(future, result=await self._in_thread(feed.arrays, [feed], feed.rows))
                except Exception as one:
                    _settle(future, exc=one)
            return
        for (_, future), part in zip(batch, parts, strict=True):
            _settle(future, result=part)

    def _after_thread(self, loop: asyncio.AbstractEventLoop) -> None:
        self._busy = False
        if self._pending:
            self._reschedule(loop)

    def _one_by_one(self, batch: list[tuple[Feed, asyncio.Future[Outputs]]]) -> None:
        for feed, future in batch:
            try:
                _settle(future, result=self._timed([feed], feed.arrays, feed.rows))
            except Exception as exc:
                _settle(future, exc=exc)

    def _timed(self, feeds: list[Feed], arrays: dict[str, np.ndarray], rows: int) -> Outputs:
        started = time.perf_counter()
        outputs = self._run(arrays)
        self._record(len(feeds), rows, time.perf_counter() - started)
        return outputs

    async def _in_thread(
        self, arrays: dict[str, np.ndarray], feeds: list[Feed], rows: int
    ) -> Outputs:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="loopml-model")
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        outputs = await loop.run_in_executor(self._executor, self._run, arrays)
        self._record(len(feeds), rows, time.perf_counter() - started)
        return outputs

    def _record(self, requests: int, rows: int, seconds: float) -> None:
        # Per-call time, not per row: what matters is whether one call blocks the loop.
        self._mean_s = seconds if self._mean_s == 0.0 else 0.9 * self._mean_s + 0.1 * seconds
        if self._observe is not None:
            self._observe(requests, rows, seconds)


def _merge(feeds: list[Feed]) -> dict[str, np.ndarray]:
    if len(feeds) == 1:
        return feeds[0].arrays
    return {name: np.concatenate([feed.arrays[name] for feed in feeds]) for name in feeds[0].arrays}


def _split(outputs: Outputs, feeds: list[Feed], rows: int) -> list[Outputs]:
    """Each request's slice of every output (outputs are batch-major)."""
    if len(feeds) == 1:
        return [outputs]
    for output in outputs:
        if len(output) != rows:
            raise ValueError("an output is not batch-major; cannot split a merged call")
    parts: list[Outputs] = []
    start = 0
    for feed in feeds:
        stop = start + feed.rows
        parts.append([output[start:stop] for output in outputs])
        start = stop
    return parts


def _settle(
    future: asyncio.Future[Outputs],
    *,
    result: Outputs | None = None,
    exc: BaseException | None = None,
) -> None:
    if future.done():  # the client went away and the request was cancelled
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result if result is not None else [])
