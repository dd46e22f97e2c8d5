"""The Open Inference Protocol as V2 clients send it: JSON, no Content-Type, binary tensors."""

from __future__ import annotations

import gzip
import struct
import zlib
from typing import Any

import numpy as np
import orjson
import pytest


@pytest.fixture
def client(make_client: Any) -> Any:
    return make_client("linear", "forest", "churn")


def test_server_and_model_metadata_follow_the_spec(client: Any) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    server = client.get("/v2").json()
    assert server["name"] == "loopml"
    assert "binary_tensor_data" in server["extensions"]
    meta = client.get("/v2/models/churn").json()
    assert meta["platform"] == "onnx_onnxv1"
    assert meta["versions"] == ["1"]
    assert meta["inputs"] == [
        {"name": "age", "datatype": "FP64", "shape": [-1, 1]},
        {"name": "plan", "datatype": "BYTES", "shape": [-1, 1]},
    ]
    assert client.get("/v2/models/churn/versions/1/ready").json() == {
        "name": "churn",
        "ready": True,
    }


def test_infer_echoes_the_id_and_returns_typed_tensors(client: Any) -> None:
    request = {
        "id": "42",
        "inputs": [{"name": "x", "shape": [3, 1], "datatype": "FP64", "data": [1, 2, 3]}],
    }
    response = client.post("/v2/models/linear/infer", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == "42"
    assert body["model_name"] == "linear"
    assert body["model_version"] == "1"
    [output] = body["outputs"]
    assert output["name"] == "variable"
    assert output["datatype"] == "FP64"
    assert output["shape"] == [3, 1]
    assert output["data"] == pytest.approx([2.0, 4.0, 6.0])


def test_a_request_without_content_type_and_with_nested_data_works(client: Any) -> None:
    body = orjson.dumps(
        {"inputs": [{"name": "x", "shape": [2, 1], "datatype": "FP32", "data": [[1.0], [2.0]]}]}
    )
    response = client.post("/v2/models/linear/versions/1/infer", content=body)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == pytest.approx([2.0, 4.0])


def test_string_columns_travel_as_bytes_tensors(client: Any) -> None:
    request = {
        "inputs": [
            {"name": "age", "shape": [2, 1], "datatype": "FP64", "data": [60.0, 20.0]},
            {"name": "plan", "shape": [2, 1], "datatype": "BYTES", "data": ["pro", "basic"]},
        ],
        "outputs": [{"name": "label"}],
    }
    response = client.post("/v2/models/churn/infer", json=request)
    assert response.status_code == 200, response.text
    [label] = response.json()["outputs"]
    assert label == {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["churn", "stay"]}


def _binary_request(rows: np.ndarray, *, binary_output: bool) -> tuple[bytes, dict[str, str]]:
    raw = rows.astype("<f4").tobytes()
    header = {
        "inputs": [
            {
                "name": "X",
                "shape": list(rows.shape),
                "datatype": "FP32",
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        "outputs": [{"name": "variable", "parameters": {"binary_data": binary_output}}],
    }
    json_part = orjson.dumps(header)
    return json_part + raw, {"Inference-Header-Content-Length": str(len(json_part))}


def test_tritons_binary_tensor_extension_works_both_ways(client: Any) -> None:
    rows = np.random.default_rng(1).normal(size=(4, 20)).astype(np.float32)
    expected = client.post(
        "/v2/models/forest/infer",
        json={
            "inputs": [
                {"name": "X", "shape": [4, 20], "datatype": "FP32", "data": rows.ravel().tolist()}
            ]
        },
    ).json()["outputs"][0]["data"]
    body, headers = _binary_request(rows, binary_output=True)
    response = client.post("/v2/models/forest/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    size = int(response.headers["inference-header-content-length"])
    header = orjson.loads(response.content[:size])
    [output] = header["outputs"]
    assert output["parameters"]["binary_data_size"] == 16
    values = np.frombuffer(response.content[size:], dtype="<f4")
    assert values.tolist() == pytest.approx(expected)


def test_binary_bytes_tensors_are_length_prefixed(client: Any) -> None:
    plans = b"".join(struct.pack("<I", len(p)) + p for p in (b"pro", b"basic"))
    header = orjson.dumps(
        {
            "inputs": [
                {"name": "age", "shape": [2, 1], "datatype": "FP64", "data": [60.0, 20.0]},
                {
                    "name": "plan",
                    "shape": [2, 1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(plans)},
                },
            ],
            "outputs": [{"name": "label"}],
        }
    )
    response = client.post(
        "/v2/models/churn/infer",
        content=header + plans,
        headers={
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == ["churn", "stay"]


BAD = [
    ("/v2/models/linear/infer", b"{", 400, "not valid JSON"),
    ("/v2/models/linear/infer", b"{}", 400, "non-empty 'inputs' list"),
    (
        "/v2/models/linear/infer",
        b'{"inputs": [{"name": "x", "shape": [2, 1], "datatype": "FP32", "data": [1]}]}',
        400,
        "has 1 values but shape asks for 2",
    ),
    (
        "/v2/models/linear/infer",
        b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": ["abc"]}]}',
        400,
        "'abc', which is not FP32",
    ),
    (
        "/v2/models/linear/infer",
        b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP99", "data": [1]}]}',
        400,
        "not an Open Inference Protocol datatype",
    ),
    (
        "/v2/models/linear/infer",
        b'{"inputs": [{"name": "y", "shape": [1, 1], "datatype": "FP32", "data": [1]}]}',
        400,
        r"missing \['x'\]; unexpected \['y'\]",
    ),
    (
        "/v2/models/linear/infer",
        b'{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}',
        400,
        r"shape \[1, 2\]; the model expects \[-1, 1\]",
    ),
    (
        "/v2/models/linear/infer",
        b'{"inputs": [{"name": "x", "shape": [0, 1], "datatype": "FP32", "data": []}]}',
        400,
        "empty batch",
    ),
    (
        "/v2/models/churn/infer",
        b'{"inputs": [{"name": "age", "shape": [1, 1], "datatype": "BYTES", "data": ["x"]}, {"name": "plan", "shape": [1, 1], "datatype": "BYTES", "data": ["pro"]}]}',  # noqa: E501
        400,
        "datatype BYTES; the model expects FP64",
    ),
    (
        "/v2/models/linear/infer",
        b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1]}], "outputs": [{"name": "nope"}]}',  # noqa: E501
        400,
        "output 'nope' does not exist",
    ),
    (
        "/v2/models/linear/infer",
        b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1]}], "parameters": {"binary_data_output": "yes"}}',  # noqa: E501
        400,
        "parameters.binary_data_output must be true or false",
    ),
    (
        "/v2/models/linear/infer",
        b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1]}], "outputs": [{"name": "variable", "parameters": {"binary_data": 1}}]}',  # noqa: E501
        400,
        r"outputs\[0\].parameters.binary_data must be true or false",
    ),
    (
        "/v2/models/linear/infer",
        b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1]}], "outputs": [{"name": "variable", "parameters": {"classification": 2}}]}',  # noqa: E501
        400,
        "classification extension is not supported",
    ),
    ("/v2/models/nope/infer", b'{"inputs": []}', 400, "non-empty"),
    (
        "/v2/models/nope/infer",
        b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1]}]}',
        404,
        "model 'nope' is not served here",
    ),
    (
        "/v2/models/linear/versions/7/infer",
        b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1]}]}',
        404,
        "version '7' is not loaded",
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), BAD)
def test_errors_are_status_and_an_error_field(
    client: Any, path: str, body: bytes, status: int, message: str
) -> None:
    import re

    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert re.search(message, response.json()["error"]), response.json()


