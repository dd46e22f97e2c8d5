"""``loopml.serve``: the inference server (ONNX on onnxruntime, behind uvicorn).

Build an app with :func:`create_app` (or run ``loopml serve``)::

    from loopml.serve import ServeSettings, create_app
    app = create_app(ServeSettings(models=("quickstart@champion",)))

Modules, one idea each: ``app`` (ASGI app, error → status table), ``protocols/`` (``/predict``,
Open Inference Protocol, MLflow ``/invocations``, admin; requests become feeds through
:class:`loopml.package.FeedBuilder`), ``runtime`` (engines: onnxruntime, opt-in pickles),
``models`` (loaded versions, atomic swap), ``routing``
(traffic split, shadows), ``batching``, ``reload``, ``predlog`` (+ ``logschema``),
``feedback``, ``metrics``, ``limits``, ``source`` (where models come from), ``settings``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.serve.app import create_app, create_app_from_env
    from loopml.serve.predlog import PredictionLog, recover
    from loopml.serve.routing import TrafficPolicy
    from loopml.serve.settings import ServeSettings
    from loopml.serve.source import (
        FileSource,
        ModelPackage,
        ModelSource,
        RegistrySource,
        Resolved,
    )

__all__ = [
    "FileSource",
    "ModelPackage",
    "ModelSource",
    "PredictionLog",
    "RegistrySource",
    "Resolved",
    "ServeSettings",
    "TrafficPolicy",
    "create_app",
    "create_app_from_env",
    "recover",
]

_WHERE = {
    "create_app": "loopml.serve.app",
    "create_app_from_env": "loopml.serve.app",
    "PredictionLog": "loopml.serve.predlog",
    "recover": "loopml.serve.predlog",
    "TrafficPolicy": "loopml.serve.routing",
    "ServeSettings": "loopml.serve.settings",
    "FileSource": "loopml.serve.source",
    "ModelPackage": "loopml.serve.source",
    "ModelSource": "loopml.serve.source",
    "RegistrySource": "loopml.serve.source",
    "Resolved": "loopml.serve.source",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'loopml.serve' has no attribute {name!r}")
