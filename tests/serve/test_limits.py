"""Body size limits on a real server: 413 in the route's error format, never a hang.

Through real uvicorn (httptools), since how a server answers a body it will not read depends
on the HTTP layer: with a Content-Length over the limit, with chunked transfer encoding (no
Content-Length, so the server counts as it reads), and with a client that announces a large
body and then sends nothing.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

LIMIT = 100_000
ROUTES = {
    "/predict": "error",
    "/invocations": "message",
    "/v2/models/linear/infer": "error",
    "/feedback": "error",
}


@pytest.fixture
def server(live_server: Any, models: dict[str, Path]) -> Any:
    return live_server(model_files={"linear": str(models["linear"])}, max_body_bytes=LIMIT)


def _rows(total: int) -> Iterator[bytes]:
    """A valid /predict body of about ``total`` bytes, streamed in 8 KiB pieces."""
    yield b'{"instances": ['
    piece = b"[1.0]," * 1365
    for _ in range(total // len(piece)):
        yield piece
    yield b"[1.0]]}"


@pytest.mark.parametrize("path", list(ROUTES))
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_413_and_the_server_carries_on(
    server: Any, path: str, chunked: bool
) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        body: Any = _rows(5 * LIMIT) if chunked else b"".join(_rows(5 * LIMIT))
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 413, response.text
        message = response.json()[ROUTES[path]]
        expected = f"more than {LIMIT} bytes" if chunked else "bytes; this server accepts"
        assert expected in message
        assert f"at most {LIMIT} bytes" in message
        if not chunked:
            assert f"is {len(body)} bytes" in message
        ok = client.post("/predict", json={"instances": [[1.0]]})
        assert ok.status_code == 200


def test_a_body_just_under_the_limit_is_read_when_streamed(server: Any) -> None:
    body = b"".join(_rows(LIMIT - 10_000))
    assert len(body) < LIMIT
    response = httpx.post(
        f"{server.url}/predict",
        content=iter([body[i : i + 1000] for i in range(0, len(body), 1000)]),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == body.count(b"[1.0]")


def test_an_announced_oversized_body_is_refused_before_it_is_sent(server: Any) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v2/models/linear/infer HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nContent-Length: 999999999\r\n\r\n"
        )
        reply = _read_reply(sock)  # times out (and fails) if the server waits for the body
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"999999999 bytes" in orjson.loads(body)["error"].encode()


def test_a_chunked_body_is_cut_off_at_the_limit_not_read_to_the_end(server: Any) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * (2 * LIMIT)
        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))  # and never the final 0-chunk
        reply = _read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 413")
    assert b"PAYLOAD_TOO_LARGE" in reply


def _read_reply(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    length = int(head.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
    while len(data.split(b"\r\n\r\n", 1)[1]) < length:
        data += sock.recv(65536)
    return data
