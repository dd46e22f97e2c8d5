"""Serving speed, side by side: ``loopml serve`` vs ``mlflow models serve`` vs two floors.

    python benchmarks/serving.py                       # 10 s per cell, median of 3
    python benchmarks/serving.py --duration 3 --repeats 1 --models linear

Models: the quickstart linear model (y = 2x, one feature) and a 100-tree random forest on 20
features. Servers, each pinned to core 0 (``taskset -c 0``) with ``wrk`` on core 1:

- ``loopml``: ``loopml serve --model NAME@champion`` from a registry built here, with the
  prediction log and metrics on (the defaults);
- ``mlflow``: ``mlflow models serve --env-manager local`` from its own venv under
  ``~/.cache/loopml-bench/mlflow`` (created on first use with ``pip install mlflow
  uvloop httptools``), so its uvicorn runs on uvloop + httptools;
- ``mlflow (h11)``: the same server on plain uvicorn (asyncio + h11), as ``pip install
  mlflow`` alone gives it. The ratio to MLflow is taken against the better of the two in
  each cell, so that MLflow is measured at its best;
- ``floor``: a minimal Starlette + orjson + onnxruntime app on plain uvicorn (asyncio + h11);
- ``fast floor``: the same app on uvicorn with uvloop + httptools.

Both floors run onnxruntime with one intra-op thread, as loopml does. With its default
thread pool onnxruntime pins its own threads to every core, escaping ``taskset``: on the
forest the floor then computes on wrk's core too and spins between requests (about 1.6x the
CPU per request). ``--servers "...,fast floor (ort threads)"`` adds that variant to show it.

Two ceilings, on request (``--servers "...,empty ASGI,bare protocol"``), show what no server
of this design can beat on the machine at hand, inference aside:

- ``empty ASGI``: an ASGI app on uvicorn (uvloop + httptools) that reads the body and answers
  a constant prediction: no JSON parsing, no model. Any ASGI app on uvicorn is slower;
- ``bare protocol``: an ``asyncio.Protocol`` on uvloop that parses HTTP with httptools and
  answers the same constant: no ASGI, no uvicorn, just the kernel's loopback and wrk.

Requests carry one row or 100 rows; connections 1, 8 and 64. All servers of a model run
side by side and every repetition of a cell visits each in turn, so that the machine's drift
over minutes falls on all of them alike. Prints a markdown table of
req/s and p50/p99 latency, and the ratios of loopml to MLflow and to the fast floor.
Needs ``wrk`` (``apt-get install wrk``) and ``taskset``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

CACHE = Path(os.environ.get("LOOPML_BENCH_CACHE", Path.home() / ".cache" / "loopml-bench"))
SERVERS = ("loopml", "mlflow", "mlflow (h11)", "floor", "fast floor")
MLFLOW_SERVERS = ("mlflow", "mlflow (h11)")
ORT_DEFAULT_FLOOR = "fast floor (ort threads)"  # optional: onnxruntime's own thread pool
CEILINGS = ("empty ASGI", "bare protocol")  # optional: no inference, a constant answer

CEILING_APP = """
import asyncio
import sys

import httptools
import uvloop

ANSWER = b'{"predictions": [0.0]}'
HEAD = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]
REPLY = (
    b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: %d\\r\\n\\r\\n"
    % len(ANSWER)
    + ANSWER
)


async def app(scope, receive, send):  # the empty ASGI app: read the body, answer a constant
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEAD})
    await send({"type": "http.response.body", "body": ANSWER})


class Bare(asyncio.Protocol):  # the bare protocol: HTTP parsing and a constant, nothing else
    def connection_made(self, transport):
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data):
        self.parser.feed_data(data)

    def on_message_complete(self):
        self.transport.write(REPLY)


async def serve_bare(port):
    server = await asyncio.get_running_loop().create_server(Bare, "127.0.0.1", port)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve_bare(int(sys.argv[1])))
"""

FLOOR_APP = """
import os
import numpy as np
import onnxruntime as ort
import orjson
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

options = ort.SessionOptions()
if int(os.environ.get("FLOOR_ORT_THREADS", "1")):  # 0: onnxruntime's default thread pool
    options.intra_op_num_threads = int(os.environ.get("FLOOR_ORT_THREADS", "1"))
session = ort.InferenceSession(
    os.environ["FLOOR_MODEL"], options, providers=["CPUExecutionProvider"]
)
spec = session.get_inputs()[0]
dtype = np.float64 if spec.type == "tensor(double)" else np.float32


