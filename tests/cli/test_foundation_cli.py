"""The foundation commands — db, experiments, runs, models — driven through the real entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loopml.cli.main import main
from loopml.config import Settings
from loopml.store.migrations import HEAD


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass(frozen=True)
class Seeded:
    good_run: str  # experiment "churn-exp", rmse 0.2, registered as churn v1 and v2
    bad_run: str  # experiment "churn-exp", rmse 0.9
    other_run: str  # experiment "other", no model


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    capsys.readouterr()  # drop anything printed while arranging the test
    code = main(list(args))
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def assert_one_line_error(result: Result, *fragments: str) -> None:
    """A user mistake: non-zero exit, 'error:' + 'hint:' on stderr, nothing on stdout."""
    assert result.code != 0
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["error", "hint"], result.err
    for fragment in fragments:
        assert fragment in result.err
    assert "Traceback" not in result.err


@pytest.fixture
def seeded(loopml_home: Path) -> Seeded:
    """Two experiments with three runs, and model 'churn' (v1, v2) with champion -> v1."""
    from loopml import Client
    from loopml.registry import ModelRegistry

    settings = Settings.from_env()
    client = Client(settings)
    try:
        churn = client.create_experiment("churn-exp", tags={"team": "risk"})
        other = client.create_experiment("other")
        runs = []
        for experiment, name, model, rmse in [
            (churn, "good", "rf", 0.2),
            (churn, "bad", "linear", 0.9),
            (other, "side", "rf", 0.5),
        ]:
            run_id = client.create_run(experiment, run_name=name).info.run_id
            client.log_batch(
                run_id,
                metrics=[("rmse", rmse + 0.1, 1, 0), ("rmse", rmse, 2, 1)],
                params={"model": model, "depth": 4},
                tags={"team": "risk"},
            )
            client.log_text(run_id, f"weights of {name}", "model/model.pkl")
            client.set_terminated(run_id)
            runs.append(run_id)
    finally:
        client.close()
    registry = ModelRegistry.from_settings(settings)
    try:
        registry.register_version("churn", runs[0], "model", metrics={"rmse": 0.2})
        registry.register_version("churn", runs[0], "model", metrics={"rmse": 0.19})
        registry.set_alias("churn", "champion", 1)
    finally:
        registry.db.dispose()
    return Seeded(good_run=runs[0], bad_run=runs[1], other_run=runs[2])


# --- db ------------------------------------------------------------------------------------------


def test_db_status_on_a_fresh_home_reports_an_empty_store_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], loopml_home: Path
) -> None:
    result = cli(capsys, "db", "status", "--json")

    assert result.code == 0, result.err
    status = result.json()
    assert status["revision"] is None
    assert status["head"] == HEAD
    assert status["state"] == "empty"
    assert status["tables"] == {}
    assert status["uri"] == f"sqlite:///{(loopml_home / 'loopml.db').absolute()}"
    assert not loopml_home.exists()

    table = cli(capsys, "db", "status")
    assert table.code == 0
    assert "(none)" in table.out
    assert HEAD in table.out


def test_db_upgrade_creates_the_schema_once_and_is_idempotent(
    capsys: pytest.CaptureFixture[str], loopml_home: Path
) -> None:
    first = cli(capsys, "db", "upgrade", "--json").json()
    second = cli(capsys, "db", "upgrade", "--json").json()
    status = cli(capsys, "db", "status", "--json").json()

    assert (first["before"], first["after"], first["changed"]) == (None, HEAD, True)
    assert (second["before"], second["after"], second["changed"]) == (HEAD, HEAD, False)
    assert status["state"] == "current"
    assert status["up_to_date"] is True
    assert status["tables"]["runs"] == 0
    assert {"experiments", "metrics", "model_versions", "audit_log"} <= set(status["tables"])
    assert f"already at revision {HEAD}" in cli(capsys, "db", "upgrade").out


def test_db_status_counts_rows_per_table(
    capsys: pytest.CaptureFixture[str], seeded: Seeded
) -> None:
    tables = cli(capsys, "db", "status", "--json").json()["tables"]

    assert tables["runs"] == 3
    assert tables["metrics"] == 6
    assert tables["model_versions"] == 2
    assert tables["model_aliases"] == 1


@pytest.mark.postgres
def test_db_status_masks_the_password_of_the_store_uri(
    capsys: pytest.CaptureFixture[str],
    loopml_home: Path,
    make_pg_database: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Trust authentication ignores the password, so the store is reachable with one in the URI.
    uri = make_pg_database().replace("postgres@", "postgres:s3cret-pw@")
    monkeypatch.setenv("LOOPML_STORE_URI", uri)

    upgraded = cli(capsys, "db", "upgrade")
    status = cli(capsys, "db", "status")
    as_json = cli(capsys, "db", "status", "--json")

    assert upgraded.code == status.code == as_json.code == 0, status.err
    for output in (upgraded.out, status.out, as_json.out):
        assert "s3cret-pw" not in output
    assert as_json.json()["uri"].startswith("postgresql+psycopg://postgres:***@")
    assert as_json.json()["state"] == "current"


def test_a_malformed_store_uri_is_a_config_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str], loopml_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_STORE_URI", "mysql://localhost/loopml")
    assert_one_line_error(cli(capsys, "runs", "list"), "LOOPML_STORE_URI", "mysql://")

    monkeypatch.setenv("LOOPML_STORE_URI", "postgresql+psycopg://u:hunter2@db:port/x")
    result = cli(capsys, "db", "status", "--json")
    assert_one_line_error(result, "LOOPML_STORE_URI", "not a valid URL")
    assert "hunter2" not in result.err


# --- experiments ---------------------------------------------------------------------------------


def test_plain_experiments_lists_like_experiments_list(
    capsys: pytest.CaptureFixture[str], seeded: Seeded
) -> None:
    plain = cli(capsys, "experiments")
    listed = cli(capsys, "experiments", "list")
    as_json = cli(capsys, "experiments", "--json").json()

    assert plain.code == listed.code == 0
    assert plain.out == listed.out
    assert "churn-exp" in plain.out
    assert "other" in plain.out
    assert {e["name"]: e["tags"] for e in as_json} == {"churn-exp": {"team": "risk"}, "other": {}}
    assert all(isinstance(e["creation_time"], int) for e in as_json)


def test_experiments_create_delete_and_restore_round_trip(
    capsys: pytest.CaptureFixture[str], loopml_home: Path
) -> None:
    created = cli(capsys, "experiments", "create", "fraud", "--tag", "team=risk", "--json")
    assert created.code == 0, created.err
    assert created.json()["name"] == "fraud"
    assert created.json()["tags"] == {"team": "risk"}

    deleted = cli(capsys, "experiments", "delete", "fraud")
    assert deleted.code == 0
    assert "deleted experiment 'fraud'" in deleted.out
    assert cli(capsys, "experiments", "--json").json() == []
    assert [e["lifecycle_stage"] for e in cli(capsys, "experiments", "--all", "--json").json()] == [
        "deleted"
    ]

    restored = cli(capsys, "experiments", "restore", created.json()["experiment_id"], "--json")
    assert restored.json()["lifecycle_stage"] == "active"
    assert [e["name"] for e in cli(capsys, "experiments", "list", "--json").json()] == ["fraud"]


def test_creating_an_existing_experiment_fails_with_a_hint(
    capsys: pytest.CaptureFixture[str], seeded: Seeded
) -> None:
    assert_one_line_error(
        cli(capsys, "experiments", "create", "churn-exp"), "'churn-exp' already exists"
    )
    assert_one_line_error(cli(capsys, "experiments", "delete", "nope"), "'nope' does not exist")
    assert_one_line_error(
        cli(capsys, "experiments", "create", "x", "--tag", "novalue"), "KEY=VALUE"
    )


def test_names_that_look_like_rich_markup_are_printed_literally(
    capsys: pytest.CaptureFixture[str], loopml_home: Path
) -> None:
    assert cli(capsys, "experiments", "create", "[/oops]").code == 0
    assert cli(capsys, "experiments", "create", "[bold]x").code == 0

    listed = cli(capsys, "experiments")
    missing = cli(capsys, "runs", "show", "[/nope]")

    assert listed.code == 0, listed.err
    assert "[/oops]" in listed.out
    assert "[bold]x" in listed.out
    assert_one_line_error(missing, "run '[/nope]' does not exist")


# --- runs ----------------------------------------------------------------------------------------


def test_runs_list_shows_every_experiment_or_only_the_one_asked_for(
    capsys: pytest.CaptureFixture[str], seeded: Seeded
) -> None:
    everything = cli(capsys, "runs", "list", "--json").json()
    churn_only = cli(capsys, "runs", "list", "--experiment", "churn-exp", "--json").json()
    capped = cli(capsys, "runs", "list", "--max", "1", "--json").json()
    table = cli(capsys, "runs", "list")

    assert {r["run_id"] for r in everything} == {seeded.good_run, seeded.bad_run, seeded.other_run}
    assert {r["run_name"] for r in churn_only} == {"good", "bad"}
    assert {r["experiment"] for r in churn_only} == {"churn-exp"}
    assert len(capped) == 1
    assert churn_only[0]["metrics"].keys() == {"rmse"}
    assert table.code == 0
    assert "runs (3)" in table.out
    assert "FINISHED" in table.out


def test_runs_show_prints_info_params_metrics_tags_artifacts_and_inputs(
    capsys: pytest.CaptureFixture[str], seeded: Seeded
) -> None:
    shown = cli(capsys, "runs", "show", seeded.good_run, "--json")

    assert shown.code == 0, shown.err
    run = shown.json()
    assert run["info"]["run_id"] == seeded.good_run
    assert run["info"]["status"] == "FINISHED"
    assert run["data"]["params"] == {"model": "rf", "depth": "4"}
    assert run["data"]["metrics"] == {"rmse": 0.2}
    assert run["data"]["tags"]["team"] == "risk"
    assert [a["path"] for a in run["artifacts"]] == ["model/model.pkl"]
    assert run["inputs"] == []

    table = cli(capsys, "runs", "show", seeded.good_run).out
    for text in ("params", "depth", "rmse", "team", "model/model.pkl", "FINISHED"):
        assert text in table


def test_runs_search_applies_the_filter_language_and_order(
    capsys: pytest.CaptureFixture[str], seeded: Seeded
) -> None:
    found = cli(
        capsys,
        "runs",
        "search",
        "metrics.rmse < 0.8 and params.model = 'rf'",
        "--order-by",
        "metrics.rmse DESC",
        "--json",
    )
    in_one_experiment = cli(
        capsys, "runs", "search", "params.model = 'rf'", "--experiment", "churn-exp", "--json"
    )

    assert found.code == 0, found.err
    assert [r["run_id"] for r in found.json()] == [seeded.other_run, seeded.good_run]
    assert [r["run_id"] for r in in_one_experiment.json()] == [seeded.good_run]
    assert "matching runs (0)" in cli(capsys, "runs", "search", "metrics.rmse > 5").out


def test_a_bad_filter_is_one_error_line_naming_the_problem(
    capsys: pytest.CaptureFixture[str], seeded: Seeded
) -> None:
    result = cli(capsys, "runs", "search", "metrics.rmse <", "--json")

    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith("error: Invalid filter 'metrics.rmse <'")
    assert "position 14" in result.err
    assert "Traceback" not in result.err


def test_unknown_run_or_experiment_is_an_error_with_a_hint(
    capsys: pytest.CaptureFixture[str], seeded: Seeded
) -> None:
    assert_one_line_error(cli(capsys, "runs", "show", "deadbeef"), "run 'deadbeef' does not exist")
    assert_one_line_error(
        cli(capsys, "runs", "list", "--experiment", "nope", "--json"), "'nope' does not exist"
    )


# --- models --------------------------------------------------------------------------------------


def test_models_show_json_has_versions_and_aliases(
    capsys: pytest.CaptureFixture[str], seeded: Seeded
) -> None:
    result = cli(capsys, "models", "show", "churn", "--json")

    assert result.code == 0, result.err
    document = result.json()
    assert document["name"] == "churn"
    assert document["aliases"] == {"champion": 1}
    assert [v["version"] for v in document["versions"]] == [1, 2]
    first = document["versions"][0]
    assert first["run_id"] == seeded.good_run
    assert first["metrics"] == {"rmse": 0.2}
    assert isinstance(first["created_at"], int)
    assert first["aliases"] == ["champion"]
    assert first["lineage"]["run_id"] == seeded.good_run


def test_models_list_and_show_print_readable_tables(
    capsys: pytest.CaptureFixture[str], seeded: Seeded
) -> None:
    from loopml.cli.output import format_ms
    from loopml.registry import ModelRegistry

    listed = cli(capsys, "models", "list")
    shown = cli(capsys, "models", "show", "churn")
    created_at = ModelRegistry.from_settings(Settings.from_env()).get_version("churn", 1).created_at

    assert listed.code == shown.code == 0
    assert "churn" in listed.out
    assert "champion->v1" in listed.out
    assert "rmse=0.2" in shown.out
    assert format_ms(created_at).split()[0] in shown.out
    assert [m["name"] for m in cli(capsys, "models", "list", "--json").json()] == ["churn"]


def test_models_alias_sets_moves_and_deletes_and_history_records_each(
    capsys: pytest.CaptureFixture[str], seeded: Seeded
) -> None:
    moved = cli(capsys, "models", "alias", "churn", "champion", "2")
    added = cli(capsys, "models", "alias", "churn", "challenger", "1", "--json")
    after_set = cli(capsys, "models", "show", "churn", "--json").json()["aliases"]
    deleted = cli(capsys, "models", "alias", "churn", "challenger", "--delete")
    history = cli(capsys, "models", "history", "churn", "--json").json()

    assert moved.code == 0, moved.err
    assert "moved churn@champion from version 1 to 2" in moved.out
    assert added.json() == {"name": "churn", "alias": "challenger", "before": None, "after": 1}
    assert after_set == {"champion": 2, "challenger": 1}
    assert deleted.code == 0
    assert cli(capsys, "models", "show", "churn", "--json").json()["aliases"] == {"champion": 2}
    assert [(e["action"], e["entity_id"]) for e in history[:3]] == [
        ("delete_alias", "churn@challenger"),
        ("set_alias", "churn@challenger"),
        ("move_alias", "churn@champion"),
    ]
    assert history[2]["before"] == {"version": 1}
    assert history[2]["after"] == {"version": 2}
    assert "move_alias" in cli(capsys, "models", "history", "churn").out


def test_unknown_model_version_or_alias_is_an_error_with_a_hint(
    capsys: pytest.CaptureFixture[str], seeded: Seeded
) -> None:
    assert_one_line_error(
        cli(capsys, "models", "show", "nope", "--json"), "registered model 'nope' does not exist"
    )
    assert_one_line_error(
        cli(capsys, "models", "alias", "churn", "champion", "9"), "has no version 9"
    )
    assert_one_line_error(
        cli(capsys, "models", "alias", "churn", "shadow", "--delete"), "no alias 'shadow'"
    )
    assert_one_line_error(cli(capsys, "models", "lineage", "churn@shadow"), "no alias 'shadow'")
    assert_one_line_error(cli(capsys, "models", "alias", "churn", "champion"), "--delete")
    assert_one_line_error(cli(capsys, "models", "alias", "churn", "latest", "1"), "reserved")


def test_models_compare_and_lineage(capsys: pytest.CaptureFixture[str], seeded: Seeded) -> None:
    compared = cli(capsys, "models", "compare", "churn", "1", "2", "--json")
    lineage = cli(capsys, "models", "lineage", "churn@champion", "--json")
    lineage_table = cli(capsys, "models", "lineage", "churn:2")

    assert compared.json()["metrics"] == {"rmse": {"1": 0.2, "2": 0.19}}
    assert lineage.json()["model"]["version"] == 1
    assert lineage.json()["run"]["run_id"] == seeded.good_run
    assert lineage.json()["run"]["params"]["model"] == "rf"
    assert "churn:2" in lineage_table.out
    assert seeded.good_run in lineage_table.out
    assert_one_line_error(cli(capsys, "models", "compare", "churn", "1"), "at least two")


def test_usage_errors_exit_2_without_a_traceback(
    capsys: pytest.CaptureFixture[str], loopml_home: Path
) -> None:
    result = cli(capsys, "models", "alias", "churn", "champion", "two")

    assert result.code == 2
    assert "Traceback" not in result.err
    assert "VERSION" in result.err


# --- the installed console script ----------------------------------------------------------------


def _run_script(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = shutil.which("loopml")
    assert script is not None, "the loopml console script is not installed (pip install -e .)"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    environment.update({"LOOPML_HOME": str(home), **env})
    return subprocess.run(
        [script, *args], capture_output=True, text=True, env=environment, timeout=120, check=False
    )


def test_the_console_script_prints_json_and_exits_non_zero_on_mistakes(
    seeded: Seeded, loopml_home: Path
) -> None:
    shown = _run_script(loopml_home, "models", "show", "churn", "--json")
    missing = _run_script(loopml_home, "runs", "show", "no-such-run", "--json")
    bad_uri = _run_script(loopml_home, "db", "status", LOOPML_STORE_URI="sqlite://relative.db")

    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["aliases"] == {"champion": 1}
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert missing.stderr.splitlines()[0] == "error: run 'no-such-run' does not exist"
    assert missing.stderr.splitlines()[1].startswith("hint: ")
    assert bad_uri.returncode == 1
    assert "Traceback" not in bad_uri.stderr
    assert "needs three slashes" in bad_uri.stderr


def test_import_of_the_cli_stays_cheap() -> None:
    """``loopml --help`` must not pay for SQLAlchemy or pandas."""
    code = (
        "import sys, loopml.cli.main as m; m._register();"
        "print(sorted(n for n in ('sqlalchemy', 'pandas', 'alembic') if n in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
