"""Plain value objects returned by the tracking API (shaped like MLflow's entities)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Experiment", "Metric", "Run", "RunData", "RunInfo", "RunStatus"]


class RunStatus:
    """The states a run moves through (MLflow's names)."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    ALL = (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED)
    TERMINAL = (FINISHED, FAILED, KILLED)


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str | None
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str | None
    status: str
    start_time: int
    end_time: int | None
    user_id: str | None
    artifact_uri: str | None
    lifecycle_stage: str
    parent_run_id: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    source: str | None = None
    environment: dict[str, Any] | None = None
    failure_reason: str | None = None
    heartbeat_at: int | None = None

    @property
    def run_uuid(self) -> str:  # MLflow's older name
        return self.run_id


@dataclass(frozen=True, slots=True)
class RunData:
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Run:
    info: RunInfo
    data: RunData
    inputs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (used by ``loopml runs show --json``)."""
        from dataclasses import asdict

        return {"info": asdict(self.info), "data": asdict(self.data), "inputs": self.inputs}
