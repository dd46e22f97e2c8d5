"""The prediction log and feedback: durable, partitioned, readable with DuckDB and polars."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import polars as pl
import pytest

from loopml.serve import ServeSettings, create_app, recover

from .conftest import ServerProcess


def _count(folder: Path, table: str = "predictions") -> int:
    files = list((folder / table).glob("**/*.parquet"))
    if not files:
        return 0
    query = (
        f"SELECT count(*) FROM read_parquet('{folder}/{table}/**/*.parquet', union_by_name=true)"
    )
    return int(duckdb.sql(query).fetchall()[0][0])


def test_every_prediction_row_is_logged_with_inputs_and_outputs(
    make_client: Any, tmp_path: Path
) -> None:
    client = make_client("churn", "linear")
    client.post(
        "/predict",
        json={"instances": [{"age": 60.0, "plan": "pro"}, {"age": 20.0, "plan": "basic"}]},
    )
    client.post("/models/linear/predict", json={"instances": [["abc"]]})
    client.__exit__(None, None, None)
    logs = tmp_path / "logs"
    frame = pl.read_parquet(
        logs / "predictions" / "model=churn" / "**" / "*.parquet", hive_partitioning=True
    )
    assert frame["row"].to_list() == [0, 1]
    assert frame["prediction"].to_list() == ["churn", "stay"]
    assert frame["inputs"].struct.field("plan").to_list() == ["pro", "basic"]
    assert [len(p) for p in frame["outputs"].struct.field("probabilities").to_list()] == [2, 2]
    assert set(frame["status"]) == {200}
    failed = duckdb.sql(
        f"SELECT status, error, row FROM read_parquet('{logs}/predictions/model=linear/**/*.parquet')"  # noqa: E501
    ).fetchall()
    assert failed == [
        (400, "instances[0][0] (column 'x') is 'abc'; expected a number (float64)", -1)
    ]


def _predict_directly(app: Any, send: Any) -> None:
    """One ``POST /predict`` through the ASGI app, as uvicorn would call it."""
    import asyncio

    body = b'{"instances": [[1.0]]}'
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"22")],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    asyncio.run(app(scope, receive, send))


def test_a_prediction_is_logged_once_its_answer_is_sent(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    """A client waiting for its answer does not wait for the log entry too; the entry is
    recorded before the request is done (where feedback looks request ids up)."""
    settings = ServeSettings(model_files={"linear": str(models["linear"])}, log_dir=str(tmp_path))
    app = create_app(settings, home=tmp_path)
    log = app.state.log
    request_id = b""
    logged_when_answered: list[bool] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal request_id
        if message["type"] == "http.response.start":
            request_id = dict(message["headers"])[b"x-request-id"]
        else:
            logged_when_answered.append(request_id.decode() in log.recent)

    _predict_directly(app, send)
    assert logged_when_answered == [False]
    assert request_id.decode() in log.recent


def test_a_prediction_is_logged_even_when_its_answer_cannot_be_sent(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    settings = ServeSettings(model_files={"linear": str(models["linear"])}, log_dir=str(tmp_path))
    app = create_app(settings, home=tmp_path)

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        _predict_directly(app, send)
    assert len(app.state.log.recent) == 1


def test_an_error_reply_after_the_model_answered_is_logged_as_that_error(
    make_client: Any, tmp_path: Path
) -> None:
    """The model ran, but the reply was an error (an output the model lacks): the client got
    no predictions, so the log says what it was sent and feedback for the id is refused."""
    client = make_client("linear")
    request = {
        "inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [1.0]}],
        "outputs": [{"name": "nope"}],
    }
    answer = client.post("/v2/models/linear/infer", json=request)
    assert answer.status_code == 400
    request_id = answer.headers["x-request-id"]
    feedback = client.post("/feedback", json={"request_id": request_id, "label": 2.0})
    assert feedback.status_code == 404
    client.__exit__(None, None, None)
    logged = duckdb.sql(
        "SELECT request_id, status, error, prediction IS NULL FROM read_parquet("
        f"'{tmp_path}/logs/predictions/**/*.parquet', union_by_name=true)"
    ).fetchall()
    assert logged == [(request_id, 400, "output 'nope' does not exist", True)]


def test_feedback_is_accepted_for_known_ids_and_refused_for_unknown(
    make_client: Any, tmp_path: Path
) -> None:
    client = make_client("linear")
    first = client.post("/predict", json={"instances": [[1.0], [2.0]]}).json()["request_id"]
    second = client.post("/predict", json={"instances": [[3.0]]}).json()["request_id"]
    assert client.post("/feedback", json={"request_id": first, "label": 2.5, "row": 1}).json() == {
        "accepted": 1
    }
    batch = {
        "feedback": [
            {"request_id": second, "label": 6.0},
            {"request_id": first, "label": 2.0, "row": 0},
        ]
    }
    assert client.post("/feedback", json=batch).json() == {"accepted": 2}
    unknown = client.post(
        "/feedback", json=[{"request_id": second, "label": 1}, {"request_id": "nope", "label": 1}]
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"].startswith("unknown request id(s) 'nope'")
    assert "nothing from this batch was recorded" in unknown.json()["hint"]
    out_of_range = client.post("/feedback", json={"request_id": second, "label": 1, "row": 4})
    assert out_of_range.status_code == 400
    assert "row 4 is out of range" in out_of_range.json()["error"]
    missing = client.post("/feedback", json={"request_id": second})
    assert missing.status_code == 400
    assert "label is missing" in missing.json()["error"]
    client.__exit__(None, None, None)
    labels = duckdb.sql(
        f"SELECT request_id, row, label_value FROM read_parquet('{tmp_path}/logs/feedback/**/*.parquet') ORDER BY label_value"  # noqa: E501
    ).fetchall()
    assert labels == [(first, 0, 2.0), (first, 1, 2.5), (second, None, 6.0)]


def test_feedback_finds_ids_from_an_earlier_server_on_disk(
    make_client: Any, tmp_path: Path
) -> None:
    client = make_client("linear")
    request_id = client.post("/predict", json={"instances": [[1.0]]}).json()["request_id"]
    client.__exit__(None, None, None)
    later = make_client("linear")
    assert later.post("/feedback", json={"request_id": request_id, "label": 2}).status_code == 200


def test_sigterm_flushes_every_prediction(tmp_path: Path, models: dict[str, Path]) -> None:
    server = ServerProcess(["--model-file", f"linear={models['linear']}"], tmp_path / "home")
    with httpx.Client(base_url=server.url) as client:
        for i in range(300):
            assert client.post("/predict", json={"instances": [[float(i)]]}).status_code == 200
    # uvicorn shuts down gracefully, then re-raises the signal (exit status -15).
    assert server.signal(signal.SIGTERM) in (0, -signal.SIGTERM)
    logs = tmp_path / "home" / "serving" / "logs"
    assert _count(logs) == 300
    assert not list((logs / "_spool").glob("*/*.arrows"))


def test_kill_9_loses_at_most_the_documented_window(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    """Loss window: what was recorded in the last spool interval (0.2 s) before the kill."""
    server = ServerProcess(["--model-file", f"linear={models['linear']}"], tmp_path / "home")
    answered: list[float] = []
    with httpx.Client(base_url=server.url) as client:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            assert client.post("/predict", json={"instances": [[1.0]]}).status_code == 200
            answered.append(time.monotonic())
    killed_at = time.monotonic()
    server.signal(signal.SIGKILL)
    logs = tmp_path / "home" / "serving" / "logs"
    assert _count(logs) == 0  # nothing rolled into Parquet yet: it is all in the spool
    recovered = recover(logs)
    assert recovered == _count(logs)
    safe = sum(1 for t in answered if t < killed_at - 0.2 - 0.1)  # window plus scheduling slack
    assert safe <= recovered <= len(answered), (safe, recovered, len(answered))
    assert len(answered) - recovered < len(answered) * 0.5


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (read from /proc: Linux only, like the server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The fields after the command name (which may hold spaces) start with state, ppid.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _descendants(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        found += [child, *_descendants(child)]
    return found


def _wait_gone(pids: list[int]) -> None:
    """Wait until every thread of each process has exited: a process's files (and the locks
    on them) are closed with its last thread, which may be after its main thread shows as a
    zombie (never reaped here when its parent is gone too)."""
    deadline = time.monotonic() + 30
    for pid in pids:
        while time.monotonic() < deadline and not _exited(pid):
            time.sleep(0.05)


def _exited(pid: int) -> bool:
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return True  # gone
    for thread in threads:
        try:
            state = (thread / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # this thread is gone
        if state not in ("Z", "X"):
            return False
    return True


def test_kill_9_of_every_worker_loses_at_most_the_documented_window(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    """With --workers 2 each worker spools on its own; killing all of them at once loses
    at most what each recorded in its last spool interval."""
    server = ServerProcess(
        ["--model-file", f"linear={models['linear']}", "--workers", "2"], tmp_path / "home"
    )
    answered: list[float] = []
    seen: set[str] = set()

    def predict() -> None:
        # A fresh connection per request, so that both workers' accept loops take some.
        response = httpx.post(f"{server.url}/predict", json={"instances": [[1.0]]})
        assert response.status_code == 200
        answered.append(time.monotonic())
        seen.add(response.json()["request_id"][:12])  # the worker's id prefix

    # Both workers answering: only then are both surely spawned, and the window is about a
    # log in steady state (a worker's first conversion is cold).
    warm_until = time.monotonic() + 20
    while len(seen) < 2 and time.monotonic() < warm_until:
        predict()
    assert len(seen) == 2, seen
    time.sleep(0.5)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        predict()
    killed_at = time.monotonic()
    # Every process of the server, read now: a worker spawned after an earlier look would
    # survive its supervisor's kill, keep its spool locked, and its rows would look lost.
    workers = _descendants(server.process.pid)
    assert len(workers) >= 2, workers  # the two uvicorn workers (and maybe a resource tracker)
    for pid in [*workers, server.process.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    server.process.wait(timeout=30)
    _wait_gone(workers)  # a killed process holds its spool's lock until it has exited
    logs = tmp_path / "home" / "serving" / "logs"
    spools = [p for p in (logs / "_spool").iterdir() if any(p.glob("*.arrows"))]
    assert spools  # one per worker that answered (usually both)
    recovered = recover(logs)
    assert recovered == _count(logs)
    safe = sum(1 for t in answered if t < killed_at - 0.2 - 0.1)
    assert safe <= recovered <= len(answered), (safe, recovered, len(answered))


def test_only_text_columns_are_dictionary_encoded_in_the_published_parquet(
    make_client: Any, tmp_path: Path
) -> None:
    """Numbers rarely repeat enough to gain from a dictionary, and trying hashes every value."""
    import pyarrow.parquet as pq

    client = make_client("churn")
    rows = [{"age": 20.0 + i, "plan": "pro" if i % 2 else "basic"} for i in range(10)]
    assert client.post("/predict", json={"instances": rows}).status_code == 200
    client.__exit__(None, None, None)
    (path,) = (tmp_path / "logs" / "predictions").glob("**/*.parquet")
    group = pq.ParquetFile(path).metadata.row_group(0)
    encoded = {
        group.column(i).path_in_schema
        for i in range(group.num_columns)
        if "RLE_DICTIONARY" in group.column(i).encodings
    }
    assert {"request_id", "model", "inputs.plan", "prediction"} <= encoded
    assert not encoded & {"timestamp", "latency_ms", "inputs.age", "row"}
    frame = pq.read_table(path).to_pylist()
    assert [r["inputs"]["plan"] for r in frame] == [r["plan"] for r in rows]


@pytest.mark.parametrize("reader", ["duckdb", "polars"])
def test_the_log_is_partitioned_by_model_and_date(
    make_client: Any, tmp_path: Path, reader: str
) -> None:
    client = make_client("linear", "forest")
    client.post("/predict", json={"instances": [[1.0]]})
    client.post("/models/forest/predict", json={"instances": [[0.0] * 20]})
    client.__exit__(None, None, None)
    pattern = f"{tmp_path}/logs/predictions/**/*.parquet"
    if reader == "duckdb":
        rows = duckdb.sql(
            f"SELECT DISTINCT model, CAST(date AS VARCHAR) FROM read_parquet('{pattern}', hive_partitioning=true, union_by_name=true)"  # noqa: E501
        ).fetchall()
    else:
        frame = (
            pl.scan_parquet(pattern, hive_partitioning=True, missing_columns="insert")
            .select("model", "date")
            .collect()
        )
        rows = {(m, str(d)) for m, d in frame.iter_rows()}
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert set(rows) == {("linear", today), ("forest", today)}


def test_recovery_leaves_alone_a_spool_another_server_is_still_making(tmp_path: Path) -> None:
    # Workers of one server start together and each recovers unlocked spools at start: a
    # spool is made under a hidden name and shown only once its owner holds its lock.
    spool_root = tmp_path / "spool"
    making = spool_root / ".4242-1700000000000-1"
    making.mkdir(parents=True)
    (making / ".lock").touch()
    (making / "predictions~m~1~2026-01-01.arrows").write_bytes(b"")

    assert recover(tmp_path / "logs", spool_root) == 0
    assert making.is_dir()
    assert not (tmp_path / "logs" / "predictions").exists()


def test_recovery_removes_a_hidden_spool_whose_maker_died_before_showing_it(
    tmp_path: Path,
) -> None:
    # A server killed between making its spool and renaming it leaves an empty hidden folder.
    spool_root = tmp_path / "spool"
    abandoned = spool_root / ".4242-1700000000000-1"
    abandoned.mkdir(parents=True)
    (abandoned / ".lock").touch()
    an_hour_ago = time.time() - 3600
    os.utime(abandoned, (an_hour_ago, an_hour_ago))
    fresh = spool_root / ".4343-1700000000000-1"
    fresh.mkdir()

    assert recover(tmp_path / "logs", spool_root) == 0
    assert not abandoned.exists()
    assert fresh.is_dir()  # may still be in the making


def test_a_spool_is_locked_before_it_is_visible_to_recovery(tmp_path: Path) -> None:

    log = _started_log(tmp_path)
    try:
        (visible,) = [p for p in (tmp_path / "spool").iterdir() if not p.name.startswith(".")]
        assert (visible / ".lock").exists()
        assert recover(tmp_path / "logs", tmp_path / "spool") == 0  # locked: left alone
        assert visible.is_dir()
    finally:
        log.close()


def test_a_backlog_of_many_row_requests_is_converted_in_slices_of_bounded_rows(
    make_client: Any, tmp_path: Path
) -> None:
    # The event loop converts the log between requests: a slice of 256 requests of 100 rows
    # each would hold it for 25,600 rows, so a slice stops at CHUNK_ROWS rows.
    from loopml.serve.predlog import CHUNK, CHUNK_ROWS

    client = make_client("linear", log_spool_interval_s=3600.0)  # no conversion meanwhile
    log = client.app.state.log
    rows = [[float(i)] for i in range(100)]
    for _ in range(60):
        assert client.post("/predict", json={"instances": rows}).status_code == 200
    assert len(log._queue) == 60

    taken = log._convert(CHUNK)

    assert taken == -(-CHUNK_ROWS // 100)  # the first entry that reaches the row bound
    assert sum(batch.num_rows for _, _, batch in log._converted) == taken * 100
    client.__exit__(None, None, None)
    assert _count(tmp_path / "logs") == 60 * 100  # the rest is written on shutdown


def test_the_converter_goes_idle_when_another_thread_flushes_its_backlog(tmp_path: Path) -> None:
    import asyncio

    from loopml.serve.predlog import PredictionLog

    log = PredictionLog(tmp_path / "logs", spool_folder=tmp_path / "spool", spool_interval=0.05)
    log.start(convert_in_thread=False)
    calls = 0
    convert = log._convert

    def counting(limit: int) -> int:
        nonlocal calls
        calls += 1
        return convert(limit)

    log._convert = counting  # type: ignore[method-assign]
    _record_failed(log, 2000)

    async def scenario() -> int:
        converter = asyncio.create_task(log.convert_forever())
        while calls == 0:
            await asyncio.sleep(0)
        await asyncio.to_thread(log.flush)  # empties the queue under the converter's feet
        before = calls
        await asyncio.sleep(0.5)
        converter.cancel()
        return calls - before

    try:
        idle_calls = asyncio.run(scenario())
    finally:
        log.close()
    assert not log._queue
    assert idle_calls < 20  # a few wake-ups; it used to spin tens of thousands of times


def test_a_roll_that_cannot_publish_is_retried_at_the_next_roll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.serve.logfiles import LogLocation

    log = _started_log(tmp_path)

    def record(n: int) -> None:
        _record_failed(log, n)
        log.flush()

    publish = LogLocation.publish
    monkeypatch.setattr(LogLocation, "publish", _unreachable)
    try:
        record(30)
        assert log._spool is not None
        log._spool.rotate()
        log._spool.publish_rolled()  # the store is out of reach: nothing published, nothing lost
        assert _count(tmp_path / "logs") == 0
        spools = [p for p in (tmp_path / "spool").iterdir() if any(p.glob("*.arrows"))]
        assert len(spools) == 1
        assert recover(tmp_path / "logs", tmp_path / "spool") == 0  # still ours: locked

        monkeypatch.setattr(LogLocation, "publish", publish)
        record(20)
        log._spool.rotate()
        log._spool.publish_rolled()  # back: the earlier spool goes out with this one
        assert _count(tmp_path / "logs") == 50
        assert not [p for p in (tmp_path / "spool").iterdir() if any(p.glob("*.arrows"))]
    finally:
        log.close()
    assert _count(tmp_path / "logs") == 50


def test_a_spool_that_cannot_be_replaced_stays_current_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rotating makes a fresh spool folder; when the disk refuses it, the full spool keeps
    taking rows (it is not queued for publishing while still written to)."""

    log = _started_log(tmp_path)
    try:
        _record_failed(log, 10)
        log.flush()
        spool = log._spool
        assert spool is not None
        current = spool.dir
        rename = Path.rename

        def disk_full(self: Path, target: Any) -> Any:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(Path, "rename", disk_full)  # the fresh folder cannot be shown
        with log._lock, pytest.raises(OSError, match="No space left"):
            spool.rotate()
        monkeypatch.setattr(Path, "rename", rename)
        assert spool.dir == current
        assert spool.pending_rows == 0  # nothing queued for publishing
        _record_failed(log, 5)
        log.flush()  # still writes into the same spool
        assert _spooled_rows(tmp_path / "spool") == 15

        with log._lock:
            spool.rotate()  # the disk is back
            spool.publish_rolled()
        assert _count(tmp_path / "logs") == 15
    finally:
        log.close()
    assert _count(tmp_path / "logs") == 15


