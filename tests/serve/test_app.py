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


def test_every_protocol_takes_a_gzip_or_deflate_body(make_client: Any) -> None:
    import gzip
    import zlib

    client = make_client("linear")
    body = b'{"instances": [[1.0], [2.0]]}'
    for path in ("/predict", "/invocations"):
        for coding, compress in (("gzip", gzip.compress), ("deflate", zlib.compress)):
            answer = client.post(
                path,
                content=compress(body),
                headers={"content-type": "application/json", "content-encoding": coding},
            )
            assert answer.status_code == 200, (path, coding, answer.text)
    unknown = client.post(
        "/predict",
        content=body,
        headers={"content-type": "application/json", "content-encoding": "br"},
    )
    assert unknown.status_code == 415
    assert "Content-Encoding 'br' is not supported" in unknown.json()["error"]
