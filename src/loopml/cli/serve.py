"""``loopml serve``: run the inference server, and change its traffic split while it runs.

    loopml serve                                    # in a project folder: its serving section
    loopml serve --project examples/quickstart      # the same, from elsewhere
    loopml serve --model churn@champion --model churn@challenger \\
                 --traffic churn=champion=90,challenger=10 --port 8000 --workers 2
    loopml serve traffic churn champion=50 challenger=50 --url http://127.0.0.1:8000
    loopml serve traffic churn                      # show the policy in force
    loopml serve list                               # deployments and their traffic
    loopml serve recover-log                        # roll spools left by kill -9 into Parquet

Where settings come from: a flag, else the ``serving`` section of the project's ``loopml.yaml``
(``--project DIR``, or the current folder when it has one), else the built-in default. What to
serve: ``--model``/``--model-file`` when given (the file's ``models`` and ``traffic`` are then
ignored), else the file's ``models`` (default: the project's model ``@champion``).

A running server records itself in the store's ``deployments`` table under its name
(``--name``, else ``serving.name``, else ``HOST:PORT``); traffic changes go there, audited,
and every worker applies them. Pickles: there is no server flag. A version's pickle is served
only when the version carries its project's opt-in (``model.allow_pickle: true`` in
``loopml.yaml`` when it was registered) and has no ONNX file; ``--model-file`` serves ONNX only.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli.deployments import list_deployments
from loopml.cli.output import print_json, stdout
from loopml.errors import BackendUnavailableError, ConfigError, LoopMLError

if TYPE_CHECKING:
    from loopml.train.project import Project

app = typer.Typer(
    help="Serve registered models over HTTP (ONNX on onnxruntime), and steer their traffic.\n\n"
    "In a project folder (or with --project) the serving section of loopml.yaml says what to "
    "serve and how; flags override it. There is no flag to serve pickles: a version's pickle "
    "is served only when the version itself opted in (model.allow_pickle: true in loopml.yaml "
    "when it was registered) and has no ONNX file.",
    invoke_without_command=True,
)
app.command("list")(list_deployments)

_FROM_FILE = "Default: the project's serving section, else {}."


@app.callback()
def serve(
    ctx: typer.Context,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="NAME@ALIAS, NAME:VERSION or NAME (latest); repeat for several. The first "
            "one's name answers /predict and /invocations. Default: the project's "
            "serving.models (its model @champion).",
        ),
    ] = None,
    model_file: Annotated[
        list[str] | None,
        typer.Option(
            "--model-file",
            help="NAME=PATH of an ONNX file to serve without the registry (ONNX only: "
            "pickles are served only from registry versions that opted in).",
        ),
    ] = None,
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            help="Project folder whose loopml.yaml serving section to use. Default: the "
            "current folder when it has a loopml.yaml.",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Deployment name in the store. Default: serving.name, else HOST:PORT."
        ),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Interface to listen on. " + _FROM_FILE.format("127.0.0.1"))
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on. " + _FROM_FILE.format("8000"))
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Server processes (uvicorn workers). " + _FROM_FILE.format(1))
    ] = None,
    traffic: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=SPEC, e.g. churn=champion=90,challenger=10,candidate=shadow; repeatable; "
            "overrides serving.traffic for that model."
        ),
    ] = None,
    sticky_header: Annotated[
        str | None,
        typer.Option(
            help="Request header whose value pins a caller to one version. "
            + _FROM_FILE.format("X-Loopml-Key")
        ),
    ] = None,
    max_body_size: Annotated[
        str | None,
        typer.Option(help="Largest request body, e.g. 10MiB. " + _FROM_FILE.format("10MiB")),
    ] = None,
    batching: Annotated[
        bool | None,
        typer.Option(help="Merge concurrent requests into one call. " + _FROM_FILE.format("on")),
    ] = None,
    batch_max_rows: Annotated[
        int | None, typer.Option(help="Most rows in one merged call. " + _FROM_FILE.format(512))
    ] = None,
    batch_max_wait_ms: Annotated[
        float | None,
        typer.Option(
            help="Longest a request waits for others to join its batch. " + _FROM_FILE.format(2)
        ),
    ] = None,
    reload_interval: Annotated[
        float | None,
        typer.Option(
            help="Seconds between checks for alias moves and traffic changes. "
            + _FROM_FILE.format(2)
        ),
    ] = None,
    log: Annotated[
        bool | None, typer.Option(help="Keep the prediction log. " + _FROM_FILE.format("on"))
    ] = None,
    log_dir: Annotated[
        str | None,
        typer.Option(
            help="Prediction log folder or object-store URL (s3://bucket/logs). Default: "
            "serving.prediction_log.folder (relative to the project), else <home>/serving/logs."
        ),
    ] = None,
    allow_pickle: Annotated[
        bool,
        typer.Option(
            hidden=True,
            help="Removed: the opt-in to serve a pickle is recorded on each version by its "
            "project (model.allow_pickle: true).",
        ),
    ] = False,
    admin_token: Annotated[
        str | None,
        typer.Option(envvar="LOOPML_SERVE_ADMIN_TOKEN", help="Require this token on /admin."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve models: /predict, the Open Inference Protocol (/v2), MLflow's /invocations.

    In a project folder (or with --project) the serving section of loopml.yaml says what to
    serve and how; flags override it. Models are served from ONNX. There is no flag to serve
    pickles: a version's pickle is served only when that version carries its project's opt-in
    (model.allow_pickle: true in loopml.yaml when it was registered) and has no ONNX file.
    """
    if ctx.invoked_subcommand is not None:
        return
    from loopml.config import Settings
    from loopml.serve.settings import ServeSettings
    from loopml.tracking.store import now_ms
    from loopml.train.serving_spec import ServingSpec, parse_size

    if allow_pickle:
        # Kept only to explain itself: consent to run a pickle's code belongs to the project
        # that produced the version, and travels with the version to every server.
        raise ConfigError(
            "--allow-pickle is no longer a server option: a version's pickle is served only "
            "when the version itself opts in",
            hint="set model.allow_pickle: true in loopml.yaml and re-run `loopml run`; the new "
            "version is tagged loopml.allow_pickle=true",
        )
    found = find_project(project)
    serving = found.spec.serving if found is not None else ServingSpec()
    files = dict(_pair(item, "--model-file") for item in model_file or [])
    policies = dict(_pair(item, "--traffic") for item in traffic or [])
    if model or files:
        refs = list(model or ())
    elif found is not None:
        model_name = found.spec.model_name
        refs = serving.references(model_name)
        policies = {**serving.traffic_specs(model_name), **policies}
    else:
        raise ConfigError(
            "nothing to serve: give at least one --model, or run in a project folder",
            hint="loopml serve --model NAME@champion (see loopml models list), "
            "or loopml serve --project DIR",
        )
    host = host if host is not None else serving.host
    port = port if port is not None else serving.port
    workers = workers if workers is not None else serving.workers
    if workers < 1:
        raise ConfigError(f"--workers is {workers}; it must be at least 1")
    base = Settings.from_env()
    settings = ServeSettings(
        models=tuple(refs),
        model_files=files,
        traffic=policies,
        sticky_header=sticky_header or serving.sticky_header,
        max_body_bytes=(
            parse_size(max_body_size, what="--max-body-size")
            if max_body_size is not None
            else serving.max_body_bytes
        ),
        batching=batching if batching is not None else serving.batching.enabled,
        batch_max_rows=batch_max_rows or serving.batching.max_rows,
        batch_max_wait_ms=(
            batch_max_wait_ms if batch_max_wait_ms is not None else serving.batching.max_wait_ms
        ),
        reload_interval_s=reload_interval or serving.reload_interval_s,
        log_predictions=log if log is not None else serving.prediction_log.enabled,
        log_dir=_log_folder(log_dir, found, serving, base.home),
        admin_token=admin_token,
        state_dir=str((base.home / "serving" / "state" / f"{host}-{port}").absolute()),
        deployment=name or serving.name or f"{host}:{port}",
        launched_at_ms=now_ms(),
    )
    run_server(settings, host=host, port=port, workers=workers, log_level=log_level)


