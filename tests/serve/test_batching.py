"""Adaptive batching: concurrent requests share one model call; a lone request runs alone."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest


def _batch_stats(metrics: str, model: str) -> tuple[float, float]:
    def value(name: str) -> float:
        match = re.search(rf'{name}{{model="{model}",version="1"}} ([0-9.e+]+)', metrics)
        assert match, name
        return float(match.group(1))

    return value("loopml_batch_requests_sum"), value("loopml_batch_requests_count")


def test_concurrent_requests_are_merged_and_each_gets_its_own_rows(
    live_server: Any, models: dict[str, Path]
) -> None:
    server = live_server(model_files={"forest": str(models["forest"])})
    rows = np.random.default_rng(3).normal(size=(200, 20)).round(3)

    async def send_all() -> list[Any]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
            responses = await asyncio.gather(
                *(client.post("/predict", json={"instances": [row.tolist()]}) for row in rows)
            )
            singles = [
                await client.post("/predict", json={"instances": [row.tolist()]})
                for row in rows[:5]
            ]
            return [*responses, *singles]

    responses = asyncio.run(send_all())
    assert all(r.status_code == 200 for r in responses)
    together = np.array([r.json()["predictions"][0] for r in responses[:200]])
    alone = np.array([r.json()["predictions"][0] for r in responses[200:]])
    assert together[:5] == pytest.approx(alone)  # merging never mixes rows up
    requests, calls = _batch_stats(httpx.get(f"{server.url}/metrics").text, "forest")
    assert requests == 205
    assert calls < 150, "concurrent requests should share model calls"


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
