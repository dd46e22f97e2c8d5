"""The module-level tracking API (``loopml.start_run``, ``loopml.log_metric``, ...).

It keeps a stack of active runs per thread on top of one process-wide :class:`Client`
built from the environment. ``start_run`` as a context manager ends the run FINISHED, or
FAILED with the exception text when the block raises. Buffered values are flushed by
``end_run``, at interpreter exit (open runs end FINISHED, or FAILED after an uncaught
exception) and on SIGTERM (open runs end KILLED, then the signal's previous disposition
runs).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidInputError
from loopml.tracking.client import Client
from loopml.tracking.entities import Run, RunStatus

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ActiveRun",
    "active_run",
    "end_run",
    "get_client",
    "get_experiment_by_name",
    "last_active_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
]

_state_lock = threading.RLock()  # re-entered by the SIGTERM handler
_client: Client | None = None
_experiment_id: str | None = None
_local = threading.local()
_all_active: dict[str, Client] = {}  # run_id -> client, across threads, for exit handling
_last_run_id: str | None = None
_hooks_installed = False
_uncaught: BaseException | None = None


class ActiveRun:
    """The value of ``with loopml.start_run() as run``: a handle on the open run."""

    def __init__(self, run: Run, client: Client) -> None:
        self._run = run
        self._client = client

    @property
    def info(self) -> Any:
        return self._run.info

    @property
    def data(self) -> Any:
        return self._client.get_run(self._run.info.run_id).data

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            end_run(RunStatus.FINISHED)
        elif isinstance(exc, KeyboardInterrupt):
            end_run(RunStatus.KILLED, failure_reason="KeyboardInterrupt")
        else:
            end_run(RunStatus.FAILED, failure_reason=f"{type(exc).__name__}: {exc}")

    def __repr__(self) -> str:
        return f"<ActiveRun run_id={self._run.info.run_id!r}>"


def get_client() -> Client:
    """The process-wide client the module-level functions use."""
    global _client
    if _client is None:
        with _state_lock:
            if _client is None:
                _client = Client()
    return _client


def set_tracking_uri(uri: str | None, *, artifact_uri: str | None = None) -> None:
    """Point the module-level API at another store (None: back to the environment)."""
    global _client, _experiment_id
    if _stack():
        raise InvalidInputError(
            "cannot change the tracking URI while a run is active",
            hint="call end_run() first",
        )
    with _state_lock:
        if _client is not None:
            _client.close()
        _client = (
            Client(tracking_uri=uri, artifact_uri=artifact_uri) if (uri or artifact_uri) else None
        )
        _experiment_id = None


def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Any:
    """Make runs go to this experiment, creating it if needed; returns the experiment."""
    global _experiment_id
    client = get_client()
    if experiment_id is not None:
        experiment = client.get_experiment(experiment_id)
    elif experiment_name is not None:
        found_id = client.store.get_or_create_experiment(experiment_name)
        experiment = client.get_experiment(found_id)
    else:
        raise InvalidInputError(
            "set_experiment needs experiment_name or experiment_id",
            hint="e.g. loopml.set_experiment('churn')",
        )
    _experiment_id = experiment.experiment_id
    return experiment


def get_experiment_by_name(name: str) -> Any:
    return get_client().get_experiment_by_name(name)


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    parent_run_id: str | None = None,
) -> ActiveRun:
    """Open a run (or resume ``run_id``) and make it the active one in this thread.

    A run started while another is active must say ``nested=True``; it then records the
    active run as its parent.
    """
    client = get_client()
    stack = _stack()
    if stack and not nested:
        raise InvalidInputError(
            f"run {stack[-1]} is already active",
            hint="end it with loopml.end_run(), or pass nested=True to start a child run",
        )
    parent = parent_run_id or (stack[-1] if stack else None)
    if run_id is not None:
        run = client.get_run(run_id)
        if run.info.status != RunStatus.RUNNING:
            client.update_run(run_id, RunStatus.RUNNING)
        client.writer.track(run_id)
    else:
        experiment = experiment_id or _experiment_id or os.environ.get("LOOPML_EXPERIMENT_ID")
        if experiment is None and os.environ.get("LOOPML_EXPERIMENT_NAME"):
            experiment = client.store.get_or_create_experiment(os.environ["LOOPML_EXPERIMENT_NAME"])
        run = client.create_run(experiment, tags=tags, run_name=run_name, parent_run_id=parent)
    _install_exit_hooks()
    stack.append(run.info.run_id)
    with _state_lock:
        _all_active[run.info.run_id] = client
    return ActiveRun(run, client)


def active_run() -> ActiveRun | None:
    stack = _stack()
    if not stack:
        return None
    client = get_client()
    return ActiveRun(client.get_run(stack[-1]), client)


def last_active_run() -> Run | None:
    return None if _last_run_id is None else get_client().get_run(_last_run_id)


def end_run(status: str = RunStatus.FINISHED, *, failure_reason: str | None = None) -> None:
    """End the active run of this thread (no-op when none is active), flushing its data."""
    global _last_run_id
    stack = _stack()
    if not stack:
        return
    run_id = stack.pop()
    client = get_client()
    # If this write fails the run stays in _all_active, so the exit hooks try again.
    client.set_terminated(run_id, status)
    with _state_lock:
        _all_active.pop(run_id, None)
    if failure_reason is not None:
        client.store.update_run(run_id, status=status, failure_reason=failure_reason)
    _last_run_id = run_id


def _run_id() -> str:
    stack = _stack()
    if stack:
        return stack[-1]
    run = start_run()  # MLflow's behaviour: logging without a run opens one
    return run.info.run_id


def log_param(key: str, value: Any) -> Any:
    return get_client().log_param(_run_id(), key, value)


def log_params(params: Mapping[str, Any]) -> None:
    get_client().log_params(_run_id(), params)


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    get_client().log_metric(_run_id(), key, value, timestamp=timestamp, step=step)


def log_metrics(
    metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
) -> None:
    get_client().log_metrics(_run_id(), metrics, step=step, timestamp=timestamp)


def set_tag(key: str, value: Any) -> None:
    get_client().set_tag(_run_id(), key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    get_client().set_tags(_run_id(), tags)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> str:
    return get_client().log_artifact(_run_id(), local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> list[str]:
    return get_client().log_artifacts(_run_id(), local_dir, artifact_path)


def log_dict(dictionary: Any, artifact_file: str) -> str:
    return get_client().log_dict(_run_id(), dictionary, artifact_file)


def log_text(text: str, artifact_file: str) -> str:
    return get_client().log_text(_run_id(), text, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> str:
    return get_client().log_figure(_run_id(), figure, artifact_file)


def log_input(dataset_version_id: int, context: str = "training") -> None:
    """Record that the active run read a dataset version (for lineage)."""
    get_client().log_inputs(_run_id(), [dataset_version_id], context)


def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str = "",
    run_view_type: str = "ACTIVE_ONLY",
    max_results: int = 100_000,
    order_by: Sequence[str] | None = None,
    output_format: str = "pandas",
    search_all_experiments: bool = False,
    experiment_names: Sequence[str] | None = None,
) -> pd.DataFrame | list[Run]:
    """Search runs with MLflow's filter language; a pandas DataFrame by default.

    Without ``experiment_ids``/``experiment_names`` it searches the current experiment
    (or every experiment with ``search_all_experiments=True``).
    """
    client = get_client()
    ids: list[str] | None = list(experiment_ids) if experiment_ids else None
    if experiment_names:
        ids = [*(ids or []), *client.get_experiment_ids(experiment_names)]
    if ids is None and not search_all_experiments and _experiment_id is not None:
        ids = [_experiment_id]
    if output_format == "list":
        return client.search_runs(ids, filter_string, run_view_type, max_results, order_by)
    if output_format != "pandas":
        raise InvalidInputError(
            f"output_format {output_format!r} is not supported",
            hint="use 'pandas' (default) or 'list'",
        )
    return client.search_runs_frame(ids, filter_string, run_view_type, max_results, order_by)


# --- process exit -----------------------------------------------------------------------------


def _stack() -> list[str]:
    stack: list[str] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def _finish_all(status: str, reason: str | None) -> None:
    with _state_lock:
        open_runs = list(_all_active.items())
        _all_active.clear()
    for run_id, client in reversed(open_runs):
        try:
            client.set_terminated(run_id, status)
            if reason:
                client.store.update_run(run_id, status=status, failure_reason=reason)
        except Exception:
            pass
    clients = {id(c): c for _, c in open_runs}
    if _client is not None:
        clients[id(_client)] = _client
    for client in clients.values():
        with contextlib.suppress(Exception):  # exiting: never mask the exit
            client.close()


def _at_exit() -> None:
    if _uncaught is not None:
        _finish_all(RunStatus.FAILED, f"{type(_uncaught).__name__}: {_uncaught}")
    else:
        _finish_all(RunStatus.FINISHED, None)


def _on_sigterm(previous: Any) -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        # Runs on the main thread, possibly while it holds a writer or state lock (they are
        # re-entrant for exactly this reason).
        _finish_all(RunStatus.KILLED, "SIGTERM")
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_IGN:
            return
        else:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    return handler


def _install_exit_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    previous_hook = sys.excepthook

    def excepthook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        global _uncaught
        _uncaught = exc
        previous_hook(exc_type, exc, tb)

    sys.excepthook = excepthook
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _on_sigterm(previous))


def _after_fork_in_child() -> None:
    # A forked child inherits the parent's runs and client but not its writer thread;
    # it starts clean and builds its own client on first use.
    global _client, _hooks_installed
    _client = None
    _local.__dict__.clear()
    _all_active.clear()
    _hooks_installed = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
