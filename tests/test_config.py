"""Settings: read from LOOPML_* variables at the edge, with clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.config import Settings
from loopml.errors import ConfigError


def test_defaults_need_no_server_and_live_under_the_home() -> None:
    settings = Settings.from_env({})
    assert settings.home == Path(".loopml")
    assert settings.store_uri == f"sqlite:///{Path('.loopml/loopml.db').absolute()}"
    assert settings.artifact_uri == str(Path(".loopml/artifacts").absolute())


def test_environment_variables_override_the_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "LOOPML_HOME": str(tmp_path),
            "LOOPML_STORE_URI": "postgresql+psycopg://u@h/db",
            "LOOPML_ARTIFACT_URI": "s3://bucket/prefix",
            "LOOPML_HEARTBEAT_TIMEOUT": "30",
        }
    )
    assert settings.home == tmp_path
    assert settings.store_uri == "postgresql+psycopg://u@h/db"
    assert settings.artifact_uri == "s3://bucket/prefix"
    assert settings.heartbeat_timeout == 30.0


def test_the_home_alone_moves_store_and_artifacts(tmp_path: Path) -> None:
    settings = Settings.from_env({"LOOPML_HOME": str(tmp_path)})
    assert settings.store_uri == f"sqlite:///{tmp_path / 'loopml.db'}"
    assert settings.artifact_uri == str(tmp_path / "artifacts")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOOPML_STORE_URI": "mysql://x/y"}, r"LOOPML_STORE_URI has value 'mysql://x/y'.*valid"),
        ({"LOOPML_STORE_URI": "sqlite://x.db"}, "three slashes"),
        ({"LOOPML_ARTIFACT_URI": "gs://b/p"}, "LOOPML_ARTIFACT_URI has value 'gs://b/p'"),
        ({"LOOPML_HEARTBEAT_TIMEOUT": "soon"}, "not a number of seconds"),
        ({"LOOPML_HEARTBEAT_TIMEOUT": "-1"}, "positive number"),
    ],
)
def test_a_malformed_value_names_the_variable_and_the_way_out(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        Settings.from_env(env)
    assert info.value.hint


def test_settings_are_frozen() -> None:
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().home = Path("x")  # type: ignore[misc]


@pytest.mark.parametrize(
    "uri", ["mysql://u:s3cret@h/db", "postgresql+psycopg://u:s3cret@h:port/db"]
)
def test_error_messages_never_echo_a_password(uri: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"LOOPML_STORE_URI": uri})
    assert "s3cret" not in str(info.value)
    assert "***" in str(info.value)
