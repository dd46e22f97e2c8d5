"""Serving settings: one frozen value object, read at the edge (CLI or env) and passed down.

``loopml serve --workers N`` starts N uvicorn processes that each build the app from
:func:`ServeSettings.from_env`, so every setting round-trips through one environment
variable (``LOOPML_SERVE_SETTINGS``, JSON) written by the CLI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from loopml.errors import ConfigError

__all__ = ["ENV_VAR", "ServeSettings"]

ENV_VAR = "LOOPML_SERVE_SETTINGS"


@dataclass(frozen=True, kw_only=True)
class ServeSettings:
    """What to serve and how.

    ``models`` are registry references (``NAME@ALIAS``, ``NAME:VERSION``, ``NAME``); the first
    one's name is the default model behind ``/predict`` and ``/invocations``. ``model_files``
    maps a name to an ONNX file served without a registry (as version ``"1"``).
    ``traffic`` maps a model name to a spec such as ``"champion=90,challenger=10,c2=shadow"``.

    ``deployment`` names the server in the store's ``deployments`` table (``loopml serve``
    uses ``host:port`` or ``serving.name``): with a name, the server records what it serves,
    and its registry models' traffic changes are shared through the store by every worker.
    Without one (the default for :func:`loopml.serve.create_app`), policies stay in-process.

    There is no setting to serve pickles: a version's pickle is served only when that version
    carries its project's opt-in (see :mod:`loopml.serve.source`).
    """

    models: tuple[str, ...] = ()
    model_files: Mapping[str, str] = field(default_factory=dict)
    traffic: Mapping[str, str] = field(default_factory=dict)
    sticky_header: str = "x-loopml-key"
    max_body_bytes: int = 10 * 1024 * 1024
    # Batching: requests that meet while the server is busy are merged into one run of up to
    # ``batch_max_rows`` rows; a request waits at most ``batch_max_wait_ms`` for others.
    batching: bool = True
    batch_max_rows: int = 512
    batch_max_wait_ms: float = 2.0
    # Inference slower than this runs in a worker thread instead of on the event loop.
    offload_threshold_ms: float = 2.0
    reload_interval_s: float = 2.0
    log_predictions: bool = True
    log_dir: str | None = None
    log_spool_interval_s: float = 0.2
    log_roll_interval_s: float = 60.0
    log_inputs: bool = True
    metrics: bool = True
    state_dir: str | None = None
    ort_threads: int = 1
    # When set, the admin API (traffic changes) needs ``Authorization: Bearer <token>``.
    admin_token: str | None = None
    deployment: str | None = None
    # When the server was launched (ms since the epoch): the workers of one launch share it, so
    # the first to start replaces what an earlier launch left in the store and the others
    # keep what it wrote (see loopml.registry.deployments). None: when the app is built.
    launched_at_ms: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "model_files", dict(self.model_files))
        object.__setattr__(self, "traffic", dict(self.traffic))
        object.__setattr__(self, "sticky_header", self.sticky_header.lower())
        if not self.models and not self.model_files:
            raise ConfigError(
                "no model to serve: the settings name no --model and no model file",
                hint="loopml serve --model NAME@champion (or NAME:3)",
            )
        _positive("max_body_bytes", self.max_body_bytes)
        _positive("batch_max_rows", self.batch_max_rows)
        _positive("reload_interval_s", self.reload_interval_s)
        _positive("log_spool_interval_s", self.log_spool_interval_s)
        _positive("log_roll_interval_s", self.log_roll_interval_s)
        _positive("ort_threads", self.ort_threads)
        if self.batch_max_wait_ms < 0:
            raise ConfigError(
                f"batch_max_wait_ms has value {self.batch_max_wait_ms!r}; it must be >= 0",
                hint="0 merges only requests that arrive together; 2 is the default",
            )

    @property
    def default_model(self) -> str:
        """The model name behind ``/predict`` and ``/invocations``."""
        if self.models:
            from loopml.registry.refs import parse_ref

            return parse_ref(self.models[0]).name
        return next(iter(self.model_files))

    def log_path(self, home: Path) -> str | Path:
        """Where the prediction log goes: ``log_dir`` (a folder, or an object-store URL kept
        as text), else ``<home>/serving/logs``."""
        from loopml.serve.logfiles import is_url

        if not self.log_dir:
            return home / "serving" / "logs"
        return self.log_dir if is_url(self.log_dir) else Path(self.log_dir)

    def state_path(self, home: Path) -> Path:
        """Folder shared by the workers (Prometheus multi-process files)."""
        return Path(self.state_dir) if self.state_dir else home / "serving" / "state"

    def to_env(self) -> dict[str, str]:
        """The environment variable that carries these settings to worker processes."""
        import orjson

        return {ENV_VAR: orjson.dumps(asdict(self)).decode()}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServeSettings:
        """Rebuild the settings written by :meth:`to_env`."""
        import orjson

        env = os.environ if environ is None else environ
        text = env.get(ENV_VAR)
        if not text:
            raise ConfigError(
                f"{ENV_VAR} is not set, so a worker does not know what to serve",
                hint="start the server with `loopml serve`, which sets it",
            )
        try:
            data: dict[str, Any] = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{ENV_VAR} is not valid JSON: {exc}") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{ENV_VAR} has unknown settings {unknown}",
                hint=f"valid settings: {sorted(known)}",
            )
        return cls(**data)


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{name} has value {value!r}; it must be positive")
