"""JSON bodies on every route: what the parser refuses is a 400 saying why, never a 500."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

ROUTES = {
    "/predict": "error",
    "/invocations": "message",
    "/v2/models/linear/infer": "error",
    "/feedback": "error",
}


@pytest.fixture
def client(make_client: Any) -> Any:
    return make_client("linear")


@pytest.mark.parametrize("path", list(ROUTES))
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 100_000, "nests arrays or objects more than 1024 levels deep"),
        (b'{"instances": ' + b"[" * 1100 + b"]" * 1100 + b"}", "more than 1024 levels deep"),
        (b'{"instances": [[NaN]]}', "contains NaN or Infinity"),
        (b'{"instances": [[-Infinity]]}', "contains NaN or Infinity"),
        (b'{"instances": [[1e400]]}', "holds a number out of range"),
        (b'{"instances": ["\\ud800"]}', "cannot be read: no low surrogate"),
        (b'{"instances": [[1.0]],}', "not valid JSON: trailing comma"),
        (b"\xef\xbb\xbf", "is empty"),
    ],
)
def test_unreadable_json_is_a_400_saying_why(
    client: Any, path: str, body: bytes, message: str
) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert message in response.json()[ROUTES[path]]


@pytest.mark.parametrize("path", ["/predict", "/invocations"])
def test_a_byte_order_mark_before_the_json_is_skipped(client: Any, path: str) -> None:
    body = b"\xef\xbb\xbf" + json.dumps({"instances": [[1.0], [2.0]]}).encode()
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pytest.approx([2.0, 4.0])


@pytest.mark.parametrize("depth", [30, 70, 250])
def test_deeply_nested_values_inside_a_valid_body_are_a_400(client: Any, depth: int) -> None:
    deep: Any = 1.0
    for _ in range(depth):
        deep = [deep]
    bodies = {
        "/predict": {"instances": [deep]},
        "/invocations": {"dataframe_split": {"columns": ["x"], "data": [deep]}},
        "/v2/models/linear/infer": {
            "inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": deep}]
        },
    }
    for path, body in bodies.items():
        response = client.post(
            path, content=orjson.dumps(body), headers={"content-type": "application/json"}
        )
        if path == "/v2/models/linear/infer":
            # V2 data may nest to any depth: only the count of values matters.
            assert response.status_code == 200, response.text
        else:
            assert response.status_code == 400, (path, response.text[:300])