def test_a_rotation_the_disk_refuses_is_retried_later_not_at_every_wake_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.serve import predlog

    attempts: list[str] = []
    rename = Path.rename

    def disk_full(self: Path, target: Any) -> Any:
        if self.parent == tmp_path / "spool":  # making a fresh spool folder
            attempts.append(self.name)
            raise OSError(28, "No space left on device")
        return rename(self, target)

    monkeypatch.setattr(predlog, "SPOOL_ROWS_LIMIT", 5)  # the spool is always due to rotate
    log = _started_log(tmp_path, spool_interval=0.02)
    monkeypatch.setattr(Path, "rename", disk_full)
    try:
        _record_failed(log, 10)
        time.sleep(0.6)  # some 30 wake-ups of the writer
        assert len(attempts) == 1
        monkeypatch.setattr(Path, "rename", rename)
    finally:
        log.close()
    assert _count(tmp_path / "logs") == 10


def test_rolling_into_parquet_runs_at_the_lowest_cpu_priority(tmp_path: Path) -> None:
    """Re-encoding every row is the log's heaviest work: it must not slice a busy core's time
    with the requests (the threads answering them keep their priority)."""

    log = _started_log(tmp_path)
    try:
        roller, writer = log._roller, log._thread
        assert roller is not None
        assert writer is not None
        assert roller.native_id is not None
        assert writer.native_id is not None
        # The roller lowers its priority once it runs.
        _wait_until(lambda: _nice(roller.native_id) == 19)
        assert _nice(roller.native_id) == 19
        assert _nice(writer.native_id) == _nice(threading.get_native_id()) < 19
    finally:
        log.close()


