"""Value objects of the model registry."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["AuditEvent", "Deployment", "ModelVersion", "RegisteredModel"]


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    description: str | None
    created_at: int
    updated_at: int
    latest_version: int | None = None
    aliases: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ModelVersion:
    name: str
    version: int
    run_id: str | None
    artifact_uri: str
    sha256: str | None
    signature: dict[str, Any] | None
    metrics: dict[str, Any]
    description: str | None
    lineage: dict[str, Any]
    status: str
    created_by: str | None
    created_at: int
    updated_at: int
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def artifact_path(self) -> str:
        """The artifact folder inside the source run (``runs:/<run_id>/<path>``)."""
        prefix = f"runs:/{self.run_id}/"
        return self.artifact_uri[len(prefix) :] if self.artifact_uri.startswith(prefix) else ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["aliases"] = list(self.aliases)
        return data


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    at: int
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Deployment:
    """One registered model served by one deployment (a running or stopped server).

    ``targets`` are the references the server serves for the model (``churn@champion``,
    ``churn@challenger``); ``traffic`` is the split between them as the server reads it
    (``{"weights": {"champion": 90, "challenger": 10}, "shadow": []}``), or ``None`` when
    the server's default applies (everything to the first target).
    """

    name: str
    model_name: str
    targets: tuple[str, ...]
    traffic: dict[str, Any] | None
    status: str
    created_at: int
    updated_at: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = list(self.targets)
        return data
