"""``loopml serve``: run the inference server, and change its traffic split while it runs.

    loopml serve --model churn@champion --model churn@challenger \\
                 --traffic churn=champion=90,challenger=10 --port 8000 --workers 2
    loopml serve traffic churn champion=50 challenger=50 --url http://127.0.0.1:8000
    loopml serve traffic churn                      # show the policy in force
    loopml serve recover-log                        # roll spools left by kill -9 into Parquet
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from loopml.cli.output import print_json, stdout
from loopml.errors import BackendUnavailableError, ConfigError, LoopMLError

app = typer.Typer(
    help="Serve registered models over HTTP (ONNX on onnxruntime), and steer their traffic.",
    invoke_without_command=True,
)

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 10**6,
    "mib": 2**20,
    "gb": 10**9,
    "gib": 2**30,
}


@app.callback()
def serve(
    ctx: typer.Context,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="NAME@ALIAS, NAME:VERSION or NAME (latest); repeat for several. The first "
            "one's name answers /predict and /invocations.",
        ),
    ] = None,
    model_file: Annotated[
        list[str] | None,
        typer.Option(
            "--model-file", help="NAME=PATH of an ONNX file to serve without the registry."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Server processes (uvicorn workers).")] = 1,
    traffic: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=SPEC, e.g. churn=champion=90,challenger=10,candidate=shadow; repeatable."
        ),
    ] = None,
    sticky_header: Annotated[
        str, typer.Option(help="Request header whose value pins a caller to one version.")
    ] = "X-Loopml-Key",
    max_body_size: Annotated[str, typer.Option(help="Largest request body, e.g. 10MiB.")] = "10MiB",
    batching: Annotated[bool, typer.Option(help="Merge concurrent requests into one call.")] = True,
    batch_max_rows: Annotated[int, typer.Option(help="Most rows in one merged call.")] = 512,
    batch_max_wait_ms: Annotated[
        float, typer.Option(help="Longest a request waits for others to join its batch.")
    ] = 2.0,
    reload_interval: Annotated[
        float, typer.Option(help="Seconds between checks for alias moves in the registry.")
    ] = 2.0,
    log: Annotated[bool, typer.Option(help="Keep the prediction log.")] = True,
    log_dir: Annotated[
        Path | None, typer.Option(help="Prediction log folder (default <home>/serving/logs).")
    ] = None,
    allow_pickle: Annotated[
        bool,
        typer.Option(help="Serve pickled models that have no ONNX artifact (runs their code)."),
    ] = False,
    admin_token: Annotated[
        str | None,
        typer.Option(envvar="LOOPML_SERVE_ADMIN_TOKEN", help="Require this token on /admin."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve models: /predict, the Open Inference Protocol (/v2), MLflow's /invocations."""
    if ctx.invoked_subcommand is not None:
        return
    from loopml.config import Settings
    from loopml.serve.settings import ServeSettings

    files = dict(_pair(item, "--model-file") for item in model_file or [])
    policies = dict(_pair(item, "--traffic") for item in traffic or [])
    if not model and not files:
        raise ConfigError(
            "nothing to serve: give at least one --model",
            hint="loopml serve --model NAME@champion (see loopml models list)",
        )
    if workers < 1:
        raise ConfigError(f"--workers is {workers}; it must be at least 1")
    base = Settings.from_env()
    settings = ServeSettings(
        models=tuple(model or ()),
        model_files=files,
        traffic=policies,
        sticky_header=sticky_header,
        max_body_bytes=parse_size(max_body_size),
        batching=batching,
        batch_max_rows=batch_max_rows,
        batch_max_wait_ms=batch_max_wait_ms,
        reload_interval_s=reload_interval,
        log_predictions=log,
        log_dir=str(log_dir.absolute()) if log_dir else str(settings_log(base.home)),
        allow_pickle=allow_pickle,
        admin_token=admin_token,
        state_dir=str((base.home / "serving" / "state" / f"{host}-{port}").absolute()),
    )
    run_server(settings, host=host, port=port, workers=workers, log_level=log_level)


def settings_log(home: Path) -> Path:
    return (home / "serving" / "logs").absolute()


