"""``loopml serve`` reads the project's serving section; flags override it; ``serve list``.

Starting uvicorn is replaced by a recorder of the settings it would have been given: these
tests are about where each setting comes from (serving itself is tested in tests/serve).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loopml.cli.main import main
from loopml.config import Settings

PROJECT = """\
name: quickstart
data:
  source: {type: file, path: data.csv}
target: y
task: regression
serving:
  name: quickstart-api
  models: ["@champion", "@challenger"]
  traffic: {champion: 90, challenger: 10}
  batching: {enabled: false, max_rows: 64, max_wait_ms: 0.5}
  max_body_size: 1MiB
  prediction_log: {folder: predictions}
  reload_interval_s: 0.5
  host: 0.0.0.0
  port: 9000
  workers: 3
"""


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What each ``loopml serve`` would have started uvicorn with."""
    calls: list[dict[str, Any]] = []

    def record(settings: Any, **server: Any) -> None:
        calls.append({"settings": settings, **server})

    monkeypatch.setattr("loopml.cli.serve.run_server", record)
    return calls


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "quickstart"
    folder.mkdir()
    (folder / "loopml.yaml").write_text(PROJECT, encoding="utf-8")
    return folder


def test_the_serving_section_decides_what_and_how_to_serve(
    loopml_home: Path, project: Path, started: list[dict[str, Any]]
) -> None:
    assert main(["serve", "--project", str(project)]) == 0
    (call,) = started
    settings = call["settings"]
    assert (call["host"], call["port"], call["workers"]) == ("0.0.0.0", 9000, 3)
    assert settings.models == ("quickstart@champion", "quickstart@challenger")
    assert settings.traffic == {"quickstart": "champion=90,challenger=10"}
    assert settings.batching is False
    assert (settings.batch_max_rows, settings.batch_max_wait_ms) == (64, 0.5)
    assert settings.max_body_bytes == 2**20
    assert settings.reload_interval_s == 0.5
    assert settings.log_dir == str(project / "predictions")
    assert settings.deployment == "quickstart-api"
    assert settings.launched_at_ms is not None


def test_flags_override_the_file(
    loopml_home: Path, project: Path, started: list[dict[str, Any]]
) -> None:
    args = ["serve", "--project", str(project), "--port", "9100", "--workers", "1"]
    args += ["--batching", "--batch-max-rows", "8", "--max-body-size", "2MiB"]
    args += ["--name", "canary", "--traffic", "quickstart=champion=50,challenger=50"]
    args += ["--no-log", "--log-dir", str(project / "elsewhere")]
    assert main(args) == 0
    (call,) = started
    settings = call["settings"]
    assert (call["host"], call["port"], call["workers"]) == ("0.0.0.0", 9100, 1)
    assert settings.batching is True
    assert settings.batch_max_rows == 8
    assert settings.batch_max_wait_ms == 0.5  # not given: still the file's
    assert settings.max_body_bytes == 2 * 2**20
    assert settings.deployment == "canary"
    assert settings.traffic == {"quickstart": "champion=50,challenger=50"}
    assert settings.log_predictions is False
    assert settings.log_dir == str(project / "elsewhere")


def test_a_model_flag_replaces_the_files_models_and_their_traffic(
    loopml_home: Path, project: Path, started: list[dict[str, Any]]
) -> None:
    assert main(["serve", "--project", str(project), "--model", "fraud@champion"]) == 0
    settings = started[0]["settings"]
    assert settings.models == ("fraud@champion",)
    assert settings.traffic == {}
    assert settings.batch_max_rows == 64  # how to serve still comes from the file


