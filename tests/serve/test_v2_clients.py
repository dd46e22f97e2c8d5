"""Real Open Inference Protocol clients against a real server (uvicorn on 127.0.0.1).

Triton's ``tritonclient[http]`` drives the server itself, synchronously (geventhttpclient) and
with asyncio (aiohttp), in JSON and in the binary tensor extension, compressed or not. KServe's
``InferenceRESTClient`` pulls in Kubernetes, gRPC and a pinned pandas, so it is not a test
dependency: its requests, as ``kserve`` 0.21's ``InferRequest.to_rest()`` writes them, are
replayed byte for byte with httpx, and the replies are read the way its ``InferResponse`` reads
them.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.http as triton
import tritonclient.http.aio as triton_aio
from tritonclient.utils import InferenceServerException

from loopml.serve import ServeSettings, create_app

from .conftest import LiveServer
from .graphs import flags_onnx, zipmap_classifier_onnx


@pytest.fixture(scope="module")
def server(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """linear (FP64), forest (FP32 x 20), churn (FP64 + BYTES in, BYTES + FP64 out), flags
    (BOOL + INT64) and clf (a ZipMap classifier), in one real uvicorn server."""
    home = tmp_path_factory.mktemp("v2-clients")
    (home / "flags.onnx").write_bytes(flags_onnx())
    (home / "clf.onnx").write_bytes(zipmap_classifier_onnx())
    files = {name: str(models[name]) for name in ("linear", "forest", "churn")}
    files |= {"flags": str(home / "flags.onnx"), "clf": str(home / "clf.onnx")}
    settings = ServeSettings(
        model_files=files, log_dir=str(home / "logs"), state_dir=str(home / "state")
    )
    with LiveServer(create_app(settings, home=home)) as live:
        yield live


@pytest.fixture
def client(server: Any) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    yield client
    client.close()


def _input(name: str, array: np.ndarray, datatype: str, binary: bool) -> triton.InferInput:
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


FOREST_ROWS = np.random.default_rng(1).normal(size=(3, 20)).astype(np.float32)

# model, inputs (name, array, datatype), the output checked and its expected datatype and values
CASES = {
    "FP64": ("linear", [("x", np.array([[1.0], [2.0], [3.0]]), "FP64")], "variable", "FP64"),
    "FP32": ("forest", [("X", FOREST_ROWS, "FP32")], "variable", "FP32"),
    "BYTES": (
        "churn",
        [
            ("age", np.array([[60.0], [20.0]]), "FP64"),
            ("plan", np.array([["pro"], ["basic"]], dtype=object), "BYTES"),
        ],
        "label",
        "BYTES",
    ),
    "BOOL+INT64": (
        "flags",
        [
            ("flag", np.array([[True], [False]]), "BOOL"),
            ("count", np.array([[3], [-4]], dtype=np.int64), "INT64"),
        ],
        "not_flag",
        "BOOL",
    ),
}


def _expected(server: Any, case: str) -> np.ndarray:
    """The answer in plain JSON over httpx: what every other form must reproduce."""
    model, inputs, output, _ = CASES[case]
    body = {
        "inputs": [
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": datatype,
                "data": array.ravel().tolist(),
            }
            for name, array, datatype in inputs
        ]
    }
    reply = httpx.post(f"{server.url}/v2/models/{model}/infer", json=body).json()
    [tensor] = [t for t in reply["outputs"] if t["name"] == output]
    return np.array(tensor["data"], dtype=object).reshape(tensor["shape"])


def test_health_and_metadata_read_as_triton_expects(client: Any) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("churn")
    assert client.is_model_ready("churn", model_version="1")
    assert not client.is_model_ready("nope")
    assert not client.is_model_ready("churn", model_version="7")
    server = client.get_server_metadata()
    assert server["name"] == "loopml"
    assert "binary_tensor_data" in server["extensions"]
    meta = client.get_model_metadata("churn", model_version="1")
    assert meta["name"] == "churn"
    assert meta["versions"] == ["1"]
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        ("age", "FP64", [-1, 1]),
        ("plan", "BYTES", [-1, 1]),
    ]
    assert client.get_model_metadata("flags")["inputs"][0]["datatype"] == "BOOL"


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("binary_in", [False, True], ids=["json-in", "binary-in"])
@pytest.mark.parametrize("binary_out", [False, True], ids=["json-out", "binary-out"])
def test_every_datatype_travels_as_json_or_binary_both_ways(
    server: Any, client: Any, case: str, binary_in: bool, binary_out: bool
) -> None:
    model, inputs, output, datatype = CASES[case]
    result = client.infer(
        model,
        [_input(name, array, dt, binary_in) for name, array, dt in inputs],
        outputs=[triton.InferRequestedOutput(output, binary_data=binary_out)],
        request_id=f"{case}-{binary_in}-{binary_out}",
    )
    reply = result.get_response()
    assert reply["id"] == f"{case}-{binary_in}-{binary_out}"
    assert reply["model_name"] == model
    assert reply["model_version"] == "1"
    [tensor] = reply["outputs"]
    assert tensor["datatype"] == datatype
    assert ("parameters" in tensor) is binary_out  # binary_data_size, and no "data"
    got = result.as_numpy(output)
    want = _expected(server, case)
    assert got.shape == want.shape
    if datatype == "BYTES":
        # Triton hands BYTES back as bytes from binary and as str from JSON.
        decoded = [v.decode() if isinstance(v, bytes) else v for v in got.ravel().tolist()]
        assert decoded == want.ravel().tolist() == ["churn", "stay"]
    else:
        assert got.ravel().tolist() == pytest.approx(want.ravel().tolist())
    if case == "BOOL+INT64":
        assert got.ravel().tolist() == [False, True]
    if case == "FP64":
        assert got.ravel().tolist() == pytest.approx([2.0, 4.0, 6.0])


def test_without_an_outputs_list_every_output_comes_back_binary(client: Any) -> None:
    # tritonclient then sets parameters.binary_data_output = true.
    result = client.infer(
        "churn",
        [
            _input("age", np.array([[60.0]]), "FP64", True),
            _input("plan", np.array([["pro"]], dtype=object), "BYTES", True),
        ],
    )
    names = [t["name"] for t in result.get_response()["outputs"]]
    assert names == ["label", "probabilities"]
    assert all("binary_data_size" in t["parameters"] for t in result.get_response()["outputs"])
    assert result.as_numpy("label").tolist() == [b"churn"]
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (1, 2)
    assert probabilities.sum() == pytest.approx(1.0)


def test_outputs_are_selected_by_name(client: Any) -> None:
    inputs = [
        _input("flag", np.array([[True]]), "BOOL", False),
        _input("count", np.array([[21]], dtype=np.int64), "INT64", False),
    ]
    result = client.infer(
        "flags", inputs, outputs=[triton.InferRequestedOutput("double", binary_data=False)]
    )
    assert [t["name"] for t in result.get_response()["outputs"]] == ["double"]
    assert result.as_numpy("double").tolist() == [[42]]
    assert result.as_numpy("not_flag") is None


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests_and_replies_work(client: Any, algorithm: str) -> None:
    inputs = [_input("X", FOREST_ROWS, "FP32", True)]
    plain = client.infer("forest", inputs).as_numpy("variable")
    squeezed = client.infer(
        "forest",
        inputs,
        request_compression_algorithm=algorithm,
        response_compression_algorithm=algorithm,
    ).as_numpy("variable")
    assert squeezed.tolist() == plain.tolist()


def test_a_zipmap_classifiers_probabilities_come_back_as_a_matrix(client: Any) -> None:
    rows = np.array([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]], dtype=np.float32)
    for binary in (False, True):
        result = client.infer(
            "clf",
            [_input("X", rows, "FP32", binary)],
            outputs=[
                triton.InferRequestedOutput(name, binary_data=binary)
                for name in ("output_label", "output_probability")
            ],
        )
        assert result.as_numpy("output_label").tolist() == [1, 0]
        probabilities = result.as_numpy("output_probability")
        assert probabilities.dtype == np.float32
        assert probabilities.shape == (2, 2)
        assert probabilities.sum(axis=1).tolist() == pytest.approx([1.0, 1.0])
        assert probabilities[0, 1] > 0.5 > probabilities[1, 1]


@pytest.mark.parametrize(
    ("model", "version", "inputs", "status", "message"),
    [
        (
            "linear",
            "",
            [("x", np.array([[1.0]], dtype=np.float32), "FP32")],
            None,
            None,
        ),
        (
            "flags",
            "",
            [
                ("flag", np.array([[1.0]], dtype=np.float32), "FP32"),
                ("count", np.array([[1]], dtype=np.int64), "INT64"),
            ],
            "400",
            "'flag' has datatype FP32; the model expects BOOL",
        ),
        (
            "linear",
            "",
            [("y", np.array([[1.0]]), "FP64")],
            "400",
            r"missing \['x'\]; unexpected \['y'\]",
        ),
        (
            "forest",
            "",
            [("X", np.zeros((1, 3), dtype=np.float32), "FP32")],
            "400",
            r"shape \[1, 3\]; the model expects \[-1, 20\]",
        ),
        ("nope", "", [("x", np.array([[1.0]]), "FP64")], "404", "model 'nope' is not served"),
        ("linear", "7", [("x", np.array([[1.0]]), "FP64")], "404", "version '7' is not loaded"),
    ],
    ids=["fp32-into-fp64-is-cast", "bool-wanted", "unknown-input", "wrong-width", "model", "ver"],
)
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_errors_reach_the_client_as_a_status_and_the_servers_message(
    client: Any,
    model: str,
    version: str,
    inputs: list[Any],
    status: str | None,
    message: str | None,
    binary: bool,
) -> None:
    tensors = [_input(name, array, dt, binary) for name, array, dt in inputs]
    if status is None:  # FP32 for an FP64 input is a lossless cast: accepted
        assert client.infer(model, tensors).as_numpy("variable").tolist() == [[pytest.approx(2)]]
        return
    with pytest.raises(InferenceServerException, match=message) as caught:
        client.infer(model, tensors, model_version=version)
    assert caught.value.status() == status


def test_the_asyncio_client_works_too(server: Any) -> None:
    async def run() -> tuple[bool, Any]:
        client = triton_aio.InferenceServerClient(f"127.0.0.1:{server.port}")
        try:
            ready = await client.is_model_ready("linear")
            tensor = triton_aio.InferInput("x", [2, 1], "FP64")
            tensor.set_data_from_numpy(np.array([[1.0], [2.0]]))
            result = await client.infer("linear", [tensor], request_id="aio")
            return ready, result
        finally:
            await client.close()

    ready, result = asyncio.run(run())
    assert ready
    assert result.get_response()["id"] == "aio"
    assert result.as_numpy("variable").ravel().tolist() == pytest.approx([2.0, 4.0])


# ---- KServe's InferenceRESTClient, replayed -----------------------------------------------

# kserve 0.21.0: InferRequest("churn", [age, plan], request_id="kserve-1",
# request_outputs=[RequestedOutput("label", parameters={"binary_data": binary})]).to_rest(),
# with age FP64 [[60.0], [20.0]] and plan BYTES [["pro"], ["basic"]]. JSON bodies are sent
# with content-type application/json; binary ones with application/octet-stream and
# Inference-Header-Content-Length (kserve/inference_client.py, InferenceRESTClient.infer).
KSERVE_JSON = {
    "id": "kserve-1",
    "model_name": "churn",
    "inputs": [
        {"name": "age", "shape": [2, 1], "datatype": "FP64", "data": [60.0, 20.0]},
        {"name": "plan", "shape": [2, 1], "datatype": "BYTES", "data": ["pro", "basic"]},
    ],
    "outputs": [{"name": "label", "parameters": {"binary_data": False}}],
}
KSERVE_BINARY = (
    b'{"id":"kserve-1","model_name":"churn","inputs":[{"name":"age","shape":[2,1],'
    b'"datatype":"FP64","parameters":{"binary_data_size":16}},{"name":"plan","shape":[2,1],'
    b'"datatype":"BYTES","parameters":{"binary_data_size":16}}],"outputs":[{"name":"label",'
    b'"parameters":{"binary_data":true}}]}'
    b"\x00\x00\x00\x00\x00\x00N@\x00\x00\x00\x00\x00\x004@"
    b"\x03\x00\x00\x00pro\x05\x00\x00\x00basic"
)


def _read_kserve_style(response: httpx.Response) -> dict[str, Any]:
    """InferResponse.from_bytes: the header length defaults to the whole body."""
    size = int(response.headers.get("inference-header-content-length", len(response.content)))
    document: dict[str, Any] = orjson.loads(response.content[:size])
    raw = response.content[size:]
    for tensor in document["outputs"]:
        length = (tensor.get("parameters") or {}).get("binary_data_size")
        if length is None:
            continue
        chunk, raw = raw[:length], raw[length:]
        assert tensor["datatype"] == "BYTES"
        values, at = [], 0
        while at < len(chunk):
            (n,) = struct.unpack_from("<I", chunk, at)
            values.append(chunk[at + 4 : at + 4 + n].decode())
            at += 4 + n
        tensor["data"] = values
    return document


def test_kserve_rest_client_requests_are_understood(server: Any) -> None:
    url = f"{server.url}/v2/models/churn/infer"
    as_json = httpx.post(
        url, content=orjson.dumps(KSERVE_JSON), headers={"content-type": "application/json"}
    )
    header_length = KSERVE_BINARY.index(b"}]}") + 3
    as_binary = httpx.post(
        url,
        content=KSERVE_BINARY,
        headers={
            "inference-header-content-length": str(header_length),
            "content-type": "application/octet-stream",
        },
    )
    for response in (as_json, as_binary):
        assert response.status_code == 200, response.text
        document = _read_kserve_style(response)
        assert document["id"] == "kserve-1"
        assert document["model_name"] == "churn"
        [label] = document["outputs"]
        assert (label["name"], label["datatype"], label["shape"]) == ("label", "BYTES", [2])
        assert label["data"] == ["churn", "stay"]
    assert "inference-header-content-length" in as_binary.headers
    assert "inference-header-content-length" not in as_json.headers
