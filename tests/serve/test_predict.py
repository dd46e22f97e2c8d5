"""``POST /predict``: the article's request, every accepted form, and errors naming the field."""

from __future__ import annotations

import re
from typing import Any

import pytest


@pytest.fixture
def client(make_client: Any) -> Any:
    return make_client("linear", "forest", "churn")


def test_the_articles_request_gets_the_articles_answer(client: Any) -> None:
    response = client.post("/predict", json={"instances": [[1.0], [2.0], [3.0]]})
    assert response.status_code == 200
    body = response.json()
    assert body["predictions"] == pytest.approx([2.0, 4.0, 6.0])
    assert body["model"] == "linear"
    assert body["version"] == 1
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    "payload",
    [
        {"instances": [[1.0], [2.0]]},
        {"instances": [1.0, 2.0]},
        {"instances": [{"x": 1.0}, {"x": 2.0}]},
        {"inputs": {"x": [1.0, 2.0]}},
        {"inputs": [[1.0], [2.0]]},
        {"instances": [[1], [2]]},
    ],
)
def test_rows_records_and_columns_all_reach_the_model(client: Any, payload: Any) -> None:
    response = client.post("/predict", json=payload)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pytest.approx([2.0, 4.0])


def test_several_models_are_reached_by_name(client: Any) -> None:
    forest = client.post("/models/forest/predict", json={"instances": [[0.1] * 20]})
    assert forest.status_code == 200
    assert forest.json()["model"] == "forest"
    churn = client.post(
        "/models/churn/predict",
        json={"instances": [{"age": 60.0, "plan": "pro"}, {"age": 20.0, "plan": "basic"}]},
    )
    assert churn.status_code == 200, churn.text
    assert churn.json()["predictions"] == ["churn", "stay"]


def test_a_client_request_id_is_kept(client: Any) -> None:
    response = client.post(
        "/predict", json={"instances": [[1.0]]}, headers={"X-Request-ID": "order-17"}
    )
    assert response.json()["request_id"] == "order-17"


BAD = [
    (b"{not json", "application/json", 400, "not valid JSON"),
    (b"", "application/json", 400, "request body is empty"),
    (b'{"instances": [[NaN]]}', "application/json", 400, "NaN or Infinity"),
    (b"[[1.0]]", "application/json", 400, "must be a JSON object"),
    (b'{"rows": [[1.0]]}', "application/json", 400, "neither 'instances' nor 'inputs'"),
    (b'{"instances": [[1.0]], "inputs": {}}', "application/json", 400, "both"),
    (
        b'{"instances": [[1.0]], "extra": 1}',
        "application/json",
        400,
        r"unexpected field\(s\) \['extra'\]",
    ),
    (b'{"instances": []}', "application/json", 400, "empty batch: instances has no rows"),
    (
        b'{"instances": [["abc"]]}',
        "application/json",
        400,
        r"instances\[0\]\[0\] \(column 'x'\) is 'abc'; expected a number \(float64\)",
    ),
    (
        b'{"instances": [[true]]}',
        "application/json",
        400,
        r"instances\[0\]\[0\] \(column 'x'\) is True",
    ),
    (
        b'{"instances": [[1.0, 2.0]]}',
        "application/json",
        400,
        r"instances\[0\] must be a list of 1 values \(x\)",
    ),
    (b'{"instances": [[1.0], [2.0, 3.0]]}', "application/json", 400, r"instances\[1\]"),
    (b'{"instances": [[null]]}', "application/json", 400, "missing or non-finite value"),
    (
        # 40 rows are parsed by NumPy at once, which would read true as 1.0: still refused.
        b'{"instances": [' + b"[0.5], " * 39 + b"[true]]}",
        "application/json",
        400,
        r"instances\[39\]\[0\] \(column 'x'\) is True; expected a number \(float64\)",
    ),
    (
        b'{"instances": [' + b"[0.5], " * 39 + b'["0.5"]]}',
        "application/json",
        400,
        r"instances\[39\]\[0\] \(column 'x'\) is '0.5'",
    ),
    (
        b'{"instances": [[[1.0]]]}',
        "application/json",
        400,
        r"instances\[0\]\[0\] \(column 'x'\) is a list of 1; expected one scalar",
    ),
    (
        b'{"inputs": {"y": [1.0]}}',
        "application/json",
        400,
        r"missing column\(s\) \['x'\] and unexpected column\(s\) \['y'\]",
    ),
    (
        b'{"inputs": {"x": [1.0], "z": [2.0]}}',
        "application/json",
        400,
        r"unexpected column\(s\) \['z'\]",
    ),
    (b'{"inputs": {"x": []}}', "application/json", 400, "empty batch"),
    (b'{"inputs": 3}', "application/json", 400, "'inputs' must be an object"),
    (b'{"instances": [[1.0]]}', "text/plain", 415, "Content-Type 'text/plain' is not supported"),
    (
        b'{"instances": [[1.0]]}',
        "application/x-www-form-urlencoded",
        415,
        "expected application/json",
    ),
    (b'{"instances": [[1.0]]}', "application/json; charset=latin-1", 415, "charset"),
]


@pytest.mark.parametrize(("body", "content_type", "status", "message"), BAD)
def test_bad_input_is_a_4xx_json_error_naming_the_problem(
    client: Any, body: bytes, content_type: str, status: int, message: str
) -> None:
    response = client.post("/predict", content=body, headers={"content-type": content_type})
    assert response.status_code == status, response.text
    document = response.json()
    assert document["code"]
    assert re.search(message, document["error"]), document["error"]


def test_wrong_types_in_a_string_column_name_the_column(client: Any) -> None:
    response = client.post("/models/churn/predict", json={"instances": [{"age": 30.0, "plan": 7}]})
    assert response.status_code == 400
    assert "'plan'" in response.json()["error"]
    assert "expected a string" in response.json()["error"]


def test_an_unknown_model_is_404_listing_the_served_ones(client: Any) -> None:
    response = client.post("/models/nope/predict", json={"instances": [[1.0]]})
    assert response.status_code == 404
    assert response.json()["error"] == "model 'nope' is not served here"
    assert "linear, forest, churn" in response.json()["hint"]


def test_a_body_over_the_limit_is_413(make_client: Any) -> None:
    client = make_client("linear", max_body_bytes=1000)
    big = {"instances": [[1.0]] * 500}
    response = client.post("/predict", json=big)
    assert response.status_code == 413
    assert "at most 1000 bytes" in response.json()["error"]
    assert client.post("/predict", json={"instances": [[1.0]]}).status_code == 200


def test_get_on_an_inference_route_is_405(client: Any) -> None:
    response = client.get("/predict")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_an_unknown_path_is_a_json_404(client: Any) -> None:
    response = client.get("/nothing/here")
    assert response.status_code == 404
    assert response.json()["error"] == "Not Found: GET /nothing/here"