def test_the_current_folder_is_the_project_when_it_has_a_loopml_yaml(
    loopml_home: Path,
    project: Path,
    started: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(project)
    assert main(["serve"]) == 0
    assert started[0]["settings"].models == ("quickstart@champion", "quickstart@challenger")


def test_without_a_project_or_flags_the_defaults_apply_and_name_the_deployment_host_port(
    loopml_home: Path, started: list[dict[str, Any]]
) -> None:
    assert main(["serve", "--model", "churn@champion"]) == 0
    (call,) = started
    assert (call["host"], call["port"], call["workers"]) == ("127.0.0.1", 8000, 1)
    settings = call["settings"]
    assert settings.deployment == "127.0.0.1:8000"
    assert settings.batching is True
    assert settings.max_body_bytes == 10 * 2**20
    assert settings.log_dir == str((loopml_home / "serving" / "logs").absolute())


def test_a_project_without_a_serving_section_serves_its_champion(
    loopml_home: Path, tmp_path: Path, started: list[dict[str, Any]]
) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "loopml.yaml").write_text(PROJECT.split("serving:")[0], encoding="utf-8")
    assert main(["serve", "--project", str(folder)]) == 0
    assert started[0]["settings"].models == ("quickstart@champion",)


def test_an_unknown_serving_key_fails_with_its_line(
    loopml_home: Path, project: Path, started: list[dict[str, Any]], capsys: Any
) -> None:
    (project / "loopml.yaml").write_text(PROJECT + "  replicas: 2\n", encoding="utf-8")
    assert main(["serve", "--project", str(project)]) == 1
    err = capsys.readouterr().err
    assert "loopml.yaml:17: serving.replicas has value 2; is not a known key" in err
    assert started == []


def test_schema_includes_the_serving_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "workers" in schema["$defs"]["ServingSpec"]["properties"]


# --- loopml serve list ---------------------------------------------------------------------------


@pytest.fixture
def deployed(loopml_home: Path, tmp_path: Path) -> None:
    """Two deployments in the store: one running with a 90/10 split, one stopped."""
    from loopml import Client
    from loopml.registry import Deployments, ModelRegistry

    settings = Settings(home=loopml_home)
    client = Client(settings)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.onnx").write_bytes(b"onnx")
    run_id = client.create_run(None).info.run_id
    client.log_artifacts(run_id, tmp_path / "model", "model")
    client.close()
    registry = ModelRegistry.from_settings(settings)
    registry.register_version("churn", run_id, "model")
    registry.db.dispose()
    store = Deployments.from_settings(settings)
    split = {"weights": {"champion": 90.0, "challenger": 10.0}, "shadow": ["candidate"]}
    store.start(
        "127.0.0.1:8000",
        {"churn": ["churn@champion", "churn@challenger", "churn@candidate"]},
        {"churn": split},
        launched_at=1,
    )
    store.start("old", {"churn": ["churn:1"]}, launched_at=1)
    store.stop("old")
    store.db.dispose()


def test_serve_list_shows_deployments_with_their_traffic(
    deployed: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.cli.output import stdout

    monkeypatch.setattr(stdout, "width", 200)  # one table row per line, whatever the terminal
    assert main(["serve", "list"]) == 0
    out = capsys.readouterr().out
    assert "127.0.0.1:8000" in out
    assert "champion=90% challenger=10% candidate=shadow" in out
    assert "running" in out
    assert "1=100%" in out  # no policy: everything to the only target
    assert "stopped" in out


def test_serve_list_filters_and_prints_json(
    deployed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "list", "--status", "running", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "127.0.0.1:8000"
    assert row["model_name"] == "churn"
    assert row["targets"] == ["churn@champion", "churn@challenger", "churn@candidate"]
    assert row["traffic"]["weights"] == {"champion": 90.0, "challenger": 10.0}
    assert main(["serve", "list", "old", "--json"]) == 0
    assert [r["status"] for r in json.loads(capsys.readouterr().out)] == ["stopped"]


def test_serve_list_refuses_an_unknown_status(
    loopml_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "list", "--status", "paused"]) == 1
    assert "valid options: running, stopped" in capsys.readouterr().err


def test_an_object_store_log_url_is_passed_on_unmangled(tmp_path: Path) -> None:
    from loopml.cli.serve import _log_folder

    assert (
        _log_folder("s3://bucket/serving/logs", None, None, tmp_path) == "s3://bucket/serving/logs"
    )
    assert _log_folder("rel/logs", None, None, tmp_path) == str(Path("rel/logs").absolute())