async def predict(request):
    body = orjson.loads(await request.body())
    x = np.asarray(body["instances"], dtype=dtype)
    y = session.run(None, {spec.name: x})[0]
    answer = orjson.dumps({"predictions": y.ravel().tolist()})
    return Response(answer, media_type="application/json")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
"""

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("BODY_FILE"), "r")
wrk.body = f:read("*a")
f:close()
"""

MLFLOW_TRAIN = """
import sys, numpy as np, pandas as pd, mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
out, mode = sys.argv[1], sys.argv[2]
def frame(array, names):
    return pd.DataFrame(array, columns=names) if mode == "dataframe" else array
# As MLflow's quickstart does: a signature and an input example, so requests are checked.
x = frame(np.arange(10.0).reshape(-1, 1), ["x"])
linear = LinearRegression().fit(x, 2 * np.arange(10.0))
mlflow.sklearn.save_model(
    linear, out + "/linear", signature=infer_signature(x, linear.predict(x)), input_example=x[:2]
)
rng = np.random.default_rng(0)
X = frame(rng.normal(size=(2000, 20)), [f"f{i}" for i in range(20)])
y = np.asarray(X)[:, 0] + rng.normal(size=2000)
forest = RandomForestRegressor(100, random_state=0).fit(X, y)
# MLflow 3 saves with skops and asks to trust tree storage explicitly; we trained it here.
mlflow.sklearn.save_model(
    forest,
    out + "/forest",
    signature=infer_signature(X, forest.predict(X[:5])),
    input_example=X[:2],
    skops_trusted_types=["sklearn.tree._tree.Tree"],
)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell (median)")
    parser.add_argument("--connections", default="1,8,64")
    parser.add_argument("--rows", default="1,100", help="rows per request")
    parser.add_argument("--models", default="linear,forest")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument(
        "--mlflow-input",
        choices=("dataframe", "tensor"),
        default="dataframe",
        help="train MLflow's models on DataFrames with named columns and send dataframe_split "
        "(its quickstart), or on numpy arrays and send instances",
    )
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install {tool})")
    CACHE.mkdir(parents=True, exist_ok=True)
    models = args.models.split(",")
    servers = [s.strip() for s in args.servers.split(",")]
    connections = [int(c) for c in args.connections.split(",")]
    row_counts = [int(r) for r in args.rows.split(",")]
    onnx_files = prepare_loopml(models)
    wants_mlflow = any(server in MLFLOW_SERVERS for server in servers)
    mlflow_python = prepare_mlflow(args.mlflow_input) if wants_mlflow else None
    (CACHE / "floor_app.py").write_text(FLOOR_APP)
    (CACHE / "ceiling_app.py").write_text(CEILING_APP)
    (CACHE / "post.lua").write_text(WRK_SCRIPT)
    results: dict[tuple[str, int, int, str], dict[str, float]] = {}
    for model in models:
        # Every server of a model runs at once (idle ones cost nothing) and each repetition
        # visits them in turn, so a slow minute of this shared machine hits all of them
        # alike instead of whichever server happened to be measured then.
        with contextlib.ExitStack() as stack:
            urls, forms = {}, {}
            for server in servers:
                forms[server] = args.mlflow_input if server in MLFLOW_SERVERS else "instances"
                ready = request_body(model, 1, forms[server])
                urls[server] = stack.enter_context(
                    start_server(server, model, onnx_files[model], mlflow_python, ready)
                )
            for rows in row_counts:
                bodies = {}
                for server in servers:
                    bodies[server] = CACHE / f"{model}-{rows}-{forms[server]}.json"
                    bodies[server].write_bytes(request_body(model, rows, forms[server]))
                for conns in connections:
                    runs: dict[str, list[dict[str, float]]] = {server: [] for server in servers}
                    for _ in range(args.repeats):
                        for server in servers:
                            runs[server].append(
                                wrk(urls[server], bodies[server], conns, args.duration)
                            )
                    for server in servers:
                        cell = {
                            key: statistics.median(run[key] for run in runs[server])
                            for key in ("rps", "p50", "p99", "errors")
                        }
                        results[(model, rows, conns, server)] = cell
                        print(
                            f"{model:7} rows={rows:<4} c={conns:<3} {server:12} "
                            f"{cell['rps']:>9.0f} req/s  p50 {cell['p50']:.2f} ms  "
                            f"p99 {cell['p99']:.2f} ms  errors {cell['errors']:.0f}",
                            file=sys.stderr,
                            flush=True,
                        )
    print(table(results, models, row_counts, connections, servers, args))


# ---- models and servers -------------------------------------------------------------------


def request_body(model: str, rows: int, form: str) -> bytes:
    """``{"instances": rows}``, or MLflow's ``dataframe_split`` with the training columns."""
    data = sample_rows(model, rows)
    if form == "dataframe":
        names = ["x"] if model == "linear" else [f"f{i}" for i in range(20)]
        return json.dumps({"dataframe_split": {"columns": names, "data": data}}).encode()
    return json.dumps({"instances": data}).encode()


