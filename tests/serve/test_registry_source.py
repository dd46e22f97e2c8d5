"""Serving straight from the loopml registry: ``NAME@ALIAS`` resolves, alias moves reload."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from loopml import Client
from loopml.config import Settings
from loopml.errors import NotFoundError
from loopml.package import package_model
from loopml.registry import ModelRegistry
from loopml.serve import RegistrySource


@pytest.fixture
def registry(tmp_path: Path) -> Any:
    """A registry holding ``quickstart`` v1 (y = 2x, champion) and v2 (y = 3x)."""
    settings = Settings(home=tmp_path / "home")
    client = Client(settings)
    registry = ModelRegistry.from_settings(settings)
    x = pd.DataFrame({"x": np.arange(10.0)})
    for slope in (2.0, 3.0):
        run_id = client.create_run(None, run_name=f"slope-{slope}").info.run_id
        model = LinearRegression().fit(x, slope * x["x"])
        packaged = package_model(model, x, task="regression", run_id=run_id, client=client)
        client.set_terminated(run_id)
        registry.register_version(
            "quickstart", run_id, "model", signature=packaged.signature.to_dict()
        )
    registry.set_alias("quickstart", "champion", 1)
    client.close()
    yield registry
    registry.db.dispose()


def test_a_registry_alias_is_served_and_follows_a_move(registry: Any, live_server: Any) -> None:
    server = live_server(
        source=RegistrySource(registry), models=("quickstart@champion",), reload_interval_s=0.1
    )
    first = httpx.post(f"{server.url}/predict", json={"instances": [[1.0], [2.0], [3.0]]}).json()
    assert first["version"] == 1
    assert first["predictions"] == pytest.approx([2.0, 4.0, 6.0])
    registry.set_alias("quickstart", "champion", 2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = httpx.post(f"{server.url}/predict", json={"instances": [[1.0]]}).json()
        if answer["version"] == 2:
            break
        time.sleep(0.05)
    assert answer["predictions"] == pytest.approx([3.0])
    described = httpx.get(f"{server.url}/admin/models").json()["models"][0]
    assert described["version"] == "2"
    assert described["sha256"]


def test_an_unknown_registry_reference_fails_at_startup(registry: Any) -> None:
    from loopml.serve import ServeSettings, create_app

    with pytest.raises(NotFoundError, match="nope"):
        create_app(ServeSettings(models=("nope@champion",)), source=RegistrySource(registry))