def test_unknown_models_in_metadata_are_404_with_an_error_field(client: Any) -> None:
    response = client.get("/v2/models/nope")
    assert response.status_code == 404
    assert response.json() == {
        "error": "model 'nope' is not served here (hint: served models: linear, forest, churn)"
    }
    assert client.get("/v2/models/linear/versions/3").status_code == 404


def test_a_wrong_content_type_is_415(client: Any) -> None:
    response = client.post(
        "/v2/models/linear/infer", content=b"x=1", headers={"content-type": "text/csv"}
    )
    assert response.status_code == 415
    assert "not supported for inference" in response.json()["error"]


def test_binary_bytes_no_input_claims_are_refused(client: Any) -> None:
    body, headers = _binary_request(np.ones((1, 20), dtype=np.float32), binary_output=False)
    response = client.post("/v2/models/forest/infer", content=body + b"\x00" * 4, headers=headers)
    assert response.status_code == 400
    assert "4 bytes after the JSON header that no input claims" in response.json()["error"]


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data, wbits=-15)),  # raw deflate, as some send
    ],
)
def test_compressed_bodies_are_inflated(client: Any, encoding: str, compress: Any) -> None:
    rows = np.random.default_rng(2).normal(size=(2, 20)).astype(np.float32)
    body, headers = _binary_request(rows, binary_output=False)
    plain = client.post("/v2/models/forest/infer", content=body, headers=headers)
    squeezed = client.post(
        "/v2/models/forest/infer",
        content=compress(body),
        headers={**headers, "Content-Encoding": encoding},
    )
    assert squeezed.status_code == 200, squeezed.text
    assert squeezed.json()["outputs"] == plain.json()["outputs"]


def test_bad_or_unknown_content_encodings_are_clear_errors(make_client: Any) -> None:
    client = make_client("linear", max_body_bytes=10_000)
    request = b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1]}]}'
    url = "/v2/models/linear/infer"
    unknown = client.post(url, content=request, headers={"Content-Encoding": "br"})
    assert unknown.status_code == 415
    assert unknown.json()["error"].startswith("Content-Encoding 'br' is not supported")
    broken = client.post(
        url, content=gzip.compress(request)[:-6], headers={"Content-Encoding": "gzip"}
    )
    assert broken.status_code == 400
    assert "not valid gzip data" in broken.json()["error"]
    bomb = gzip.compress(b" " * 1_000_000 + request)  # 1 KB that inflates past the limit
    assert len(bomb) < 10_000
    inflated = client.post(url, content=bomb, headers={"Content-Encoding": "gzip"})
    assert inflated.status_code == 413
    assert "more than 10000 bytes" in inflated.json()["error"]
    fine = client.post(url, content=gzip.compress(request), headers={"Content-Encoding": "GZIP"})
    assert fine.status_code == 200, fine.text
