"""One server's live state, and the inference path every protocol shares.

Protocols parse their wire format into a feed-building function and call :func:`infer`,
which routes the request, runs the model through its batcher, copies it to shadows and
queues the prediction-log entry. Nothing here knows about HTTP status codes: errors are
raised as :mod:`loopml.errors` types and mapped in one table in :mod:`loopml.serve.app`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loopml.errors import LoopMLError
from loopml.package.feed import Feed, FeedBuilder
from loopml.serve.batching import Load
from loopml.serve.metrics import ServeMetrics
from loopml.serve.models import LoadedModel, ModelLoader, ModelTable, Target
from loopml.serve.predlog import LogEntry, PredictionLog
from loopml.serve.routing import Router, TrafficStore
from loopml.serve.settings import ServeSettings

__all__ = ["Call", "Inference", "ServerState", "infer", "record_answered"]

logger = logging.getLogger("loopml.serve")


class Call:
    """One HTTP request on a fast route: what the protocol handlers read and annotate."""

    __slots__ = ("answered", "body", "model", "params", "request_id", "scope", "version")

    def __init__(
        self, scope: dict[str, Any], body: bytes, params: dict[str, str], request_id: str
    ) -> None:
        self.scope = scope
        self.body = body
        self.params = params
        self.request_id = request_id
        self.model = ""  # filled in once known, for metrics labels
        self.version = ""
        # An answered inference, waiting to be recorded in the prediction log once the reply
        # is sent (see :func:`record_answered`).
        self.answered: tuple[Any, ...] | None = None

    def header(self, name: bytes) -> bytes | None:
        """A request header (``name`` in lower case), or ``None``."""
        for key, value in self.scope["headers"]:
            if key == name:
                return value
        return None


@dataclass
class Reply:
    """What a handler answers: status, body bytes, content type and extra headers."""

    status: int
    body: bytes
    content_type: bytes = b"application/json"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass
class Inference:
    """The result of one inference: who answered, and the outputs for this request's rows."""

    model: LoadedModel
    target: Target | None
    feed: Feed
    outputs: list[Any]


class ServerState:
    """Everything a running server holds; built by the app factory, shared by protocols."""

    def __init__(
        self,
        settings: ServeSettings,
        table: ModelTable,
        loader: ModelLoader,
        router: Router,
        metrics: ServeMetrics | None,
        log: PredictionLog | None,
        traffic: TrafficStore,
        load: Load,
    ) -> None:
        self.settings = settings
        self.table = table
        self.loader = loader
        self.router = router
        self.metrics = metrics
        self.log = log
        self.traffic = traffic
        self.load = load
        self.default_model = settings.default_model
        self.sticky_header = settings.sticky_header.encode()
        self._id_prefix = os.urandom(6).hex()
        self._id_counter = 0
        self._background: set[asyncio.Task[Any]] = set()
        self.reloader: Any = None  # the hot-reload poller, set by the app factory

    def new_request_id(self) -> str:
        """Unique across processes and restarts: a random per-process prefix and a counter."""
        self._id_counter += 1
        return f"{self._id_prefix}{self._id_counter:x}"

    def spawn(self, coroutine: Any) -> None:
        """Run a coroutine in the background, keeping a reference so it is not collected."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


async def infer(
    state: ServerState,
    call: Call,
    name: str,
    build: Callable[[FeedBuilder], Feed],
    *,
    protocol: str,
    version: str | None = None,
) -> Inference:
    """Route, build the feed, run the model; feed the shadows.

    A request the model refuses is logged here; an answered one is left in ``call.answered``
    for the caller to log with :func:`record_answered` once its reply is sent.
    """
    target: Target | None
    if version is None:
        key = call.header(state.sticky_header)
        target, shadows = state.router.route(name, key)
        model = target.model
    else:
        model = state.table.version(name, version)
        target, shadows = None, ()
    call.model, call.version = model.name, model.version
    started = time.perf_counter()
    try:
        feed = build(model.feeds)
        outputs = await model.batcher(feed)
    except LoopMLError as exc:
        _log(state, call, model, target, protocol, 400, exc.message, started, None, None)
        raise
    if state.log is not None:
        # Recorded once the reply is on its way (the front calls record_answered): a client
        # waiting for its answer need not wait for its log entry too.
        call.answered = (model, target, protocol, started, time.perf_counter(), feed, outputs)
    for shadow in shadows:
        state.spawn(_shadow(state, call, shadow, feed, protocol))
    return Inference(model, target, feed, outputs)


async def _shadow(
    state: ServerState, call: Call, target: Target, feed: Feed, protocol: str
) -> None:
    """Run a copy of the request on a shadow target; its answer is logged, never returned."""
    model = target.model
    started = time.perf_counter()
    try:
        outputs = await model.batcher(feed)
    except LoopMLError as exc:
        _log(
            state, call, model, target, protocol, 400, exc.message, started, None, None, shadow=True
        )
    except Exception as exc:  # a shadow must never hurt the primary answer
        logger.warning("shadow %s failed: %s", model.label, exc)
        _log(
            state,
            call,
            model,
            target,
            protocol,
            500,
            str(exc)[:300],
            started,
            None,
            None,
            shadow=True,
        )
    else:
        _log(state, call, model, target, protocol, 200, None, started, feed, outputs, shadow=True)


def record_answered(
    state: ServerState, call: Call, status: int = 200, error: str | None = None
) -> None:
    """Record the inference :func:`infer` answered for ``call`` in the prediction log.

    Called after the reply is sent, before the connection's next request is served, so a
    client that posts feedback right after its answer finds its request id known. ``status``
    and ``error`` are those of the reply: when it was an error, the client got no
    predictions, so none are logged (and feedback for the request is refused).
    """
    answered = call.answered
    if answered is None:
        return
    call.answered = None
    model, target, protocol, started, ended, feed, outputs = answered
    if status >= 400:  # the client got an error, not these predictions
        feed = outputs = None
    _log(state, call, model, target, protocol, status, error, started, feed, outputs, ended=ended)


def _log(
    state: ServerState,
    call: Call,
    model: LoadedModel,
    target: Target | None,
    protocol: str,
    status: int,
    error: str | None,
    started: float,
    feed: Feed | None,
    outputs: list[Any] | None,
    *,
    shadow: bool = False,
    ended: float | None = None,
) -> None:
    log = state.log
    if log is None:
        return
    log.record(
        LogEntry(
            call.request_id,
            int(time.time() * 1000),
            model,
            model.name,
            model.version,
            target.selector if target is not None else model.version,
            shadow,
            protocol,
            status,
            error,
            ((time.perf_counter() if ended is None else ended) - started) * 1000,
            feed.arrays if feed is not None else None,
            outputs,
        )
    )
