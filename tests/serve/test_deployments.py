"""A server records its deployment in the store; traffic changes go there and reach every worker.

Two apps built from the same settings stand in for two uvicorn workers of one server: each has
its own event loop and its own store connections, as separate processes would.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from loopml import Client
from loopml.config import Settings
from loopml.package import package_model
from loopml.registry import Deployments, ModelRegistry
from loopml.serve import RegistrySource, ServeSettings, create_app

from .conftest import ServerProcess, TestClient

BOTH = ("quickstart@champion", "quickstart@challenger")
QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart"


def register_quickstart(settings: Settings) -> None:
    """``quickstart`` v1 (y = 2x, champion) and v2 (y = 3x, challenger), packaged to ONNX."""
    client = Client(settings)
    registry = ModelRegistry(client.database, client.artifacts)
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
    registry.set_alias("quickstart", "challenger", 2)
    client.close()


@pytest.fixture
def deployments(settings: Settings) -> Iterator[Deployments]:
    register_quickstart(settings)
    store = Deployments.from_settings(settings)
    yield store
    store.db.dispose()


@pytest.fixture
def start_worker(
    settings: Settings, tmp_path: Path
) -> Iterator[Callable[..., tuple[Any, TestClient]]]:
    """Factory: a running app (lifespan started) on the registry, as one worker of a server."""
    opened: list[tuple[TestClient, ModelRegistry]] = []

    def start(**options: Any) -> tuple[Any, TestClient]:
        options.setdefault("models", BOTH)
        options.setdefault("deployment", "api")
        options.setdefault("reload_interval_s", 0.1)
        options.setdefault("log_dir", str(tmp_path / "logs"))
        options.setdefault("state_dir", str(tmp_path / "state"))
        registry = ModelRegistry.from_settings(settings)
        app = create_app(ServeSettings(**options), source=RegistrySource(registry), home=tmp_path)
        client = TestClient(app)
        client.__enter__()
        opened.append((client, registry))
        return app, client

    yield start
    for client, registry in opened:
        client.__exit__(None, None, None)
        registry.db.dispose()


def _version(client: TestClient) -> int:
    response = client.post("/predict", json={"instances": [[1.0]]})
    assert response.status_code == 200, response.text
    version: int = response.json()["version"]
    return version


def test_a_running_server_records_its_deployment_and_marks_it_stopped_on_shutdown(
    deployments: Deployments, start_worker: Callable[..., tuple[Any, TestClient]]
) -> None:
    _, client = start_worker(traffic={"quickstart": "champion=90,challenger=10"})
    (row,) = deployments.list_deployments("api")
    assert (row.model_name, row.status) == ("quickstart", "running")
    assert row.targets == BOTH
    assert row.traffic == {"weights": {"champion": 90.0, "challenger": 10.0}, "shadow": []}
    client.__exit__(None, None, None)  # graceful shutdown
    assert deployments.get("api", "quickstart").status == "stopped"


def test_an_admin_traffic_change_is_stored_and_audited_with_the_caller(
    deployments: Deployments, start_worker: Callable[..., tuple[Any, TestClient]]
) -> None:
    _, client = start_worker()
    response = client.put(
        "/admin/traffic/quickstart",
        json={"spec": "champion=0,challenger=100"},
        headers={"x-loopml-actor": "alice"},
    )
    assert response.status_code == 200, response.text
    assert deployments.traffic("api") == {
        "quickstart": {"weights": {"champion": 0.0, "challenger": 100.0}, "shadow": []}
    }
    change = deployments.history("api")[0]
    assert (change.action, change.actor) == ("set_traffic", "alice")
    assert _version(client) == 2


def test_a_change_made_through_one_worker_reaches_the_other(
    deployments: Deployments, start_worker: Callable[..., tuple[Any, TestClient]]
) -> None:
    launch = {"launched_at_ms": int(time.time() * 1000)}
    _, first = start_worker(**launch)
    _, second = start_worker(**launch)
    assert _version(second) == 1
    changed = first.put("/admin/traffic/quickstart", json={"spec": "challenger=100"})
    assert changed.status_code == 200, changed.text
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _version(second) != 2:
        time.sleep(0.05)
    assert [_version(second) for _ in range(20)] == [2] * 20
    assert second.get("/admin/traffic").json()["quickstart"]["weights"] == {"challenger": 100.0}


def test_a_worker_starting_late_applies_a_change_made_before_it_started(
    deployments: Deployments, start_worker: Callable[..., tuple[Any, TestClient]]
) -> None:
    launch = {"launched_at_ms": int(time.time() * 1000), "reload_interval_s": 60.0}
    _, first = start_worker(**launch)
    assert first.put("/admin/traffic/quickstart", json={"spec": "challenger=100"}).is_success
    _, late = start_worker(**launch)  # same launch: it must not reset the traffic
    assert _version(late) == 2  # before its first poll: applied at start-up
    assert deployments.traffic("api")["quickstart"] == {
        "weights": {"challenger": 100.0},
        "shadow": [],
    }


def test_a_new_server_does_not_inherit_the_traffic_an_earlier_one_left(
    deployments: Deployments, start_worker: Callable[..., tuple[Any, TestClient]]
) -> None:
    _, old = start_worker()
    assert old.put("/admin/traffic/quickstart", json={"spec": "challenger=100"}).is_success
    old.__exit__(None, None, None)
    _, new = start_worker(traffic={"quickstart": "champion=100"})
    assert _version(new) == 1
    assert deployments.get("api", "quickstart").traffic == {
        "weights": {"champion": 100.0},
        "shadow": [],
    }
    assert deployments.get("api", "quickstart").status == "running"


def test_a_change_the_store_refuses_is_not_applied(
    deployments: Deployments, start_worker: Callable[..., tuple[Any, TestClient]]
) -> None:
    import sqlalchemy as sa

    _, client = start_worker()
    with deployments.db.write() as conn:  # the row vanishes under the running server
        conn.execute(sa.text("DELETE FROM deployments"))
    refused = client.put("/admin/traffic/quickstart", json={"spec": "challenger=100"})
    assert refused.status_code == 404
    assert "deployment 'api' does not serve model 'quickstart'" in refused.json()["error"]
    assert _version(client) == 1  # the policy in force did not change
    assert client.get("/admin/traffic").json()["quickstart"]["weights"] == {"champion": 100.0}


def test_a_bad_policy_is_refused_before_anything_is_stored(
    deployments: Deployments, start_worker: Callable[..., tuple[Any, TestClient]]
) -> None:
    _, client = start_worker()
    bad = client.put("/admin/traffic/quickstart", json={"spec": "champion=50,canary=50"})
    assert bad.status_code == 400
    assert deployments.get("api", "quickstart").traffic is None
    assert [e.action for e in deployments.history("api")] == ["start_deployment"]


def test_without_a_deployment_name_nothing_is_written_to_the_store(
    deployments: Deployments, start_worker: Callable[..., tuple[Any, TestClient]]
) -> None:
    _, client = start_worker(deployment=None)
    assert client.put("/admin/traffic/quickstart", json={"spec": "challenger=100"}).is_success
    assert _version(client) == 2
    assert deployments.list_deployments() == []


@pytest.mark.slow
def test_two_worker_processes_share_a_traffic_change_through_the_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    register_quickstart(Settings(home=home))
    server = ServerProcess(
        ["--model", BOTH[0], "--model", BOTH[1], "--workers", "2", "--reload-interval", "0.2"],
        home,
    )
    try:
        answer = httpx.put(
            f"{server.url}/admin/traffic/quickstart", json={"spec": "champion=0,challenger=100"}
        )
        assert answer.status_code == 200, answer.text
        time.sleep(1.0)  # two reload intervals, and then some
        seen = set()
        for _ in range(60):
            # A new connection each time, so the kernel spreads requests over both workers.
            response = httpx.post(
                f"{server.url}/predict",
                json={"instances": [[1.0]]},
                headers={"connection": "close"},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["version"] == 2, "a worker kept the old split"
            seen.add(body["request_id"][:12])
        assert len(seen) == 2, "both workers should have answered"
    finally:
        assert server.signal(signal.SIGTERM) in (0, -signal.SIGTERM)
    store = Deployments.from_settings(Settings(home=home))
    (row,) = store.list_deployments()
    assert (row.name, row.status) == (f"127.0.0.1:{server.port}", "stopped")
    assert row.traffic == {"weights": {"champion": 0.0, "challenger": 100.0}, "shadow": []}
    store.db.dispose()


@pytest.mark.slow
def test_loopml_serve_in_a_project_serves_its_champion_and_records_the_deployment(
    tmp_path: Path,
) -> None:
    from loopml.pipeline.runner import run_project

    home = tmp_path / "home"
    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, project)
    with open(project / "loopml.yaml", "a", encoding="utf-8") as file:
        file.write("serving:\n  name: quickstart-api\n  prediction_log: {folder: predictions}\n")
    run_project(project, settings=Settings(home=home), trials=1)
    server = ServerProcess(["--project", str(project)], home)  # the port comes from the flag
    store = Deployments.from_settings(Settings(home=home))
    try:
        answer = httpx.post(f"{server.url}/predict", json={"instances": [[1.0], [2.0], [3.0]]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == pytest.approx([2.0, 4.0, 6.0])
        row = store.get("quickstart-api", "quickstart")
        assert (row.status, row.targets) == ("running", ("quickstart@champion",))
    finally:
        # uvicorn re-raises the signal once it has shut down gracefully.
        assert server.signal(signal.SIGTERM) in (0, -signal.SIGTERM)
    assert store.get("quickstart-api", "quickstart").status == "stopped"
    store.db.dispose()
    assert list((project / "predictions").rglob("*.parquet")), "the log belongs to the project"
