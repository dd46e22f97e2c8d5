"""Adaptive batching: concurrent requests share one model call; a lone request runs alone."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import signal
import socket
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

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
