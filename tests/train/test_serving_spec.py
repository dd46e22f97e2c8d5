"""The serving section of loopml.yaml: typed, strict, with defaults that serve @champion."""

from __future__ import annotations

import pytest

from loopml.errors import ConfigError
from loopml.train.project import parse_project, project_schema

BASE = """\
name: demo
data:
  source: {type: file, path: data.csv}
target: y
task: regression
"""


def test_a_project_without_a_serving_section_serves_its_champion_on_localhost() -> None:
    serving = parse_project(BASE).serving
    assert serving.references("demo") == ["demo@champion"]
    assert (serving.host, serving.port, serving.workers) == ("127.0.0.1", 8000, 1)
    assert serving.batching.enabled
    assert serving.prediction_log.enabled
    assert serving.max_body_bytes == 10 * 2**20
    assert serving.traffic_specs("demo") == {}


def test_a_full_serving_section_is_read_with_the_projects_model_filled_in() -> None:
    spec = parse_project(
        BASE
        + """\
model: {name: churn}
serving:
  name: churn-api
  models: ["@champion", "@challenger", "fraud:3"]
  traffic: {champion: 90, challenger: 10}
  batching: {max_rows: 64, max_wait_ms: 0.5}
  max_body_size: 1MiB
  prediction_log: {folder: logs}
  host: 0.0.0.0
  port: 9000
  workers: 2
"""
    )
    serving = spec.serving
    assert serving.name == "churn-api"
    assert serving.references(spec.model_name) == ["churn@champion", "churn@challenger", "fraud:3"]
    assert serving.traffic_specs(spec.model_name) == {"churn": "champion=90,challenger=10"}
    assert (serving.batching.max_rows, serving.batching.max_wait_ms) == (64, 0.5)
    assert serving.max_body_bytes == 2**20
    assert serving.prediction_log.folder == "logs"
    assert (serving.host, serving.port, serving.workers) == ("0.0.0.0", 9000, 2)


def test_traffic_by_model_takes_text_or_weights_and_shadows() -> None:
    serving = parse_project(
        BASE
        + """\
serving:
  models: [churn@champion, churn@challenger, fraud@champion, fraud@candidate]
  traffic:
    churn: champion=50,challenger=50
    fraud: {weights: {champion: 100}, shadow: [candidate]}
"""
    ).serving
    assert serving.traffic_specs("demo") == {
        "churn": "champion=50,challenger=50",
        "fraud": "champion=100,candidate=shadow",
    }


def test_on_and_off_switches_can_be_written_as_booleans() -> None:
    serving = parse_project(BASE + "serving: {batching: false, prediction_log: false}\n").serving
    assert not serving.batching.enabled
    assert not serving.prediction_log.enabled


def test_an_unknown_serving_key_is_rejected_with_its_line_and_the_valid_keys() -> None:
    with pytest.raises(
        ConfigError,
        match=r"loopml.yaml:8: serving.replicas has value 3; is not a known key; "
        r"valid keys: name, models, traffic",
    ):
        parse_project(BASE + "serving:\n  port: 9000\n  replicas: 3\n")


def test_an_unknown_batching_key_is_rejected_too() -> None:
    with pytest.raises(ConfigError, match=r"serving.batching.max_rowz .*valid keys: enabled"):
        parse_project(BASE + "serving: {batching: {max_rowz: 3}}\n")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("{port: 70000}", r"serving.port has value 70000; Input should be less than or equal"),
        ("{workers: 0}", r"serving.workers has value 0; Input should be greater than or equal"),
        ("{max_body_size: ten}", r"serving.max_body_size has value 'ten'; expected a size such"),
        ("{models: ['@latest!']}", r"serving.models .*alias 'latest!' is not valid"),
        ("{models: []}", r"serving.models .*at least 1 item"),
        ("{name: 'a/b'}", r"serving.name has value 'a/b'"),
        ("{traffic: {churn: 90, fraud: x=1}}", r"serving.traffic.churn"),
    ],
)
def test_bad_serving_values_name_the_key_and_the_expectation(section: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_project(BASE + f"serving: {section}\n")


def test_the_schema_describes_the_serving_section() -> None:
    schema = project_schema()
    serving = schema["$defs"]["ServingSpec"]
    assert {"name", "models", "traffic", "batching", "max_body_size", "prediction_log"} <= set(
        serving["properties"]
    )
    assert {"host", "port", "workers"} <= set(serving["properties"])
    assert serving["additionalProperties"] is False
