"""Turning rows from a run search into :class:`Run` objects or a pandas DataFrame.

Rows carry the run's ``summary`` JSON (latest metrics, params, tags), so a page of results is
assembled from one query, column by column, without a query per run or per key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from loopml.tracking.entities import Run
from loopml.tracking.store import run_data, run_info

if TYPE_CHECKING:
    import pandas as pd

_ATTRIBUTE_COLUMNS = (
    "run_id",
    "experiment_id",
    "status",
    "artifact_uri",
    "start_time",
    "end_time",
    "run_name",
    "user_id",
    "parent_run_id",
)


def rows_to_runs(rows: Sequence[Any]) -> list[Run]:
    return [Run(info=run_info(row), data=run_data(row.summary)) for row in rows]


def rows_to_frame(rows: Sequence[Any]) -> pd.DataFrame:
    """MLflow's ``search_runs`` frame: attributes, then ``metrics.*``, ``params.*``, ``tags.*``."""
    import numpy as np
    import pandas as pd

    summaries = [orjson.loads(row.summary) for row in rows]
    columns: dict[str, Any] = {
        "run_id": [row.run_id for row in rows],
        "experiment_id": [str(row.experiment_id) for row in rows],
        "status": [row.status for row in rows],
        "artifact_uri": [row.artifact_uri for row in rows],
        "start_time": pd.to_datetime(
            np.array([row.start_time for row in rows], dtype="int64"), unit="ms", utc=True
        ),
        "end_time": pd.to_datetime(
            pd.array([row.end_time for row in rows], dtype="Int64"), unit="ms", utc=True
        ),
        "run_name": [row.name for row in rows],
        "user_id": [row.user for row in rows],
        "parent_run_id": [row.parent_run_id for row in rows],
    }
    for section in ("metrics", "params", "tags"):
        keys: dict[str, None] = {}
        for summary in summaries:
            keys.update(dict.fromkeys(summary[section]))
        for key in sorted(keys):
            values = [summary[section].get(key) for summary in summaries]
            if section == "metrics":
                columns[f"metrics.{key}"] = np.array(
                    [np.nan if value is None else float(value) for value in values],
                    dtype="float64",
                )
            else:
                columns[f"{section}.{key}"] = values
    if not rows:
        return pd.DataFrame({name: [] for name in _ATTRIBUTE_COLUMNS})
    return pd.DataFrame(columns, copy=False)