def test_the_writer_keeps_spooling_while_a_roll_is_slow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A roll runs beside the writer: requests recorded meanwhile reach the spool (so kill -9
    loses no more than the documented window), and shutdown publishes everything."""
    from loopml.serve import predlog

    rolling, release = threading.Event(), threading.Event()
    roll_folder = predlog._roll_folder

    def slow_roll(*args: Any) -> int:
        rolling.set()
        release.wait(10)
        return roll_folder(*args)

    monkeypatch.setattr(predlog, "_roll_folder", slow_roll)
    log = _started_log(tmp_path, spool_interval=0.05, roll_interval=0.1)
    try:
        _record_failed(log, 10)
        assert rolling.wait(10)  # the first spool is being rolled (and stays stuck)
        _record_failed(log, 15)
        _wait_until(lambda: _spooled_rows(tmp_path / "spool") >= 25)
        assert _spooled_rows(tmp_path / "spool") == 25  # the 15 too, while the roll was stuck
        assert _count(tmp_path / "logs") == 0
    finally:
        release.set()
        log.close()
    assert _count(tmp_path / "logs") == 25


def test_the_writer_rolls_itself_when_the_roller_falls_far_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a core saturated for long the lowest-priority roller may barely run: past a bound
    of rows waiting, the writer rolls at normal priority, so spools on disk stay bounded."""
    from loopml.serve import predlog

    stuck, release = threading.Event(), threading.Event()
    roll_folder = predlog._roll_folder

    def starved_roller(*args: Any) -> int:
        if threading.current_thread().name == "loopml-predlog-roller":
            stuck.set()
            release.wait(10)
        return roll_folder(*args)

    monkeypatch.setattr(predlog, "_roll_folder", starved_roller)
    monkeypatch.setattr(predlog, "PENDING_ROWS_LIMIT", 12)  # more than the first spool
    log = _started_log(tmp_path, spool_interval=0.05, roll_interval=0.1)
    try:
        _record_failed(log, 10)
        assert stuck.wait(10)  # the roller took the first spool and is stuck on it
        _record_failed(log, 15)
        _wait_until(lambda: _count(tmp_path / "logs") >= 15)
        assert _count(tmp_path / "logs") == 15  # published by the writer meanwhile
    finally:
        release.set()
        log.close()
    assert _count(tmp_path / "logs") == 25


