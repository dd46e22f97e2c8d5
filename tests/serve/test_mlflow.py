"""MLflow's ``/invocations``: the four JSON forms, CSV, and MLflow's 415 and 400 rules."""

from __future__ import annotations

import re
from typing import Any

import pytest


@pytest.fixture
def client(make_client: Any) -> Any:
    return make_client("churn", "linear")


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": ["age", "plan"], "data": [[60.0, "pro"], [20.0, "basic"]]}},
        {"dataframe_split": {"columns": ["plan", "age"], "data": [["pro", 60.0], ["basic", 20]]}},
        {
            "dataframe_split": {
                "index": [0, 1],
                "columns": ["age", "plan"],
                "data": [[60, "pro"], [20, "basic"]],
            }
        },
        {"dataframe_records": [{"age": 60.0, "plan": "pro"}, {"age": 20.0, "plan": "basic"}]},
        {"instances": [{"age": 60.0, "plan": "pro"}, {"age": 20.0, "plan": "basic"}]},
        {"instances": [[60.0, "pro"], [20.0, "basic"]]},
        {"inputs": {"age": [60.0, 20.0], "plan": ["pro", "basic"]}},
        {"inputs": {"age": [60.0, 20.0], "plan": ["pro", "basic"]}, "params": {"ignored": 1}},
    ],
)
def test_every_mlflow_json_form_is_understood(client: Any, payload: Any) -> None:
    response = client.post("/invocations", json=payload)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": ["churn", "stay"]}


def test_csv_with_a_header_row_is_understood(client: Any) -> None:
    response = client.post(
        "/invocations",
        content=b"age,plan\n60,pro\n20,basic\n",
        headers={"content-type": "text/csv; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": ["churn", "stay"]}


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/xml",
        "application/json; format=pandas-split",
        "text/csv; charset=latin-1",
    ],
)
def test_content_types_mlflow_refuses_are_415(client: Any, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/invocations", content=b"{}", headers=headers)
    assert response.status_code == 415
    assert response.json()["error_code"] == "BAD_REQUEST"
    assert "not supported" in response.json()["message"]


BAD = [
    (b"[1, 2]", "a top-level JSON list is not accepted"),
    (
        b'{"dataframe_split": {"columns": ["age"], "data": [[1]]}, "instances": []}',
        "exactly one of",
    ),
    (
        b'{"dataframe_split": {"columns": ["age", "plan"], "data": [[1, "pro", 3]]}}',
        r"dataframe_split.data\[0\] must be a list of 2 values",
    ),
    (
        b'{"dataframe_split": {"columns": ["age"], "data": [[1]]}}',
        r"missing column\(s\) \['plan'\]",
    ),
    (
        b'{"dataframe_records": [{"age": "abc", "plan": "pro"}]}',
        r"column 'age'.*'abc'; expected a number",
    ),
    (
        b'{"dataframe_records": [{"age": 1, "plan": "pro", "x": 2}]}',
        r"unexpected column\(s\) \['x'\]",
    ),
    (b'{"dataframe_records": []}', "empty batch"),
    (
        b'{"dataframe_split": {"rows": []}}',
        "dataframe_split must be an object with 'columns' and 'data'",
    ),
]


@pytest.mark.parametrize(("body", "message"), BAD)
def test_bad_bodies_are_400_in_mlflows_error_format(client: Any, body: bytes, message: str) -> None:
    response = client.post(
        "/invocations", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    document = response.json()
    assert document["error_code"] == "BAD_REQUEST"
    assert re.search(message, document["message"]), document["message"]


def test_bad_csv_names_the_row_and_column(client: Any) -> None:
    response = client.post(
        "/invocations", content=b"age,plan\nabc,pro\n", headers={"content-type": "text/csv"}
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("CSV row 1 column 'age' is 'abc'")


def test_mlflow_health_and_version_endpoints_answer(client: Any) -> None:
    assert client.get("/ping").status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/version").text
