"""``loopml serve --workers 2``: metrics add up across processes, the log loses nothing."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from .conftest import ServerProcess


@pytest.mark.slow
def test_two_workers_share_metrics_feedback_and_a_complete_log(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    home = tmp_path / "home"
    server = ServerProcess(["--model-file", f"linear={models['linear']}", "--workers", "2"], home)
    ids = []
    try:
        for i in range(120):
            # A new connection each time, so the kernel spreads requests over both workers.
            response = httpx.post(
                f"{server.url}/predict",
                json={"instances": [[float(i)]]},
                headers={"connection": "close"},
            )
            assert response.status_code == 200
            ids.append(response.json()["request_id"])
        assert len({rid[:12] for rid in ids}) == 2, "both workers should have answered"
        time.sleep(1.0)  # each worker folds its metrics in every 0.5 s
        metrics = httpx.get(f"{server.url}/metrics").text
        total = re.search(
            r'loopml_requests_total\{model="linear",route="predict",status="200",version="1"\} ([\d.]+)',  # noqa: E501
            metrics,
        )
        assert total is not None
        assert float(total.group(1)) == 120
        # Feedback may reach the worker that did not answer the request.
        for rid in ids[:10]:
            answer = httpx.post(f"{server.url}/feedback", json={"request_id": rid, "label": 1.0})
            assert answer.status_code == 200, answer.text
    finally:
        server.signal(signal.SIGTERM)
    logs = home / "serving" / "logs"
    rows = duckdb.sql(
        f"SELECT count(*), count(DISTINCT request_id) FROM read_parquet('{logs}/predictions/**/*.parquet')"  # noqa: E501
    ).fetchall()
    assert rows == [(120, 120)]
    labels = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{logs}/feedback/**/*.parquet')"
    ).fetchall()
    assert labels == [(10,)]
