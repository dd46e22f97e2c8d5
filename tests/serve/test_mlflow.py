"""MLflow's ``/invocations``: the four JSON forms, CSV with or without a header, MLflow 1.x's
content types, and MLflow's 415 and 400 rules."""

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
        "application/json; format=tf-serving",
        "application/json; orient=split",
        "text/csv; charset=latin-1",
        "text/csv; header=maybe",
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


def test_params_must_be_an_object(client: Any) -> None:
    response = client.post(
        "/invocations", json={"inputs": {"age": [60.0], "plan": ["pro"]}, "params": [1]}
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("params must be an object")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (
            "application/json; format=pandas-split",
            b'{"columns": ["age", "plan"], "data": [[60.0, "pro"], [20.0, "basic"]]}',
        ),
        (
            "application/json; format=pandas-split",
            b'{"index": [7, 8], "columns": ["plan", "age"], "data": [["pro", 60], ["basic", 20]]}',
        ),
        (
            "application/json; format=pandas-records",
            b'[{"age": 60.0, "plan": "pro"}, {"age": 20.0, "plan": "basic"}]',
        ),
        (
            "application/json-numpy-split",
            b'{"columns": ["age", "plan"], "data": [[60.0, "pro"], [20.0, "basic"]]}',
        ),
    ],
)
def test_mlflow_1_clients_get_their_bare_list_back(
    client: Any, content_type: str, body: bytes
) -> None:
    response = client.post("/invocations", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    assert response.json() == ["churn", "stay"]


def test_an_mlflow_2_body_under_a_1x_content_type_says_which_header_to_send(client: Any) -> None:
    response = client.post(
        "/invocations",
        content=b'{"dataframe_records": [{"age": 60.0, "plan": "pro"}]}',
        headers={"content-type": "application/json; format=pandas-records"},
    )
    assert response.status_code == 400
    assert "MLflow 2's format" in response.json()["message"]
    assert "Content-Type: application/json" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"age,plan\n60,pro\n20,basic\n", "text/csv"),
        (b"plan,age\r\npro,60\r\nbasic,20\r\n", "text/csv"),
        (b"\xef\xbb\xbfage,plan\n60,pro\n20,basic\n", "text/csv"),  # a spreadsheet's BOM
        (b"60,pro\n20,basic\n", "text/csv"),  # no header: the first line reads as values
        (b"60,pro\n20,basic\n", "text/csv; header=absent"),
        (b"age,plan\n60,pro\n20,basic\n", "text/csv; header=present"),
        (b'age,plan\n"60",pro\n\n20,"basic"\n', "text/csv; charset=utf-8"),
    ],
)
def test_csv_with_or_without_a_header_is_understood(
    client: Any, body: bytes, content_type: str
) -> None:
    response = client.post("/invocations", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": ["churn", "stay"]}


def test_headerless_csv_reaches_single_column_and_unnamed_tensor_models(make_client: Any) -> None:
    linear = make_client("linear")
    for body in (b"1\n2\n3\n", b"x\n1\n2\n3\n"):
        response = linear.post("/invocations", content=body, headers={"content-type": "text/csv"})
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == pytest.approx([2.0, 4.0, 6.0])
    forest = make_client("forest")
    row = ",".join(["0.5"] * 20)
    pandas_header = ",".join(str(j) for j in range(20))  # what df.to_csv() writes
    answers = []
    for body in (f"{row}\n{row}\n", f"{pandas_header}\n{row}\n{row}\n"):
        response = forest.post(
            "/invocations", content=body.encode(), headers={"content-type": "text/csv"}
        )
        assert response.status_code == 200, response.text
        answers.append(response.json()["predictions"])
    assert len(answers[0]) == 2
    assert answers[0] == answers[1]


CSV_BAD = [
    (b"age,plan\nabc,pro\n", "CSV line 2 column 'age' is 'abc'; expected a number"),
    (b"age,plan\n60,pro\n20\n", "CSV line 3 has 1 fields; line 1 has 2"),
    (b"age,age\n60,61\n", "CSV header names column 'age' twice"),
    (
        b"age,tier\n60,pro\n",
        r"missing column\(s\) \['plan'\] and unexpected column\(s\) \['tier'\]",
    ),
    # A first line of values that do not fit is a header with unknown names, not data.
    (b"sixty,pro\n60,pro\n", r"unexpected column\(s\) \['pro', 'sixty'\]"),
    (b"age,plan\n", "empty batch"),
    (b"", "CSV body is empty"),
    (b"\xff\xfe", "CSV body is not UTF-8"),
]


@pytest.mark.parametrize(("body", "message"), CSV_BAD)
def test_bad_csv_names_the_line_and_column(client: Any, body: bytes, message: str) -> None:
    response = client.post("/invocations", content=body, headers={"content-type": "text/csv"})
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "BAD_REQUEST"
    assert re.search(message, response.json()["message"]), response.json()["message"]


def test_mlflow_health_and_version_endpoints_answer(client: Any) -> None:
    assert client.get("/ping").status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/version").text