def sample_rows(model: str, rows: int) -> list[list[float]]:
    import numpy as np

    width = 1 if model == "linear" else 20
    data = np.random.default_rng(7).normal(size=(rows, width)).round(4)
    return data.tolist()


def prepare_loopml(models: list[str]) -> dict[str, Path]:
    """Train, package and register the models in a loopml home under the cache folder."""
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import LinearRegression

    from loopml import Client
    from loopml.config import Settings
    from loopml.package import package_model
    from loopml.registry import ModelRegistry

    home = CACHE / "loopml-home"
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings(home=home)
    client = Client(settings)
    registry = ModelRegistry.from_settings(settings)
    files: dict[str, Path] = {}
    for model in models:
        if model == "linear":
            x = pd.DataFrame({"x": np.arange(10.0)})
            estimator = LinearRegression().fit(x, 2 * x["x"])
            holdout: Any = x
        else:
            rng = np.random.default_rng(0)
            holdout = rng.normal(size=(2000, 20))
            estimator = RandomForestRegressor(100, random_state=0).fit(
                holdout, holdout[:, 0] + rng.normal(size=2000)
            )
        run = client.create_run(None, run_name=f"bench-{model}")
        run_id = run.info.run_id
        packaged = package_model(
            estimator, holdout, task="regression", run_id=run_id, client=client
        )
        client.set_terminated(run_id)
        version = registry.register_version(
            f"bench-{model}", run_id, "model", signature=packaged.signature.to_dict()
        )
        registry.set_alias(f"bench-{model}", "champion", version.version)
        files[model] = CACHE / f"{model}.onnx"
        files[model].write_bytes(packaged.onnx_bytes)
    client.close()
    return files


def prepare_mlflow(mode: str) -> Path:
    """A venv with MLflow (created once) and the same two models saved in MLflow's format."""
    venv = CACHE / "mlflow"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "mlflow").exists():
        print(f"installing MLflow into {venv} (once)...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "mlflow", "scikit-learn"], check=True
        )
    check = [str(python), "-c", "import uvloop, httptools"]
    has_fast_stack = subprocess.run(check, stderr=subprocess.DEVNULL).returncode
    if has_fast_stack != 0:
        # uvicorn picks uvloop + httptools up when they are installed; "mlflow (h11)" turns
        # them off again through uvicorn's UVICORN_* environment variables.
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "uvloop", "httptools"], check=True
        )
    models = CACHE / "mlflow-models"
    shutil.rmtree(models, ignore_errors=True)
    models.mkdir()
    subprocess.run([str(python), "-c", MLFLOW_TRAIN, str(models), mode], check=True)
    return python


