"""Buffered values survive every ordinary way a process stops; dead runs do not stay RUNNING."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from loopml import Client
from loopml.config import Settings


def start_script(
    settings: Settings, body: str, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """A Python process using loopml on the same store; use it in a ``with`` block."""
    env = {
        **os.environ,
        "LOOPML_STORE_URI": str(settings.store_uri),
        "LOOPML_ARTIFACT_URI": str(settings.artifact_uri),
        **(extra_env or {}),
    }
    script = "import loopml, sys, time\n" + textwrap.dedent(body)
    return subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def run_script(settings: Settings, body: str) -> subprocess.CompletedProcess[str]:
    with start_script(settings, body) as proc:
        out, err = proc.communicate(timeout=180)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_concurrently(settings: Settings, bodies: list[str]) -> list[Any]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda body: run_script(settings, body), bodies))


def only_run(settings: Settings) -> Any:
    client = Client(settings)
    try:
        runs = client.search_runs(None)
        assert len(runs) == 1
        return client.get_run(runs[0].info.run_id), client
    finally:
        client.close()


def history_length(settings: Settings, run_id: str, key: str = "m") -> int:
    client = Client(settings)
    try:
        return len(client.get_metric_history(run_id, key))
    finally:
        client.close()


def test_end_run_flushes_so_another_process_reads_everything(settings: Settings) -> None:
    with start_script(
        settings,
        """
        run = loopml.start_run()
        for i in range(3000):
            loopml.log_metric("m", i, step=i)
        loopml.end_run()
        print(run.info.run_id, flush=True)
        time.sleep(30)  # still alive: only end_run can have written the values
    """,
    ) as proc:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        try:
            assert history_length(settings, run_id) == 3000
        finally:
            proc.kill()
            proc.communicate()


def test_nothing_is_lost_when_the_script_exits_without_ending_the_run(settings: Settings) -> None:
    proc = run_script(
        settings,
        """
        loopml.start_run()
        for i in range(2500):
            loopml.log_metric("m", i, step=i)
    """,
    )
    assert proc.returncode == 0, proc.stderr
    run, _ = only_run(settings)
    assert run.info.status == "FINISHED"
    assert history_length(settings, run.info.run_id) == 2500


def test_an_uncaught_exception_flushes_and_marks_the_run_failed(settings: Settings) -> None:
    proc = run_script(
        settings,
        """
        loopml.start_run()
        for i in range(1200):
            loopml.log_metric("m", i, step=i)
        raise RuntimeError("boom")
    """,
    )
    assert proc.returncode == 1
    run, _ = only_run(settings)
    assert run.info.status == "FAILED"
    assert "boom" in run.info.failure_reason
    assert history_length(settings, run.info.run_id) == 1200


def test_an_exception_inside_the_context_manager_flushes_and_fails_the_run(
    settings: Settings,
) -> None:
    proc = run_script(
        settings,
        """
        with loopml.start_run():
            for i in range(700):
                loopml.log_metric("m", i, step=i)
            raise ValueError("bad data")
    """,
    )
    assert proc.returncode == 1
    run, _ = only_run(settings)
    assert run.info.status == "FAILED"
    assert "ValueError: bad data" in run.info.failure_reason
    assert history_length(settings, run.info.run_id) == 700


def test_sigterm_flushes_everything_logged_and_marks_the_run_killed(settings: Settings) -> None:
    with start_script(
        settings,
        """
        loopml.start_run()
        for i in range(4000):
            loopml.log_metric("m", i, step=i)
        print("logged", flush=True)
        time.sleep(60)
    """,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "logged"
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM
    run, _ = only_run(settings)
    assert run.info.status == "KILLED"
    assert history_length(settings, run.info.run_id) == 4000


def test_a_run_whose_process_was_killed_shows_as_failed_once_its_heartbeat_is_stale(
    settings: Settings,
) -> None:
    with start_script(
        settings,
        """
        run = loopml.start_run()
        loopml.log_metric("m", 1.0)
        loopml.get_client().flush()
        print(run.info.run_id, flush=True)
        time.sleep(60)
    """,
        extra_env={"LOOPML_HEARTBEAT_TIMEOUT": "1"},
    ) as proc:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        proc.kill()
        proc.communicate()
    from dataclasses import replace

    short = replace(settings, heartbeat_timeout=1.0)
    client = Client(short)
    try:
        deadline = time.monotonic() + 10
        while client.get_run(run_id).info.status == "RUNNING":
            assert time.monotonic() < deadline, "run still RUNNING after its heartbeat stopped"
            time.sleep(0.2)
        run = client.get_run(run_id)
        assert run.info.status == "FAILED"
        assert "stale" in run.info.failure_reason
        assert run.data.metrics == {"m": 1.0}
    finally:
        client.close()


def test_a_live_run_keeps_its_heartbeat_and_stays_running(settings: Settings) -> None:
    from dataclasses import replace

    with start_script(
        settings,
        """
        run = loopml.start_run()
        print(run.info.run_id, flush=True)
        time.sleep(60)
    """,
        extra_env={"LOOPML_HEARTBEAT_TIMEOUT": "1"},
    ) as proc:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        client = Client(replace(settings, heartbeat_timeout=1.0))
        try:
            time.sleep(2.0)
            assert client.get_run(run_id).info.status == "RUNNING"
        finally:
            client.close()
            proc.kill()
            proc.communicate()


@pytest.mark.slow
def test_four_processes_logging_at_once_lose_no_metric(settings: Settings, tmp_path: Path) -> None:
    per_process = 1500
    bodies = [
        f"""
            loopml.set_experiment("concurrent")
            with loopml.start_run(run_name="p{n}"):
                for i in range({per_process}):
                    loopml.log_metric("m", i, step=i)
                    if i % 100 == 0:
                        loopml.log_metrics({{"a": i, "b": i}}, step=i)
                loopml.log_params({{"proc": {n}}})
        """
        for n in range(4)
    ]
    for proc in run_concurrently(settings, bodies):
        assert proc.returncode == 0, proc.stderr
    client = Client(settings)
    try:
        runs = client.search_runs(None)
        assert len(runs) == 4
        for run in runs:
            assert run.info.status == "FINISHED"
            assert len(client.get_metric_history(run.info.run_id, "m")) == per_process
            assert len(client.get_metric_history(run.info.run_id, "a")) == per_process // 100
    finally:
        client.close()


@pytest.mark.slow
def test_four_processes_logging_into_one_run_lose_no_metric(settings: Settings) -> None:
    client = Client(settings)
    run = client.create_run(None)
    client.close()
    bodies = [
        f"""
            c = loopml.Client()
            for i in range(800):
                c.log_metric("{run.info.run_id}", "m{n}", i, step=i)
                c.log_metric("{run.info.run_id}", "shared", i, step=i)
            c.close()
        """
        for n in range(4)
    ]
    for proc in run_concurrently(settings, bodies):
        assert proc.returncode == 0, proc.stderr
    client = Client(settings)
    try:
        assert len(client.get_metric_history(run.info.run_id, "shared")) == 3200
        latest = client.get_run(run.info.run_id).data.metrics
        assert latest == {"m0": 799, "m1": 799, "m2": 799, "m3": 799, "shared": 799}
    finally:
        client.close()
