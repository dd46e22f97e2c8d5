"""Hot reload: an alias moves, the server swaps versions under load without failing a request."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopml.serve import FileSource


def test_an_alias_move_swaps_versions_with_zero_failed_requests(
    live_server: Any, models: dict[str, Path]
) -> None:
    source = FileSource()
    source.add("linear", "1", models["linear"], aliases=("champion",))
    source.add("linear", "2", models["triple"])
    server = live_server(source=source, models=("linear@champion",), reload_interval_s=0.1)
    answers: list[tuple[int, Any]] = []
    stop = threading.Event()

    async def load() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:

            async def worker() -> None:
                while not stop.is_set():
                    try:
                        response = await client.post("/predict", json={"instances": [[1.0]]})
                        answers.append((response.status_code, response.json()))
                    except httpx.HTTPError as exc:  # a dropped connection is a failure too
                        answers.append((0, str(exc)))

            await asyncio.gather(*(worker() for _ in range(8)))

    thread = threading.Thread(target=asyncio.run, args=(load(),))
    thread.start()
    time.sleep(0.5)
    source.set_alias("linear", "champion", "2")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        status == 200 and body["version"] == 2 for status, body in list(answers)
    ):
        time.sleep(0.05)
    time.sleep(0.5)
    stop.set()
    thread.join(timeout=30)
    failures = [a for a in answers if a[0] != 200]
    assert not failures, failures[:3]
    versions = [body["version"] for _, body in answers]
    assert versions[0] == 1
    assert versions[-1] == 2
    # Once the new version answered, the old one never answered again.
    assert 1 not in versions[versions.index(2) + 8 :]
    for _, body in answers:
        expected = 2.0 if body["version"] == 1 else 3.0
        assert body["predictions"] == pytest.approx([expected])
    assert server.app.state.reloader.swaps == 1


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(
    live_server: Any, models: dict[str, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    source = FileSource()
    source.add("linear", "1", models["linear"], aliases=("champion",))
    source.add("linear", "2", broken)
    server = live_server(source=source, models=("linear@champion",), reload_interval_s=0.1)
    source.set_alias("linear", "champion", "2")
    time.sleep(0.6)
    response = httpx.post(f"{server.url}/predict", json={"instances": [[1.0]]})
    assert response.status_code == 200
    assert response.json()["version"] == 1
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'loopml_reloads_total{model="linear",outcome="failed"}' in metrics
