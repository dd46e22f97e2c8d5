"""The ASGI front: which method each inference route answers, and what the others get."""

from __future__ import annotations

from typing import Any


def test_each_inference_route_answers_only_its_own_method(make_client: Any) -> None:
    client = make_client("linear")
    assert client.post("/predict", json={"instances": [[1.0]]}).status_code == 200
    put = client.put("/predict", json={"instances": [[1.0]]})
    assert put.status_code == 405
    assert put.headers["allow"] == "POST"
    assert put.json() == {"error": "use POST on this endpoint"}
    for path in ("/invocations", "/v2/models/linear/infer", "/feedback"):
        answer = client.put(path, json={})
        assert (answer.status_code, answer.headers["allow"]) == (405, "POST"), path
    post = client.post("/admin/traffic/linear", json={"spec": "1=100"})
    assert post.status_code == 405
    assert post.headers["allow"] == "PUT"
    assert post.json() == {"error": "use PUT on this endpoint"}