def run_server(settings: Any, *, host: str, port: int, workers: int, log_level: str) -> None:
    """Start uvicorn (uvloop + httptools) with the app built from ``settings``."""
    import uvicorn

    from loopml.serve.routing import TrafficPolicy, TrafficStore

    state = Path(str(settings.state_dir))
    store = TrafficStore(state)
    store.clear()  # a policy left by an earlier server must not override --traffic
    if settings.traffic:
        store.write({name: TrafficPolicy.parse(spec) for name, spec in settings.traffic.items()})
    os.environ.update(settings.to_env())
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,  # the prediction log and /metrics record every request
        "log_level": log_level,
        "timeout_graceful_shutdown": 30,
    }
    if workers == 1:
        from loopml.serve.app import create_app

        application = create_app(settings)  # load now: a bad --model fails before binding
        stdout.print(f"serving {', '.join(_served(application))} on http://{host}:{port}")
        uvicorn.run(application, **common)
        return
    metrics_dir = state / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    _check_references(settings)
    stdout.print(
        f"serving {', '.join(settings.models)} on http://{host}:{port} ({workers} workers)"
    )
    uvicorn.run("loopml.serve.app:create_app_from_env", factory=True, workers=workers, **common)


@app.command("traffic")
def traffic_command(
    name: Annotated[str, typer.Argument(help="Model name.")],
    split: Annotated[
        list[str] | None,
        typer.Argument(help="SELECTOR=WEIGHT or SELECTOR=shadow, e.g. champion=90 challenger=10."),
    ] = None,
    url: Annotated[
        str, typer.Option(help="Base URL of the running server.")
    ] = "http://127.0.0.1:8000",
    token: Annotated[
        str | None, typer.Option(envvar="LOOPML_SERVE_ADMIN_TOKEN", help="Admin token.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show or change how a served model's traffic is split between its versions."""
    import httpx

    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        if split:
            response = httpx.put(
                f"{url.rstrip('/')}/admin/traffic/{name}",
                json={"spec": ",".join(split)},
                headers=headers,
                timeout=10,
            )
        else:
            response = httpx.get(f"{url.rstrip('/')}/admin/traffic", headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        raise BackendUnavailableError(
            f"cannot reach the server at {url}: {exc}", hint="is `loopml serve` running there?"
        ) from None
    document = _answer(response)
    if not split:
        if name not in document:
            raise LoopMLError(
                f"model {name!r} is not served at {url}", hint=f"served: {list(document)}"
            )
        document = {"model": name, "traffic": document[name]}
    if json_output:
        print_json(document)
        return
    policy = document["traffic"]
    parts = [f"{k}={v:g}%" for k, v in policy["weights"].items()]
    parts += [f"{s}=shadow" for s in policy.get("shadow", [])]
    stdout.print(f"{name}: {'  '.join(parts)}", highlight=False)


@app.command("recover-log")
def recover_log(
    log_dir: Annotated[Path | None, typer.Option(help="Prediction log folder.")] = None,
) -> None:
    """Roll prediction-log spools left by killed servers into Parquet."""
    from loopml.config import Settings
    from loopml.serve.predlog import recover

    folder = log_dir or settings_log(Settings.from_env().home)
    rows = recover(folder)
    stdout.print(f"recovered {rows} prediction-log row(s) into {folder}")


def parse_size(text: str) -> int:
    """``"10MiB"`` → 10485760; plain numbers are bytes."""
    cleaned = text.strip().lower().replace(" ", "")
    digits = cleaned.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = cleaned[len(digits) :]
    try:
        value = float(digits)
    except ValueError:
        value = -1
    if unit not in _SIZE_UNITS or value <= 0:
        raise ConfigError(
            f"--max-body-size has value {text!r}; expected a size such as 10MiB or 5000000",
            hint="units: B, KB, KiB, MB, MiB, GB, GiB",
        )
    return int(value * _SIZE_UNITS[unit])


def _pair(item: str, option: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key or not value:
        raise ConfigError(f"{option} has value {item!r}; expected NAME=VALUE")
    return key.strip(), value.strip()


def _served(application: Any) -> list[str]:
    table = application.state.table
    return [f"{t.name}@{t.selector}=v{t.model.version}" for t in table.all_targets()]


def _check_references(settings: Any) -> None:
    """Fail before forking workers if a reference resolves to nothing."""
    from loopml.config import Settings
    from loopml.serve.app import default_source

    source = default_source(settings, Settings.from_env())
    for ref in settings.models:
        source.resolve(ref)


def _answer(response: Any) -> Any:
    try:
        document = response.json()
    except ValueError:
        document = None
    if response.status_code >= 400:
        message = document.get("error") if isinstance(document, dict) else response.text[:200]
        raise LoopMLError(f"the server refused: {message}", hint=(document or {}).get("hint"))
    return document