def test_while_the_store_is_out_of_reach_the_writer_leaves_retries_to_the_roller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows pile up because publishing fails, not because the roller is starved: the writer
    must not re-encode the oldest spool at every wake-up, and nothing is lost."""
    from loopml.serve import predlog
    from loopml.serve.logfiles import LogLocation

    attempts: list[str] = []
    publish = LogLocation.publish

    def unreachable(*args: Any, **kwargs: Any) -> None:
        attempts.append(threading.current_thread().name)
        raise OSError("the object store cannot be reached")

    monkeypatch.setattr(LogLocation, "publish", unreachable)
    monkeypatch.setattr(predlog, "PENDING_ROWS_LIMIT", 5)
    log = _started_log(tmp_path, spool_interval=0.02, roll_interval=0.5)
    try:
        _record_failed(log, 10)
        time.sleep(1.2)  # some 60 writer wake-ups, two or three rolls
        assert attempts  # the roller tried
        assert attempts.count("loopml-predlog") <= 1  # the writer tried once at most
        monkeypatch.setattr(LogLocation, "publish", publish)
    finally:
        log.close()
    assert _count(tmp_path / "logs") == 10


def _started_log(tmp_path: Path, **timing: float) -> Any:
    """A running log under ``tmp_path`` (``logs``, spool in ``spool``)."""
    from loopml.serve.predlog import PredictionLog

    log = PredictionLog(tmp_path / "logs", spool_folder=tmp_path / "spool", **timing)
    log.start()
    return log


def _wait_until(condition: Any, timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds or ``timeout`` passes (the caller asserts after)."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def _spooled_rows(spool: Path) -> int:
    from loopml.serve.predlog import _read_stream

    return sum(b.num_rows for path in spool.glob("*/*.arrows") for b in _read_stream(path))


def _nice(thread_id: int) -> int:
    stat = Path(f"/proc/self/task/{thread_id}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


def _unreachable(*args: Any, **kwargs: Any) -> None:
    raise OSError("the object store cannot be reached")


def _record_failed(log: Any, n: int) -> None:
    """Record ``n`` failed requests: entries that need no model to be converted."""
    from loopml.serve.predlog import LogEntry

    now = int(time.time() * 1000)
    for i in range(n):
        log.record(
            LogEntry(
                f"r{i}", now, None, "m", "1", "m", False, "predict", 400, "bad", 1.0, None, None
            )
        )
