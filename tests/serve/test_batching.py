"""Adaptive batching: concurrent requests share one model call; a lone request runs alone."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import signal
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from loopml.errors import InvalidInputError
from loopml.package.feed import Feed
from loopml.serve.batching import Batcher, Load

from .conftest import ServerProcess


def _batch_stats(metrics: str, model: str) -> tuple[float, float]:
    def value(name: str) -> float:
        match = re.search(rf'{name}{{model="{model}",version="1"}} ([0-9.e+]+)', metrics)
        assert match, name
        return float(match.group(1))

    return value("loopml_batch_requests_sum"), value("loopml_batch_requests_count")


def test_concurrent_requests_are_merged_and_each_gets_its_own_rows(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    # The server runs in its own process and the requests arrive in bursts: 50 connections
    # opened first, then one request written on each. A client in the server's process, or
    # one that builds each request as it sends it, paces them so that few ever meet.
    server = ServerProcess(["--model-file", f"forest={models['forest']}"], tmp_path / "home")
    try:
        rows = np.random.default_rng(3).normal(size=(200, 20)).round(3)
        bodies = [json.dumps({"instances": [row.tolist()]}).encode() for row in rows]
        answers = [a for k in range(0, 200, 50) for a in _burst(server.port, bodies[k : k + 50])]
        singles = [
            httpx.post(f"{server.url}/predict", json={"instances": [row.tolist()]})
            for row in rows[:5]
        ]
        assert all(status == 200 for status, _ in answers)
        together = np.array([answer["predictions"][0] for _, answer in answers])
        alone = np.array([r.json()["predictions"][0] for r in singles])
        assert together[:5] == pytest.approx(alone)  # merging never mixes rows up
        requests, calls = _batch_stats(httpx.get(f"{server.url}/metrics").text, "forest")
    finally:
        server.signal(signal.SIGTERM)
    assert requests == 205
    # Alone, bursts share well (42-86 calls); in a busy full test run this process sends them
    # slower and fewer meet (176 seen). Without batching every request is its own call (205).
    assert calls < 200, f"concurrent requests should share model calls ({calls:.0f} calls)"


def _burst(port: int, bodies: list[bytes]) -> list[tuple[int, Any]]:
    """One POST /predict per body, each on its own connection, all sent before any is read."""
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in bodies]
    try:
        for sock, body in zip(sockets, bodies, strict=True):
            sock.sendall(
                b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
        answers = []
        for sock in sockets:
            response = http.client.HTTPResponse(sock)
            response.begin()
            answers.append((response.status, json.loads(response.read())))
        return answers
    finally:
        for sock in sockets:
            sock.close()


def test_sequential_requests_run_alone(live_server: Any, models: dict[str, Path]) -> None:
    server = live_server(model_files={"linear": str(models["linear"])})
    with httpx.Client(base_url=server.url) as client:
        for _ in range(30):
            assert client.post("/predict", json={"instances": [[1.0]]}).status_code == 200
        requests, calls = _batch_stats(client.get("/metrics").text, "linear")
    assert requests == calls == 30


def test_a_bad_request_in_a_batch_fails_alone(live_server: Any, models: dict[str, Path]) -> None:
    server = live_server(model_files={"linear": str(models["linear"])})

    async def send_all() -> list[Any]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            bodies = [{"instances": [[float(i)]]} for i in range(30)]
            bodies[7] = {"instances": [["abc"]]}
            return await asyncio.gather(*(client.post("/predict", json=b) for b in bodies))

    responses = asyncio.run(send_all())
    statuses = [r.status_code for r in responses]
    assert statuses.count(400) == 1
    assert statuses[7] == 400
    for i, response in enumerate(responses):
        if i != 7:
            assert response.json()["predictions"] == pytest.approx([2.0 * i])


# ---- the batcher alone, on one event loop: which requests share a call ----------------------


class _Model:
    """A stand-in for an onnxruntime session: y = 2x, recording the rows of every call."""

    def __init__(self, *, seconds: float = 0.0, refuse: float | None = None) -> None:
        self.calls: list[int] = []
        self._seconds = seconds
        self._refuse = refuse

    def __call__(self, arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = arrays["x"]
        self.calls.append(len(x))
        if self._seconds:
            time.sleep(self._seconds)
        if self._refuse is not None and (x == self._refuse).any():
            raise InvalidInputError(f"x = {self._refuse} is refused")
        return [2.0 * x]


async def _request(batcher: Batcher, load: Load, *values: float) -> list[float]:
    """What the app does around each request: count it in flight, then ask the batcher."""
    load.active += 1
    try:
        feed = Feed({"x": np.array([[v] for v in values], dtype=np.float32)}, len(values))
        outputs = await batcher(feed)
    finally:
        load.active -= 1
    return outputs[0].ravel().tolist()


def _batcher(model: _Model, **options: Any) -> tuple[Batcher, Load]:
    load = Load()
    return Batcher(model, load=load, **options), load


def test_requests_that_start_together_share_one_call_and_get_their_own_rows() -> None:
    async def scenario() -> list[list[float]]:
        batcher, load = _batcher(model)
        return await asyncio.gather(*(_request(batcher, load, float(i)) for i in range(50)))

    model = _Model()
    answers = asyncio.run(scenario())
    assert answers == [[2.0 * i] for i in range(50)]
    # The first finds the server idle and runs at once; the 49 that meet it share one call.
    assert model.calls == [1, 49]


def test_requests_one_after_another_each_run_alone_at_once() -> None:
    async def scenario() -> None:
        batcher, load = _batcher(model)
        for i in range(20):
            assert await _request(batcher, load, float(i)) == [2.0 * i]

    model = _Model()
    asyncio.run(scenario())
    assert model.calls == [1] * 20


def test_a_merged_call_never_exceeds_max_rows() -> None:
    async def scenario() -> list[list[float]]:
        batcher, load = _batcher(model, max_rows=64)
        return await asyncio.gather(
            *(_request(batcher, load, *range(10 * i, 10 * i + 10)) for i in range(30))
        )

    model = _Model()
    answers = asyncio.run(scenario())
    assert answers == [[2.0 * v for v in range(10 * i, 10 * i + 10)] for i in range(30)]
    assert sum(model.calls) == 300
    assert max(model.calls) <= 64
    assert len(model.calls) <= 1 + 300 // 60  # full batches, not one call per request


def test_a_request_the_model_refuses_fails_alone_when_its_batch_is_retried() -> None:
    async def scenario() -> list[Any]:
        batcher, load = _batcher(model)
        requests = (_request(batcher, load, float(i)) for i in range(10))
        return await asyncio.gather(*requests, return_exceptions=True)

    model = _Model(refuse=7.0)
    answers = asyncio.run(scenario())
    assert isinstance(answers[7], InvalidInputError)
    assert [a for i, a in enumerate(answers) if i != 7] == [[2.0 * i] for i in range(10) if i != 7]


def test_a_slow_model_runs_in_a_thread_and_requests_queued_meanwhile_share_the_next_call() -> None:
    async def scenario() -> list[list[float]]:
        batcher, load = _batcher(model, offload_threshold_s=0.001)
        await _request(batcher, load, -1.0)  # teaches the batcher that a call takes ~100 ms
        first = asyncio.ensure_future(_request(batcher, load, 0.0))
        await asyncio.sleep(0.005)  # the first call is running in its thread now
        later = [_request(batcher, load, float(i)) for i in range(1, 20)]
        answers = await asyncio.gather(first, *later)
        batcher.close()
        return answers

    model = _Model(seconds=0.1)
    answers = asyncio.run(scenario())
    assert answers == [[2.0 * i] for i in range(20)]
    assert model.calls == [1, 1, 19]


def test_with_batching_off_every_request_is_its_own_call() -> None:
    async def scenario() -> list[list[float]]:
        batcher, load = _batcher(model, enabled=False)
        return await asyncio.gather(*(_request(batcher, load, float(i)) for i in range(20)))

    model = _Model()
    assert asyncio.run(scenario()) == [[2.0 * i] for i in range(20)]
    assert model.calls == [1] * 20
