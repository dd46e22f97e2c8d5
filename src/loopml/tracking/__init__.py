"""Experiment tracking: runs, params, metrics, tags, artifacts and search (MLflow-shaped).

Public entry points are re-exported from :mod:`loopml`; import from there.
"""

from loopml.tracking.client import Client
from loopml.tracking.entities import Experiment, Metric, Run, RunData, RunInfo, RunStatus

__all__ = ["Client", "Experiment", "Metric", "Run", "RunData", "RunInfo", "RunStatus"]
