"""Fuzzing: nothing a client sends may produce a 500 (schemathesis on the OpenAPI, hypothesis)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from loopml.serve import ServeSettings, create_app

from .conftest import TestClient


@pytest.fixture(scope="module")
def fuzz_client(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        ServeSettings(
            model_files={name: str(models[name]) for name in ("linear", "churn", "forest")},
            log_dir=str(home / "logs"),
            state_dir=str(home / "state"),
        ),
        home=home,
    )
    with TestClient(app) as client:
        yield client


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
keys = st.sampled_from(
    [
        "instances",
        "inputs",
        "dataframe_split",
        "dataframe_records",
        "columns",
        "data",
        "x",
        "age",
        "plan",
        "name",
        "shape",
        "datatype",
        "id",
        "outputs",
        "parameters",
        "request_id",
        "label",
        "row",
        "feedback",
        "weights",
        "shadow",
    ]
)
documents = st.recursive(
    json_values,
    lambda children: st.dictionaries(keys, children, max_size=4) | st.lists(children, max_size=4),
    max_leaves=16,
)
paths = st.sampled_from(
    [
        "/predict",
        "/models/churn/predict",
        "/models/forest/predict",
        "/invocations",
        "/v2/models/linear/infer",
        "/v2/models/churn/versions/1/infer",
        "/feedback",
        "/admin/traffic/linear",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=paths, document=documents)
def test_random_json_never_gets_a_500(fuzz_client: Any, path: str, document: Any) -> None:
    response = fuzz_client.post(
        path, content=json.dumps(document).encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code < 500, response.text
    assert isinstance(response.json(), dict)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    path=paths,
    body=st.binary(max_size=64),
    content_type=st.sampled_from(["application/json", "text/csv", "", "application/octet-stream"]),
)
def test_random_bytes_never_get_a_500(
    fuzz_client: Any, path: str, body: bytes, content_type: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = fuzz_client.post(path, content=body, headers=headers)
    assert response.status_code < 500, response.text


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    rows=st.lists(
        st.lists(st.one_of(st.floats(), st.integers(), st.text(max_size=3), st.none()), max_size=3),
        max_size=3,
    ),
    shape=st.lists(st.integers(min_value=0, max_value=4), max_size=3) | json_values,
    datatype=st.sampled_from(["FP32", "FP64", "INT64", "BYTES", "BOOL", "UINT8"]) | json_values,
    name=st.sampled_from(["x", "X", "age"]) | json_values,
    parameters=st.none()
    | st.fixed_dictionaries({}, optional={"binary_data_size": json_values})
    | json_values,
    outputs=st.none()
    | st.lists(
        st.fixed_dictionaries(
            {"name": st.sampled_from(["variable", "label", "nope"])},
            optional={"parameters": st.dictionaries(keys, json_values, max_size=2)},
        ),
        max_size=2,
    ),
)
def test_random_v2_tensors_never_get_a_500(
    fuzz_client: Any,
    rows: Any,
    shape: Any,
    datatype: Any,
    name: Any,
    parameters: Any,
    outputs: Any,
) -> None:
    tensor = {"name": name, "shape": shape, "datatype": datatype, "data": rows}
    if parameters is not None:
        tensor["parameters"] = parameters
    body: dict[str, Any] = {"inputs": [tensor]}
    if outputs is not None:
        body["outputs"] = outputs
    for model in ("linear", "forest", "churn"):
        response = fuzz_client.post(
            f"/v2/models/{model}/infer",
            content=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        assert response.status_code < 500, response.text
        assert "error" in response.json() or response.status_code == 200


# What the server's answers must satisfy against its own OpenAPI document. Left out:
# positive_data_acceptance (a schema shared by every model cannot say which columns a given
# model takes, so schema-valid bodies are often, rightly, 400) and the method checks.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_server_keeps_to_its_openapi_spec_under_schemathesis(
    fuzz_client: Any, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_dict(fuzz_client.get("/openapi.json").json())
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:

        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            if mode is GenerationMode.NEGATIVE and case.media_type != "application/json":
                return  # a CSV or binary body has no schema to violate: any text is one
            kwargs = case.as_transport_kwargs(base_url="http://testserver")
            body: dict[str, Any] = {}
            if "json" in kwargs:
                body["content"] = json.dumps(kwargs["json"]).encode()
            elif kwargs.get("data") is not None:
                data = kwargs["data"]
                body["content"] = data.encode() if isinstance(data, str) else data
            response = fuzz_client.request(
                kwargs["method"],
                kwargs["url"],
                headers=kwargs.get("headers"),
                params=kwargs.get("params"),
                **body,
            )
            try:
                case.validate_response(response, checks=CHECKS)
            except AssertionError as exc:  # schemathesis's FailureGroup
                failures.append(
                    f"{case.method} {case.formatted_path} {body.get('content', b'')[:200]!r} "
                    f"-> {response.status_code} {response.text[:200]}: {str(exc)[:300]}"
                )

        try:
            check()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # a GET with nothing to get wrong
    assert not failures, "\n".join(failures[:5])