def find_project(folder: Path | None) -> Project | None:
    """The project of ``--project``, else of the current folder if it has a ``loopml.yaml``."""
    from loopml.train.project import PROJECT_FILE, load_project

    if folder is not None:
        return load_project(folder)
    if (Path.cwd() / PROJECT_FILE).is_file():
        return load_project(Path.cwd())
    return None


def settings_log(home: Path) -> Path:
    return (home / "serving" / "logs").absolute()


def _log_folder(flag: str | None, found: Project | None, serving: Any, home: Path) -> str:
    """An object-store URL as given; a local folder made absolute (workers may chdir)."""
    from loopml.serve.logfiles import is_url

    if flag is not None:
        return flag if is_url(flag) else str(Path(flag).absolute())
    if found is not None and serving.prediction_log.folder:
        configured: str = serving.prediction_log.folder
        return configured if is_url(configured) else str(found.path(configured).absolute())
    return str(settings_log(home))


def run_server(settings: Any, *, host: str, port: int, workers: int, log_level: str) -> None:
    """Start uvicorn (uvloop + httptools) with the app built from ``settings``."""
    import uvicorn

    state = Path(str(settings.state_dir))
    os.environ.update(settings.to_env())
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,  # the prediction log and /metrics record every request
        # Nothing here reads the client's address, so uvicorn's X-Forwarded-* middleware
        # would only add a layer to every request.
        "proxy_headers": False,
        "log_level": log_level,
        "timeout_graceful_shutdown": 30,
    }
    if workers == 1:
        from loopml.serve.app import create_app

        application = create_app(settings)  # load now: a bad --model fails before binding
        stdout.print(
            f"serving {', '.join(_served(application))} on http://{host}:{port}"
            f"{_deployment_note(settings)}"
        )
        uvicorn.run(application, **common)
        return
    metrics_dir = state / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    _check_references(settings)
    served = [*settings.models, *(f"{n}={p}" for n, p in settings.model_files.items())]
    stdout.print(
        f"serving {', '.join(served)} on http://{host}:{port} ({workers} workers)"
        f"{_deployment_note(settings)}"
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
        str | None,
        typer.Option(
            help="Base URL of the running server. Default: the project's serving host and "
            "port, else http://127.0.0.1:8000."
        ),
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="LOOPML_SERVE_ADMIN_TOKEN", help="Admin token.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show or change how a served model's traffic is split between its versions.

    The server writes a change to its deployment in the store (audited, with you as the
    actor), and every one of its workers applies it within one reload interval.
    """
    import httpx

    from loopml.tracking.environment import current_user

    url = url or _project_url()
    headers = {"x-loopml-actor": current_user()}
    if token:
        headers["authorization"] = f"Bearer {token}"
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
    log_dir: Annotated[
        str | None, typer.Option(help="Prediction log folder or object-store URL.")
    ] = None,
) -> None:
    """Roll prediction-log spools left by killed servers into Parquet."""
    from loopml.config import Settings
    from loopml.serve.predlog import recover

    folder = log_dir or settings_log(Settings.from_env().home)
    rows = recover(folder)
    stdout.print(f"recovered {rows} prediction-log row(s) into {folder}")


def parse_size(text: str) -> int:
    """``"10MiB"`` → 10485760; plain numbers are bytes."""
    from loopml.train.serving_spec import parse_size as parse

    return parse(text, what="--max-body-size")


def _project_url() -> str:
    found = find_project(None)
    if found is None:
        return "http://127.0.0.1:8000"
    serving = found.spec.serving
    # A server listening on every interface is reached on this machine through loopback.
    host = "127.0.0.1" if serving.host in ("0.0.0.0", "::", "") else serving.host
    return f"http://{host}:{serving.port}"


def _deployment_note(settings: Any) -> str:
    return f" (deployment {settings.deployment})" if settings.deployment else ""


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
    from loopml.serve.routing import TrafficPolicy

    for spec in settings.traffic.values():
        TrafficPolicy.parse(spec)
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