@contextlib.contextmanager
def start_server(
    server: str, model: str, onnx: Path, mlflow_python: Path | None, ready_body: bytes
) -> Any:
    port = free_port()
    env = {**os.environ, "FLOOR_MODEL": str(onnx), "LOOPML_HOME": str(CACHE / "loopml-home")}
    pin = ["taskset", "-c", "0"]
    if server == "loopml":
        command = [
            *pin,
            sys.executable,
            "-m",
            "loopml.cli.main",
            "serve",
            "--model",
            f"bench-{model}@champion",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    elif server in MLFLOW_SERVERS:
        assert mlflow_python is not None
        # MLflow starts `uvicorn` from PATH: it must be the venv's, next to MLflow.
        env["PATH"] = f"{mlflow_python.parent}{os.pathsep}{env.get('PATH', '')}"
        if server == "mlflow (h11)":
            env.update(UVICORN_LOOP="asyncio", UVICORN_HTTP="h11")
        command = [
            *pin,
            str(mlflow_python.parent / "mlflow"),
            "models",
            "serve",
            "-m",
            str(CACHE / "mlflow-models" / model),
            "--env-manager",
            "local",
            "-p",
            str(port),
        ]
    elif server == "bare protocol":
        command = [*pin, sys.executable, "ceiling_app.py", str(port)]
    elif server == "empty ASGI":
        command = [
            *pin,
            sys.executable,
            "-m",
            "uvicorn",
            "ceiling_app:app",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    else:
        fast = server in ("fast floor", ORT_DEFAULT_FLOOR)
        env["FLOOR_ORT_THREADS"] = "0" if server == ORT_DEFAULT_FLOOR else "1"
        command = [
            *pin,
            sys.executable,
            "-m",
            "uvicorn",
            "floor_app:app",
            "--port",
            str(port),
            "--loop",
            "uvloop" if fast else "asyncio",
            "--http",
            "httptools" if fast else "h11",
            "--log-level",
            "warning",
        ]
    log = open(CACHE / f"server-{server.replace(' ', '-')}-{model}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(command, cwd=CACHE, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    path = "/invocations" if server in MLFLOW_SERVERS else "/predict"
    try:
        wait_ready(url + path, ready_body, process)
        yield url + path
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def wait_ready(url: str, body: bytes, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited early: {' '.join(map(str, process.args))}")
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}
        )
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.3)
    sys.exit(f"server did not become ready: {url}")


def wrk(url: str, body: Path, connections: int, duration: int) -> dict[str, float]:
    command = [
        "taskset",
        "-c",
        "1",
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(CACHE / "post.lua"),
        url,
    ]
    output = subprocess.run(
        command,
        env={**os.environ, "BODY_FILE": str(body)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = sum(
        int(n)
        for n in re.findall(r"(?:Non-2xx or 3xx responses|Socket errors:.*?timeout) (\d+)", output)
    )
    return {
        "rps": rps,
        "p50": _latency(output, "50%"),
        "p99": _latency(output, "99%"),
        "errors": errors,
    }


def _latency(output: str, quantile: str) -> float:
    match = re.search(rf"{quantile}\s+([\d.]+)(us|ms|s)", output)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---- report -------------------------------------------------------------------------------


def table(
    results: dict[tuple[str, int, int, str], dict[str, float]],
    models: list[str],
    row_counts: list[int],
    connections: list[int],
    servers: list[str],
    args: argparse.Namespace,
) -> str:
    def cell(r: dict[str, float] | None) -> str:
        if r is None:
            return "-"
        return f"{r['rps']:,.0f} ({r['p50']:.2f} / {r['p99']:.1f} ms)"

    head = ["model", "rows", "conns", *[f"{s} req/s (p50 / p99)" for s in servers]]
    mlflows = [server for server in servers if server in MLFLOW_SERVERS]
    if "loopml" in servers and mlflows:
        head.append("loopml / best mlflow")
    if "loopml" in servers and "fast floor" in servers:
        head.append("loopml / fast floor")
    ceilings = [server for server in CEILINGS if server in servers]
    if mlflows:
        head += [f"{server} / best mlflow" for server in ceilings]
    lines = [
        f"Median of {args.repeats} x {args.duration} s wrk runs per cell; server on core 0, "
        "wrk on core 1; prediction log and metrics on for loopml; MLflow models trained on "
        + (
            "DataFrames (dataframe_split requests)."
            if args.mlflow_input == "dataframe"
            else "numpy arrays (instances requests)."
        ),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for model in models:
        for rows in row_counts:
            for conns in connections:
                row = [model, str(rows), str(conns)]
                row += [cell(results.get((model, rows, conns, s))) for s in servers]
                ours = results.get((model, rows, conns, "loopml"))
                best_mlflow = max(
                    (results.get((model, rows, conns, server)) for server in mlflows),
                    key=lambda r: r["rps"] if r else 0.0,
                    default=None,
                )
                others = []
                if mlflows:
                    others.append(best_mlflow)
                if "fast floor" in servers:
                    others.append(results.get((model, rows, conns, "fast floor")))
                for theirs in others if "loopml" in servers else []:
                    ratio = None
                    if ours is not None and theirs is not None and theirs["rps"]:
                        ratio = ours["rps"] / theirs["rps"]
                    row.append(f"{ratio:.2f}x" if ratio else "-")
                for server in ceilings if mlflows else []:
                    ceiling = results.get((model, rows, conns, server))
                    ratio = None
                    if ceiling is not None and best_mlflow is not None and best_mlflow["rps"]:
                        ratio = ceiling["rps"] / best_mlflow["rps"]
                    row.append(f"{ratio:.2f}x" if ratio else "-")
                lines.append("| " + " | ".join(row) + " |")
    return textwrap.dedent("\n".join(lines))


if __name__ == "__main__":
    main()
