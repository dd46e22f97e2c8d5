"""Fixtures for the server: real ONNX models, in-process apps, real uvicorn servers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from loopml.serve import FileSource, ServeSettings, create_app

with warnings.catch_warnings():
    # Starlette warns at import that its TestClient will move to httpx2: not ours to fix.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """ONNX files: ``linear`` (y = 2x, the article's model, packaged by loopml), ``triple``
    (y = 3x, same signature: "version 2"), ``forest`` (20 trees on 20 float32 features, a
    plain skl2onnx tensor model) and ``churn`` (a classifier with a numeric and a string
    column, packaged by loopml)."""
    import pandas as pd
    from skl2onnx import to_onnx
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from loopml.package import package_model

    folder = tmp_path_factory.mktemp("models")
    out: dict[str, Path] = {}
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 20)).astype(np.float32)
    forest = RandomForestRegressor(20, max_depth=6, random_state=0).fit(features, features[:, 0])
    out["forest"] = folder / "forest.onnx"
    # Plain skl2onnx first: loopml's packaging registers converters of its own.
    out["forest"].write_bytes(to_onnx(forest, features[:1]).SerializeToString())
    x = pd.DataFrame({"x": np.arange(10.0)})
    for name, slope in (("linear", 2.0), ("triple", 3.0)):
        packaged = package_model(LinearRegression().fit(x, slope * x["x"]), x, task="regression")
        out[name] = folder / f"{name}.onnx"
        out[name].write_bytes(packaged.onnx_bytes)
    frame = pd.DataFrame(
        {"age": rng.uniform(18, 80, 200), "plan": rng.choice(["basic", "pro"], 200)}
    )
    labels = np.where((frame.age > 40) & (frame.plan == "pro"), "churn", "stay")
    pipeline = make_pipeline(
        make_column_transformer((StandardScaler(), ["age"]), (OneHotEncoder(), ["plan"])),
        LogisticRegression(),
    ).fit(frame, labels)
    out["churn"] = folder / "churn.onnx"
    out["churn"].write_bytes(package_model(pipeline, frame, task="binary").onnx_bytes)
    return out


@pytest.fixture
def make_client(tmp_path: Path, models: dict[str, Path]) -> Iterator[Callable[..., Any]]:
    """Factory: a TestClient (lifespan running) on an app serving the named model files."""
    opened: list[Any] = []

    def make(*names: str, source: FileSource | None = None, **options: Any) -> Any:
        files = {name: str(models[name]) for name in names}
        options.setdefault("log_dir", str(tmp_path / "logs"))
        options.setdefault("state_dir", str(tmp_path / "state"))
        if source is not None:
            settings = ServeSettings(**options)
        else:
            settings = ServeSettings(model_files=files, **options)
        client = TestClient(create_app(settings, source=source, home=tmp_path))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """A real uvicorn server (uvloop + httptools) in a thread of the test process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def live_server(tmp_path: Path, models: dict[str, Path]) -> Iterator[Callable[..., LiveServer]]:
    """Factory: a started :class:`LiveServer` for the given settings (stopped after the test)."""
    running: list[LiveServer] = []

    def start(source: FileSource | None = None, **options: Any) -> LiveServer:
        options.setdefault("log_dir", str(tmp_path / "logs"))
        options.setdefault("state_dir", str(tmp_path / "state"))
        server = LiveServer(create_app(ServeSettings(**options), source=source, home=tmp_path))
        running.append(server.__enter__())
        return server

    yield start
    for server in running:
        server.__exit__()


class ServerProcess:
    """``loopml serve`` in its own process (for signals: SIGTERM, kill -9)."""

    def __init__(self, args: list[str], home: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "LOOPML_HOME": str(home)}
        home.mkdir(parents=True, exist_ok=True)
        self.output = home / "server.out"
        with open(self.output, "wb") as out:
            self.process = self._start(args, env, out)
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"loopml serve did not start:\n{self.output.read_text()}")
            time.sleep(0.1)

    def _start(self, args: list[str], env: dict[str, str], out: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "loopml.cli.main",
                "serve",
                *args,
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def signal(self, sig: int) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=60)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
