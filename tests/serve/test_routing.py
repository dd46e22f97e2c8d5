"""Traffic between versions: weighted split, sticky keys, shadows, and changing it live."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import duckdb
import pytest

from loopml.errors import InvalidInputError
from loopml.serve import FileSource, TrafficPolicy


@pytest.fixture
def source(models: dict[str, Path]) -> FileSource:
    """``linear`` version 1 (y = 2x) is the champion, version 2 (y = 3x) the challenger."""
    files = FileSource()
    files.add("linear", "1", models["linear"], aliases=("champion",))
    files.add("linear", "2", models["triple"], aliases=("challenger",))
    return files


def _versions(
    client: Any, n: int, headers: dict[str, str] | None = None
) -> collections.Counter[int]:
    seen: collections.Counter[int] = collections.Counter()
    for _ in range(n):
        response = client.post("/predict", json={"instances": [[1.0]]}, headers=headers or {})
        assert response.status_code == 200, response.text
        seen[response.json()["version"]] += 1
    return seen


def test_a_90_10_split_lands_within_tolerance(make_client: Any, source: FileSource) -> None:
    client = make_client(
        source=source,
        models=("linear@champion", "linear@challenger"),
        traffic={"linear": "champion=90,challenger=10"},
    )
    seen = _versions(client, 1000)
    # Binomial(1000, 0.1): 4 standard deviations is about +-38.
    assert 62 <= seen[2] <= 138, seen


def test_a_sticky_key_always_meets_the_same_version(make_client: Any, source: FileSource) -> None:
    client = make_client(
        source=source,
        models=("linear@champion", "linear@challenger"),
        traffic={"linear": "champion=50,challenger=50"},
    )
    chosen = {}
    for user in range(40):
        seen = _versions(client, 5, {"X-Loopml-Key": f"user-{user}"})
        assert len(seen) == 1, (user, seen)
        chosen[user] = next(iter(seen))
    assert set(chosen.values()) == {1, 2}  # the keys spread over both versions


def test_shadow_answers_are_logged_never_returned(
    make_client: Any, source: FileSource, tmp_path: Path
) -> None:
    client = make_client(
        source=source,
        models=("linear@champion", "linear@challenger"),
        traffic={"linear": "champion=100,challenger=shadow"},
    )
    ids = []
    for _ in range(20):
        body = client.post("/predict", json={"instances": [[1.0]]}).json()
        assert body["version"] == 1
        assert body["predictions"] == pytest.approx([2.0])
        ids.append(body["request_id"])
    client.__exit__(None, None, None)  # shutdown flushes the log
    rows = duckdb.sql(
        f"SELECT version, shadow, prediction FROM read_parquet('{tmp_path}/logs/predictions/**/*.parquet') "  # noqa: E501
        "ORDER BY version"
    ).fetchall()
    assert {(v, s) for v, s, _ in rows} == {("1", False), ("2", True)}
    shadow_predictions = [p for v, s, p in rows if s]
    assert len(shadow_predictions) == 20
    assert shadow_predictions == pytest.approx([3.0] * 20)


def test_traffic_changes_at_run_time_through_the_admin_api(
    make_client: Any, source: FileSource
) -> None:
    client = make_client(source=source, models=("linear@champion", "linear@challenger"))
    assert _versions(client, 20) == {1: 20}
    response = client.put(
        "/admin/traffic/linear", json={"weights": {"champion": 0, "challenger": 100}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["spec"] == "champion=0,challenger=100"
    assert _versions(client, 20) == {2: 20}
    assert client.get("/admin/traffic").json()["linear"]["weights"] == {
        "champion": 0.0,
        "challenger": 100.0,
    }
    bad = client.put("/admin/traffic/linear", json={"spec": "champion=50,canary=50"})
    assert bad.status_code == 400
    assert "names ['canary'], which this server does not serve" in bad.json()["error"]


def test_the_admin_api_can_require_a_token(make_client: Any, source: FileSource) -> None:
    client = make_client(
        source=source, models=("linear@champion", "linear@challenger"), admin_token="s3cret"
    )
    refused = client.put("/admin/traffic/linear", json={"spec": "challenger=100"})
    assert refused.status_code == 401
    assert refused.json()["code"] == "UNAUTHORIZED"
    allowed = client.put(
        "/admin/traffic/linear",
        json={"spec": "challenger=100"},
        headers={"authorization": "Bearer s3cret"},
    )
    assert allowed.status_code == 200


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("champion", "is not SELECTOR=WEIGHT"),
        ("champion=abc", "expected a number or 'shadow'"),
        ("champion=0", "the weights sum to 0"),
        ("champion=-5", "between 0 and 100"),
        ("champion=50,champion=shadow", "cannot be both weighted and shadow"),
    ],
)
def test_bad_traffic_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        TrafficPolicy.parse(spec)
