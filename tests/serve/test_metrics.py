"""``/metrics`` in Prometheus format, and the OpenAPI description behind ``/docs``."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families


def _samples(client: Any) -> dict[str, list[Any]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def test_requests_latency_batches_and_predictions_are_measured(make_client: Any) -> None:
    client = make_client("linear", "churn")
    for _ in range(3):
        client.post("/predict", json={"instances": [[1.0], [2.0]]})
    client.post("/predict", json={"instances": [["abc"]]})
    client.post(
        "/v2/models/churn/infer",
        json={
            "inputs": [
                {"name": "age", "shape": [1, 1], "datatype": "FP64", "data": [60.0]},
                {"name": "plan", "shape": [1, 1], "datatype": "BYTES", "data": ["pro"]},
            ]
        },
    )
    client.app.state.log.flush()  # the writer thread feeds the prediction summaries
    samples = _samples(client)

    def value(name: str, **labels: str) -> float:
        matches = [
            s.value for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items())
        ]
        assert matches, (name, labels)
        return float(sum(matches))

    assert (
        value("loopml_requests_total", model="linear", version="1", route="predict", status="200")
        == 3
    )
    assert value("loopml_requests_total", model="linear", route="predict", status="400") == 1
    assert value("loopml_requests_total", model="churn", route="v2", status="200") == 1
    assert value("loopml_request_seconds_count", model="linear", route="predict") == 4
    assert value("loopml_batch_requests_count", model="linear", version="1") == 3
    assert value("loopml_batch_rows_sum", model="linear", version="1") == 6
    assert value("loopml_inference_seconds_count", model="churn", version="1") == 1
    assert "loopml_in_flight_requests" in samples
    assert value("loopml_model_load_seconds", model="churn", version="1") > 0
    assert value("loopml_model_info", model="linear", version="1", target="1") == 1
    assert value("loopml_predictions_total", model="linear", version="1") == 6
    assert value("loopml_prediction_value_count", model="linear", version="1") == 6
    assert abs(value("loopml_prediction_value_sum", model="linear", version="1") - 18.0) < 1e-6
    assert (
        value("loopml_prediction_class_total", model="churn", version="1", **{"class": "churn"})
        == 1
    )


def test_docs_and_openapi_describe_every_endpoint(make_client: Any) -> None:
    client = make_client("linear")
    assert "swagger-ui" in client.get("/docs").text
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in (
        "/predict",
        "/models/{name}/predict",
        "/invocations",
        "/feedback",
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}",
        "/v2/models/{name}/versions/{version}/infer",
        "/metrics",
        "/admin/traffic/{name}",
    ):
        assert path in spec["paths"], path
    assert spec["paths"]["/models/{name}/predict"]["post"]["parameters"][0]["schema"]["enum"] == [
        "linear"
    ]
