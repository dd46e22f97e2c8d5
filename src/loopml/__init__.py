"""loopml: the whole machine-learning loop, with nothing to set up.

``import loopml`` is cheap: names below are resolved on first use (PEP 562), so scripts that
only need part of the API never pay for SQLAlchemy, pandas or onnxruntime they do not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._lazy import lazy_exports
from loopml._version import __version__

if TYPE_CHECKING:
    from loopml.config import Settings
    from loopml.registry import ModelRegistry
    from loopml.tracking.client import Client
    from loopml.tracking.entities import Run, RunStatus
    from loopml.tracking.fluent import (
        ActiveRun,
        active_run,
        end_run,
        get_client,
        get_experiment_by_name,
        last_active_run,
        log_artifact,
        log_artifacts,
        log_dict,
        log_figure,
        log_input,
        log_metric,
        log_metrics,
        log_param,
        log_params,
        log_text,
        search_runs,
        set_experiment,
        set_tag,
        set_tags,
        set_tracking_uri,
        start_run,
    )

_FLUENT = (
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
    "start_run",
)

_LAZY: dict[str, str] = {
    **dict.fromkeys(_FLUENT, "loopml.tracking.fluent"),
    "Client": "loopml.tracking.client",
    "Run": "loopml.tracking.entities",
    "RunStatus": "loopml.tracking.entities",
    "Settings": "loopml.config",
    "ModelRegistry": "loopml.registry",
}

__all__ = [
    "ActiveRun",
    "Client",
    "ModelRegistry",
    "Run",
    "RunStatus",
    "Settings",
    "__version__",
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
    "start_run",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
