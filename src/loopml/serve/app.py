"""The ASGI application: a fast front for inference routes, Starlette for everything else.

Inference routes (``/predict``, ``/invocations``, ``/v2/.../infer``, ``/feedback``, the admin
``PUT``) are matched by the front in one dictionary lookup (or one regular expression for
paths with a model name) and answered without Starlette's request and response objects:
on the hot path that is most of the cost left once onnxruntime is this fast. Everything
else (health, metadata, ``/metrics``, ``/docs``, ``/openapi.json``) is a Starlette route.

This module holds the **one table mapping error types to HTTP status codes**
(:data:`STATUS_BY_ERROR`). Protocols raise :mod:`loopml.errors` types and choose only the
shape of their error body. Anything unexpected is logged and answered 500 in the protocol's
format, never as a bare traceback.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from loopml.errors import (
    AlreadyExistsError,
    BackendUnavailableError,
    ConflictError,
    InvalidInputError,
    LoopMLError,
    NotFoundError,
)
from loopml.serve.batching import Load
from loopml.serve.limits import (
    BodyTooLargeError,
    ClientDisconnectedError,
    UnsupportedMediaTypeError,
    read_body,
)
from loopml.serve.metrics import ServeMetrics
from loopml.serve.models import ModelLoader, ModelTable
from loopml.serve.predlog import PredictionLog
from loopml.serve.protocols.admin import UnauthorizedError
from loopml.serve.protocols.body import decoded_body
from loopml.serve.routing import Router, TrafficPolicy
from loopml.serve.settings import ServeSettings
from loopml.serve.source import ModelSource, RegistrySource
from loopml.serve.state import Call, Reply, ServerState, record_answered

__all__ = ["STATUS_BY_ERROR", "ServingApp", "create_app", "create_app_from_env", "status_for"]

logger = logging.getLogger("loopml.serve")

# Most specific first: the first matching type decides the status.
STATUS_BY_ERROR: tuple[tuple[type[BaseException], int], ...] = (
    (BodyTooLargeError, 413),
    (UnsupportedMediaTypeError, 415),
    (UnauthorizedError, 401),
    (NotFoundError, 404),
    (InvalidInputError, 400),
    (AlreadyExistsError, 409),
    (ConflictError, 409),
    (BackendUnavailableError, 503),
    (LoopMLError, 400),
)

Handler = Callable[[Call, ServerState], Awaitable[Reply]]
ErrorBody = Callable[[LoopMLError, int, "Call | None"], dict[str, Any]]


def status_for(exc: BaseException) -> int:
    """The HTTP status for an error (500 for anything that is not a loopml error)."""
    for kind, status in STATUS_BY_ERROR:
        if isinstance(exc, kind):
            return status
    return 500


class _FastRoute:
    __slots__ = ("error_body", "handler", "method", "not_allowed", "route")

    def __init__(self, route: str, handler: Handler, error_body: ErrorBody, method: str) -> None:
        self.route = route
        self.handler = handler
        self.error_body = error_body
        self.method = method
        self.not_allowed = Reply(
            405,
            f'{{"error": "use {method} on this endpoint"}}'.encode(),
            headers=[(b"allow", method.encode())],
        )


class ServingApp:
    """The ASGI callable uvicorn runs."""

    def __init__(self, state: ServerState, fallback: Any) -> None:
        from loopml.serve import feedback
        from loopml.serve.protocols import admin, mlflow, predict, v2

        self.state = state
        self._fallback = fallback
        self._exact: dict[str, _FastRoute] = {}
        self._patterns: list[tuple[re.Pattern[str], _FastRoute]] = []
        for module, route, errors, method in (
            (predict, "predict", predict.error_body, "POST"),
            (v2, "v2", v2.error_body, "POST"),
            (mlflow, "mlflow", mlflow.error_body, "POST"),
            (feedback, "feedback", predict.error_body, "POST"),
            (admin, "admin", predict.error_body, "PUT"),
        ):
            for path, handler in module.FAST_ROUTES:
                fast = _FastRoute(route, handler, errors, method)
                if "{" in path:
                    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
                    self._patterns.append((re.compile(f"^{regex}$"), fast))
                else:
                    self._exact[path] = fast
        self._limit = state.settings.max_body_bytes
        self._metrics = state.metrics
        self._load = state.load

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            fast = self._exact.get(path)
            params: dict[str, str] = {}
            if fast is None and self._patterns and path.count("/") >= 3:
                for pattern, candidate in self._patterns:
                    match = pattern.match(path)
                    if match is not None:
                        fast, params = candidate, match.groupdict()
                        break
            if fast is not None:
                await self._serve(fast, params, scope, receive, send)
                return
        await self._fallback(scope, receive, send)

    async def _serve(
        self,
        fast: _FastRoute,
        params: dict[str, str],
        scope: dict[str, Any],
        receive: Any,
        send: Any,
    ) -> None:
        started = time.perf_counter()
        load = self._load
        load.active += 1
        metrics = self._metrics
        call = None
        error: str | None = None  # what an error reply says, for the prediction log
        try:
            request_id = _header(scope, b"x-request-id")
            call = Call(
                scope,
                b"",
                params,
                request_id.decode("latin-1")[:128] if request_id else self.state.new_request_id(),
            )
            if scope["method"] != fast.method:
                reply = fast.not_allowed
            else:
                call.body = await read_body(receive, self._limit, _header(scope, b"content-length"))
                if _header(scope, b"content-encoding") is not None:
                    # Every protocol takes gzip/deflate bodies (Triton's client compresses).
                    call.body = decoded_body(call, self._limit)
                reply = await fast.handler(call, self.state)
        except ClientDisconnectedError:
            return
        except LoopMLError as exc:
            status = status_for(exc)
            reply = _error_reply(fast, exc, status, call)
            error = exc.message
        except Exception as exc:
            logger.exception("unexpected error answering %s", scope.get("path"))
            wrapped = LoopMLError(f"internal error: {type(exc).__name__}: {str(exc)[:200]}")
            reply = _error_reply(fast, wrapped, 500, call)
            error = wrapped.message
        finally:
            load.active -= 1
        headers = [
            (b"content-type", reply.content_type),
            (b"content-length", str(len(reply.body)).encode()),
            (b"x-request-id", call.request_id.encode() if call is not None else b""),
            *reply.headers,
        ]
        try:
            await send({"type": "http.response.start", "status": reply.status, "headers": headers})
            await send({"type": "http.response.body", "body": reply.body})
        finally:
            # Bookkeeping after the reply is written: at one connection the client's next
            # request is still on its way while this runs.
            if metrics is not None:
                metrics.request(
                    call.model if call is not None else "",
                    call.version if call is not None else "",
                    fast.route,
                    reply.status,
                    time.perf_counter() - started,
                )
            if call is not None and call.answered is not None:
                # The model answered, but the reply may still be an error (a V2 request
                # asking for an output the model lacks): the log records what was sent.
                record_answered(self.state, call, reply.status, error)


def _error_reply(fast: _FastRoute, exc: LoopMLError, status: int, call: Call | None) -> Reply:
    import orjson

    return Reply(status, orjson.dumps(fast.error_body(exc, status, call)))


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def create_app(
    settings: ServeSettings,
    *,
    source: ModelSource | None = None,
    home: Path | None = None,
) -> ServingApp:
    """Build the server: load every model now (fail fast on a bad reference), wire the rest.

    ``source`` defaults to the loopml registry of :class:`loopml.config.Settings`, plus the
    ONNX files in ``settings.model_files``. ``home`` (default: ``LOOPML_HOME``) holds the
    prediction log and the shared state unless the settings place them elsewhere. With
    ``settings.deployment`` and a registry source, the running server records itself in the
    store's ``deployments`` table and shares traffic changes through it
    (:mod:`loopml.serve.deployment`).
    """
    from loopml.config import Settings
    from loopml.serve.deployment import traffic_store

    base = Settings.from_env()
    home = home or base.home
    source = source or default_source(settings, base)
    load = Load()
    metrics = ServeMetrics() if settings.metrics else None
    log = None
    if settings.log_predictions:
        from loopml.serve.logfiles import LogLocation

        location = LogLocation(settings.log_path(home))
        location.check_writable()
        log = PredictionLog(
            location,
            spool_folder=location.default_spool(home),
            spool_interval=settings.log_spool_interval_s,
            roll_interval=settings.log_roll_interval_s,
            log_inputs=settings.log_inputs,
            on_rows=metrics.summarize if metrics is not None else None,
        )
    loader = ModelLoader(
        source, settings, load, observer=metrics.batch_observer if metrics is not None else None
    )
    table = ModelTable()
    refs = list(settings.models) + [f"{name}:1" for name in settings.model_files]
    for ref in refs:
        target = loader.target(ref)
        table.add(target)
        if metrics is not None:
            model = target.model
            metrics.loaded(model.name, model.version, target.selector, model.load_seconds)
    router = Router(table)
    for name, spec in settings.traffic.items():
        router.set_policy(name, TrafficPolicy.parse(spec))
    traffic = traffic_store(settings, source)
    state = ServerState(settings, table, loader, router, metrics, log, traffic, load)
    return ServingApp(state, _starlette(state))


def create_app_from_env() -> ServingApp:
    """The factory uvicorn workers call (``loopml serve`` passes settings via the env)."""
    return create_app(ServeSettings.from_env())


def default_source(settings: ServeSettings, base: Any) -> ModelSource:
    from loopml.serve.source import FileSource

    files = FileSource(dict(settings.model_files.items()))
    if not settings.models:
        return files
    from loopml.registry import ModelRegistry

    registry = RegistrySource(ModelRegistry.from_settings(base))
    if not settings.model_files:
        return registry
    return _Combined(registry, files, set(settings.model_files))


class _Combined:
    """Registry models and file models side by side (names decide which source answers)."""

    def __init__(self, registry: RegistrySource, files: ModelSource, file_names: set[str]) -> None:
        self._registry, self._files, self._names = registry, files, file_names
        self.registry = registry.registry  # where the deployment is recorded

    def _pick(self, name: str) -> ModelSource:
        return self._files if name in self._names else self._registry

    def resolve(self, ref: Any) -> Any:
        from loopml.registry.refs import parse_ref

        return self._pick(parse_ref(ref).name).resolve(ref)

    def fetch(self, name: str, version: str) -> Any:
        return self._pick(name).fetch(name, version)


def _starlette(state: ServerState) -> Any:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import Route

    from loopml.serve.deployment import close_deployment, open_deployment
    from loopml.serve.openapi import DOCS_HTML, openapi_spec
    from loopml.serve.protocols import admin, mlflow, v2
    from loopml.serve.reload import Reloader

    reloader = Reloader(state)
    state.reloader = reloader

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        import asyncio

        converter = None
        if state.log is not None:
            state.log.start(convert_in_thread=False)
            converter = asyncio.get_running_loop().create_task(state.log.convert_forever())
        if state.metrics is not None:
            state.metrics.start(state.load)
        await open_deployment(state)
        reloader.start()
        # Everything loaded so far (models, libraries) lives as long as the server: move it
        # out of the garbage collector's sight, or every full collection walks it again.
        gc.collect()
        gc.freeze()
        # Background threads (the log writer, the reload poller's registry queries) hold the
        # GIL in turns of up to the switch interval (5 ms by default) while a request waits
        # for it: a 0.5 ms interval bounds that wait, and costs nothing while they sleep.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, 0.0005))
        try:
            yield
        finally:
            sys.setswitchinterval(switch_interval)
            await reloader.stop()
            if converter is not None:
                converter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await converter
            if state.log is not None:
                state.log.close()
            if state.metrics is not None:
                state.metrics.stop()
            await close_deployment(state)

    async def metrics(request: Request) -> Response:
        if state.metrics is None:
            raise HTTPException(404, "metrics are off in this server")
        body, content_type = state.metrics.exposition()
        return Response(body, 200, headers={"content-type": content_type})

    async def spec(request: Request) -> Response:
        import orjson

        return Response(orjson.dumps(openapi_spec(state)), media_type="application/json")

    async def docs(request: Request) -> Response:
        return HTMLResponse(DOCS_HTML)

    async def loopml_error(request: Request, exc: Exception) -> Response:
        import orjson

        assert isinstance(exc, LoopMLError)
        status = status_for(exc)
        if request.url.path.startswith("/v2"):
            body = v2.error_body(exc, status, None)
        else:
            body = exc.to_dict()
        return Response(orjson.dumps(body), status, media_type="application/json")

    async def http_error(request: Request, exc: Exception) -> Response:
        import orjson

        assert isinstance(exc, HTTPException)
        body = {"error": f"{exc.detail}: {request.method} {request.url.path}"}
        if exc.status_code == 404:
            body["hint"] = "see /docs for the endpoints this server answers"
        return Response(
            orjson.dumps(body), exc.status_code, media_type="application/json", headers=exc.headers
        )

    routes = [
        *v2.routes(state),
        *mlflow.routes(state),
        *admin.routes(state),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", spec, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={LoopMLError: loopml_error, HTTPException: http_error},
    )
