"""loopml.yaml: validation errors name the key, the line, the bad value and the options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopml.errors import ConfigError, NotFoundError
from loopml.train.project import load_project, parse_project, project_schema

GOOD = """\
name: demo
data:
  source: {type: file, path: data.csv}
target: y
task: regression
candidates:
  - linear_regression
  - name: ridge
    space:
      alpha: {type: float, low: 0.01, high: 10, log: true}
gates: {r2: 0.5, rmse: 3}
"""


def test_a_valid_file_parses_with_defaults_filled_in() -> None:
    spec = parse_project(GOOD)
    assert spec.primary_metric == "rmse"
    assert spec.model_name == "demo"
    assert [c.name for c in spec.candidate_specs()] == ["linear_regression", "ridge"]
    assert spec.split.method == "kfold"
    assert spec.split.folds == 5


def test_bare_gate_numbers_are_floors_or_ceilings_by_the_metrics_direction() -> None:
    spec = parse_project(GOOD)
    assert spec.gates["r2"].min == 0.5
    assert spec.gates["r2"].max is None
    assert spec.gates["rmse"].max == 3
    assert spec.gates["rmse"].min is None


def test_a_bad_literal_names_key_line_value_and_options() -> None:
    text = GOOD.replace("task: regression", "task: regresion")
    with pytest.raises(
        ConfigError,
        match=r"loopml.yaml:5: task has value 'regresion'; valid options: 'regression', "
        r"'binary' or 'multiclass'",
    ):
        parse_project(text)


def test_an_unknown_candidate_names_its_line_and_the_valid_candidates() -> None:
    text = GOOD.replace("  - linear_regression", "  - linear_regresion")
    with pytest.raises(
        ConfigError,
        match=r"loopml.yaml:7: candidates\[0\].name has value 'linear_regresion'; "
        r"unknown candidate; valid options: linear_regression, ridge",
    ):
        parse_project(text)


def test_a_misspelt_key_lists_the_valid_keys_at_that_level() -> None:
    text = GOOD.replace("{type: file, path: data.csv}", "{type: file, pth: data.csv}")
    with pytest.raises(
        ConfigError,
        match=r"loopml.yaml:3: data.source.pth has value 'data.csv'; is not a "
        r"known key; valid keys: type, path, format",
    ):
        parse_project(text)


def test_every_problem_is_reported_at_once() -> None:
    text = GOOD.replace("task: regression", "task: regression\nsplit: {folds: 1}").replace(
        "low: 0.01, high: 10", "low: 10, high: 1"
    )
    with pytest.raises(ConfigError) as caught:
        parse_project(text)
    message = caught.value.message
    assert "has 2 problems" in message
    assert "loopml.yaml:6: split.folds has value 1; folds must be at least 2, or 'loo'" in message
    assert "loopml.yaml:11: candidates[1].space.alpha" in message
    assert "low (10.0) must not exceed high (1.0)" in message


def test_a_metric_of_another_task_lists_the_metrics_of_this_task() -> None:
    with pytest.raises(
        ConfigError,
        match=r"loopml.yaml:12: metric has value 'roc_auc'; valid options for regression: "
        r"mae, rmse, r2, mape",
    ):
        parse_project(GOOD + "metric: roc_auc\n")


def test_a_candidate_of_another_task_is_reported_on_its_line() -> None:
    text = GOOD.replace("  - linear_regression", "  - logistic_regression")
    with pytest.raises(
        ConfigError,
        match=r"loopml.yaml:7: candidates\[0\].name has value 'logistic_regression'; does not "
        r"handle task 'regression'",
    ):
        parse_project(text)


def test_a_time_split_without_its_column_is_rejected() -> None:
    with pytest.raises(
        ConfigError, match=r"split.method has value 'time'; needs split.time_column"
    ):
        parse_project(GOOD + "split: {method: time}\n")


def test_a_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(
        ConfigError,
        match=r"loopml.yaml:4: not valid YAML: .* \(while parsing a flow sequence started on "
        r"line 3\)",
    ):
        parse_project("name: x\ndata:\n  source: {type: file, path: [a.csv\ntarget: y\n")


def test_sections_of_later_stages_are_accepted_as_is() -> None:
    spec = parse_project(GOOD + "serving: {traffic: {champion: 90}}\nloop: {every: 1d}\n")
    assert spec.loop == {"every": "1d"}
    # serving is typed: a mapping of targets to weights is the project model's policy.
    assert spec.serving.traffic_specs(spec.model_name) == {"demo": "champion=90"}


def test_a_missing_project_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"no project file at .*loopml.yaml.*loopml init"):
        load_project(tmp_path)


def test_the_json_schema_describes_every_top_level_key() -> None:
    schema = project_schema()
    json.dumps(schema)  # serialisable
    assert {"name", "data", "target", "task", "split", "candidates", "metric", "gates"} <= set(
        schema["properties"]
    )
    assert schema["properties"]["task"]["enum"] == ["regression", "binary", "multiclass"]
    assert set(schema["required"]) == {"name", "data", "target", "task"}
