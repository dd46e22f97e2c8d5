"""The ``serving`` section of ``loopml.yaml``: what ``loopml serve`` serves from a project folder.

::

    serving:
      name: churn-api                  # deployment name (default: host:port)
      models: ["@champion", "@challenger"]   # "@alias"/":version" are the project's model
      traffic: {champion: 90, challenger: 10}   # or "champion=90,challenger=10", or by model:
                                               # {churn: {weights: {...}, shadow: [...]}}
      batching: {max_rows: 256, max_wait_ms: 1}
      max_body_size: 10MiB
      prediction_log: {folder: logs}   # relative to the project folder
      host: 0.0.0.0
      port: 8080
      workers: 2

Every key has a default, so a project with no ``serving`` section serves its model's
``@champion`` on 127.0.0.1:8000. Flags of ``loopml serve`` override what the file says.
Traffic specs are checked for shape here and against the served targets by the server.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loopml.errors import ConfigError, LoopMLError

__all__ = [
    "BatchingSpec",
    "PredictionLogSpec",
    "ServingSpec",
    "TrafficSpec",
    "parse_size",
]

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


class _Spec(BaseModel):
    # The same strictness as every other section of the project file: unknown keys are errors.
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatchingSpec(_Spec):
    """Adaptive micro-batching: concurrent requests merged into one inference call."""

    enabled: bool = True
    max_rows: int = Field(default=512, ge=1, description="most rows in one merged call")
    max_wait_ms: float = Field(
        default=2.0, ge=0, description="longest a request waits for others to join its batch"
    )


class PredictionLogSpec(_Spec):
    """The prediction log (Parquet, partitioned by model and date)."""

    enabled: bool = True
    folder: str | None = Field(
        default=None,
        description="log folder, relative to the project folder, or an object-store URL such "
        "as s3://bucket/logs (default <home>/serving/logs)",
    )


class TrafficSpec(_Spec):
    """A traffic policy as a mapping: weights by target, and shadow targets."""

    weights: dict[str, float] = Field(description="weight by target, e.g. {champion: 90}")
    shadow: list[str] = Field(default_factory=list, description="targets that get a copy")

    def text(self) -> str:
        """The same policy as text: ``champion=100,candidate=shadow``."""
        parts = [f"{k}={v:g}" for k, v in self.weights.items()]
        return ",".join(parts + [f"{s}=shadow" for s in self.shadow])


class ServingSpec(_Spec):
    """What ``loopml serve`` serves from this project, and how."""

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        pattern=r"^[^/]+$",
        description="deployment name in the store (default: host:port)",
    )
    models: list[str] = Field(
        default_factory=lambda: ["@champion"],
        min_length=1,
        description="references to serve: NAME@ALIAS, NAME:VERSION, or @ALIAS / :VERSION of "
        "the project's model; the first answers /predict",
    )
    traffic: str | dict[str, str | TrafficSpec] | None = Field(
        default=None,
        description="split between targets of the project's model: "
        "{champion: 90, challenger: 10, candidate: shadow} or 'champion=90,challenger=10'; "
        "or a mapping of model name to such a text or to {weights: {...}, shadow: [...]}",
    )
    sticky_header: str = Field(
        default="X-Loopml-Key", min_length=1, description="header that pins a caller to a version"
    )
    batching: BatchingSpec = Field(default_factory=BatchingSpec)
    max_body_size: str | int = Field(
        default="10MiB", description="largest request body, e.g. 10MiB or 5000000 (bytes)"
    )
    prediction_log: PredictionLogSpec = Field(default_factory=PredictionLogSpec)
    reload_interval_s: float = Field(
        default=2.0, gt=0, description="seconds between checks for alias moves and traffic changes"
    )
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, description="server processes (uvicorn workers)")

    @field_validator("models", mode="before")
    @classmethod
    def _one_reference(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("models")
    @classmethod
    def _references(cls, value: list[str]) -> list[str]:
        from loopml.registry.refs import parse_ref

        for ref in value:
            try:
                parse_ref(f"model{ref}" if ref[:1] in ("@", ":") else ref)
            except LoopMLError as exc:
                raise ValueError(f"{ref!r}: {exc.message}") from None
        return value

    @field_validator("traffic", mode="before")
    @classmethod
    def _selector_mapping(cls, value: Any) -> Any:
        # {champion: 90, challenger: 10, candidate: shadow} is the project model's policy,
        # written as a mapping: the same as the text "champion=90,challenger=10,candidate=shadow".
        if isinstance(value, dict) and value and all(_is_share(v) for v in value.values()):
            return ",".join(f"{k}={v}" for k, v in value.items())
        return value

    @field_validator("batching", "prediction_log", mode="before")
    @classmethod
    def _on_off(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value

    @field_validator("max_body_size")
    @classmethod
    def _size(cls, value: str | int) -> str | int:
        try:
            parse_size(value)
        except ConfigError:
            raise ValueError(
                "expected a size such as 10MiB or 5000000 (units: B, KB, KiB, MB, MiB, GB, GiB)"
            ) from None
        return value

    # -- resolved values ----------------------------------------------------------------------

    def references(self, model_name: str) -> list[str]:
        """:attr:`models` with ``@alias``/``:version`` completed by the project's model name."""
        return [f"{model_name}{ref}" if ref[:1] in ("@", ":") else ref for ref in self.models]

    def traffic_specs(self, model_name: str) -> dict[str, str]:
        """``{model: "champion=90,challenger=10"}``; a spec not keyed by model is the project
        model's."""
        if self.traffic is None:
            return {}
        if isinstance(self.traffic, str):
            return {model_name: self.traffic}
        return {
            name: spec if isinstance(spec, str) else spec.text()
            for name, spec in self.traffic.items()
        }

    @property
    def max_body_bytes(self) -> int:
        return parse_size(self.max_body_size)


def _is_share(value: Any) -> bool:
    """A weight (a number) or the word ``shadow``: the values of a selector mapping."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float) or (isinstance(value, str) and value == "shadow")


def parse_size(value: str | int, *, what: str = "max_body_size") -> int:
    """``"10MiB"`` → 10485760; plain numbers are bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    text = str(value)
    cleaned = text.strip().lower().replace(" ", "")
    digits = cleaned.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = cleaned[len(digits) :]
    try:
        number = float(digits)
    except ValueError:
        number = -1
    if unit not in _SIZE_UNITS or not 0 < number < math.inf:
        raise ConfigError(
            f"{what} has value {text!r}; expected a size such as 10MiB or 5000000",
            hint="units: B, KB, KiB, MB, MiB, GB, GiB",
        )
    return int(number * _SIZE_UNITS[unit])
