"""The README's promise: `loopml run` then `loopml serve` on the quickstart answers the
article's request with exactly [2.0, 4.0, 6.0] — and, x being a number, any other x too."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_run_then_serve_answers_the_articles_request(tmp_path: Path) -> None:
    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(tmp_path / "home")
    loopml = [sys.executable, "-m", "loopml.cli.main"]
    trained = subprocess.run(
        [*loopml, "run", str(project)], env=env, capture_output=True, text=True, timeout=300
    )
    assert trained.returncode == 0, trained.stderr
    shown = subprocess.run(
        [*loopml, "models", "show", "quickstart", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    (version,) = json.loads(shown.stdout)["versions"]
    # data.csv holds integers, but x is a quantity: the model takes any number
    assert version["signature"]["inputs"] == [
        {"name": "x", "dtype": "float64", "shape": [-1, 1], "nullable": False}
    ]
    port = free_port()
    with subprocess.Popen(
        [
            *loopml,
            "serve",
            "--model",
            "quickstart@champion",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "server did not become ready"
                time.sleep(0.2)
            answer = httpx.post(f"{url}/predict", json={"instances": [[1.0], [2.0], [3.0]]}).json()
            assert answer["predictions"] == [2.0, 4.0, 6.0]
            assert (answer["model"], answer["version"]) == ("quickstart", 1)
            columns = httpx.post(f"{url}/predict", json={"inputs": {"x": [1.0, 2.0, 3.0]}})
            assert columns.json()["predictions"] == [2.0, 4.0, 6.0]
            between = httpx.post(f"{url}/predict", json={"instances": [[1.5]]})
            assert between.status_code == 200, between.text
            assert between.json()["predictions"] == [3.0]
            integers = httpx.post(f"{url}/predict", json={"instances": [[1], [2], [3]]})
            assert integers.json()["predictions"] == [2.0, 4.0, 6.0]
            metadata = httpx.get(f"{url}/v2/models/quickstart").json()
            assert metadata["inputs"] == [{"name": "x", "datatype": "FP64", "shape": [-1, 1]}]
        finally:
            server.terminate()
            server.communicate(timeout=30)
