"""The prediction log: every prediction row, written off the hot path, readable with DuckDB.

Layout under the log folder (Hive partitions, so DuckDB and polars see ``model`` and ``date``)::

    predictions/model=<name>/date=<YYYY-MM-DD>/part-<pid>-<start>-<seq>.parquet
    feedback/model=<name>/date=<YYYY-MM-DD>/part-....parquet
    _spool/<pid>-<start>-<seq>/...arrows            (in-progress, not for readers)

The log folder may also be an object store (``s3://bucket/serving/logs``, any fsspec URL):
Parquet files are then published there with the same layout, and the spool stays on local
disk (``<home>/serving/spool/<digest of the URL>``, see :mod:`loopml.serve.logfiles`).

One row per predicted row: ``request_id``, ``row`` (its index in the request), ``timestamp``
(UTC, ms), ``model``, ``version``, ``target`` (alias or version served), ``shadow``,
``protocol``, ``status``, ``error``, ``latency_ms`` (routing to answer, the whole request's
rows), ``inputs`` (a struct with one field per model input column), ``prediction`` and
``outputs`` (a struct of the other outputs, e.g. class probabilities). A request whose input
the model refused, or whose reply was an error after the model answered (a V2 request asking
for an output the model lacks), logs one row with ``status``/``error`` set and null inputs and
outputs; requests that fail before a model is chosen (unparsable body, unknown model) are not
logged. Versions with different inputs land in different files; read with
``read_parquet('.../predictions/**/*.parquet', union_by_name=true)``.

How it stays off the hot path: a request only appends a tuple to a deque (about 1 µs); an
answered one, only once its reply is written (:func:`loopml.serve.state.record_answered`). Every
``spool_interval`` seconds (default 0.2) what accumulated becomes Arrow record batches, a few
hundred requests at a time with the event loop free in between (:meth:`convert_forever`; or
on the writer thread when no loop runs it), and the writer thread appends them to this
process's spool files (Arrow IPC streams, written straight to the OS). Every
``roll_interval`` seconds (default 60), on shutdown, and when a spool grows large, the writer
starts a fresh spool and a roller thread turns the full one into Parquet files and deletes it
(shutdown rolls what is left itself), so a busy server writes about one file per model and
minute, not one per request. Rolling is the log's heaviest work (re-encoding every row), so the
roller runs at the lowest CPU priority (``nice`` 19 on Linux, which gives each thread its own):
on a busy core it takes the moments when no request is being answered instead of slicing time
with them. Should it fall more than :data:`PENDING_ROWS_LIMIT` rows behind (a core saturated
for long), the writer rolls at normal priority too; while the store is out of reach, spools
wait on disk and the roller retries.

Durability: graceful shutdown (SIGTERM through uvicorn, or :meth:`PredictionLog.close`) rolls
everything into Parquet: nothing is lost. Under ``kill -9`` what was already spooled survives
(it is in the OS, not the process), and is rolled into Parquet by :func:`recover`, which every
new server runs at start (or ``loopml serve recover-log``). **Loss window under kill -9: the
predictions recorded during the last ``spool_interval`` (0.2 s by default) before the kill,
plus the time to convert them.** A power cut can lose more: the spool is not fsynced. A roll
that cannot publish (an object store out of reach) keeps its spool on local disk and tries
again at every later roll.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from loopml.serve.logfiles import LogLocation
from loopml.serve.recent import RecentIds

__all__ = ["LogEntry", "PredictionLog", "recover"]

logger = logging.getLogger("loopml.serve.predlog")

SPOOL_ROWS_LIMIT = 200_000
# Rows in full spools waiting for the roller beyond which the writer rolls them itself: on a
# saturated core, about 2 s of 100-row requests or 100 s of one-row requests, deferred.
PENDING_ROWS_LIMIT = 1_000_000
# What is converted between two requests (on the event loop) or two releases of the GIL (on
# the writer thread): at most this many entries, and only as many as hold this many rows, so
# that a slice of 100-row requests blocks no longer than a slice of one-row requests.
CHUNK = 256
CHUNK_ROWS = 4096
# Seconds before a spool rotation that failed (a full disk) is tried again; rows keep going
# into the current spool meanwhile.
ROTATE_RETRY_S = 5.0
# A hidden spool folder older than this was left by a process killed while making it.
ABANDONED_AFTER_S = 60.0


class LogEntry(NamedTuple):
    """One request, as recorded on the hot path (converted later by the writer thread)."""

    request_id: str
    timestamp_ms: int
    model: Any  # the LoadedModel that answered (or None when the request never reached one)
    name: str
    version: str
    target: str
    shadow: bool
    protocol: str
    status: int
    error: str | None
    latency_ms: float
    inputs: dict[str, np.ndarray] | None
    outputs: list[Any] | None


class FeedbackEntry(NamedTuple):
    request_id: str
    row: int | None
    timestamp_ms: int
    name: str
    version: str
    label: Any


class PredictionLog:
    """Asynchronous, partitioned prediction and feedback log of one server process."""

    def __init__(
        self,
        folder: str | Path | LogLocation,
        *,
        spool_interval: float = 0.2,
        roll_interval: float = 60.0,
        log_inputs: bool = True,
        recent_ids: int = 1_000_000,
        on_rows: Callable[[str, str, np.ndarray], None] | None = None,
        spool_folder: str | Path | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.location = LogLocation.of(folder, storage_options=storage_options)
        self.folder = self.location.local or Path(self.location.url)  # for local readers
        self.spool_folder = (
            Path(spool_folder) if spool_folder is not None else self.location.default_spool(_home())
        )
        self.spool_interval = spool_interval
        self.roll_interval = roll_interval
        self.log_inputs = log_inputs
        self._on_rows = on_rows
        self._queue: collections.deque[LogEntry] = collections.deque()
        self._feedback: collections.deque[FeedbackEntry] = collections.deque()
        # request_id -> (name, version, rows) of the last ``recent_ids`` answered requests
        self.recent = RecentIds(recent_ids)
        # Arrow batches built from the queue, waiting for the writer thread to spool them.
        self._converted: collections.deque[tuple[str, tuple[str, str, str], Any]] = (
            collections.deque()
        )
        self._convert_in_thread = True
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._roller: threading.Thread | None = None
        self._roll_wake = threading.Event()
        self._spool: _Spool | None = None
        self._lock = threading.Lock()

    # ---- hot path --------------------------------------------------------------------

    def record(self, entry: LogEntry) -> None:
        """Queue one request for the log (constant time; never blocks on I/O)."""
        self._queue.append(entry)
        if entry.status == 200 and not entry.shadow:
            rows = 0 if entry.outputs is None else len(entry.outputs[0])
            self.recent.add(entry.request_id, entry.name, entry.version, rows)

    def record_feedback(self, entry: FeedbackEntry) -> None:
        self._feedback.append(entry)

    # ---- lifecycle -------------------------------------------------------------------

    def start(self, *, convert_in_thread: bool = True) -> None:
        """Recover spools left by killed processes, then start the writer thread.

        With ``convert_in_thread=False`` the owner runs :meth:`convert_forever` on its event
        loop: building Arrow batches there, a few hundred entries between two requests, costs
        the server less than a thread fighting the event loop for the GIL on a busy core.
        """
        self._convert_in_thread = convert_in_thread
        if self._thread is not None:
            return  # already running (an app whose lifespan starts twice)
        # Import now what the writer needs: a first import on the writer thread holds the GIL
        # for a few hundred milliseconds while requests wait (pyarrow loads pandas lazily
        # the first time it converts Python lists).
        import pandas  # noqa: F401
        import pyarrow.compute
        import pyarrow.ipc
        import pyarrow.parquet  # noqa: F401

        recover(self.location, self.spool_folder)
        self._spool = _Spool(self.spool_folder, self.location)
        self._thread = threading.Thread(target=self._loop, name="loopml-predlog", daemon=True)
        self._thread.start()
        self._roller = threading.Thread(
            target=self._roll_loop, name="loopml-predlog-roller", daemon=True
        )
        self._roller.start()

    async def convert_forever(self) -> None:
        """Turn queued entries into Arrow batches on the event loop, in small slices."""
        import asyncio

        while True:
            await asyncio.sleep(self.spool_interval)
            try:
                # Convert what was queued at wake-up, not what keeps arriving meanwhile: under
                # steady load, chasing the queue would convert one or two entries per slice,
                # and each Arrow batch has a fixed cost of a few hundred microseconds.
                backlog = len(self._queue)
                while backlog > 0 or self._feedback:
                    taken = self._convert(min(CHUNK, max(backlog, 1)))
                    # flush() on another thread may have emptied the queue meanwhile.
                    backlog = min(backlog - taken, len(self._queue))
                    await asyncio.sleep(0)  # let waiting requests through between slices
            except Exception:  # the log must never take the server down
                logger.exception("prediction log conversion failed; will retry")
            self._wake.set()

    def flush(self) -> None:
        """Write everything queued so far to the spool (used by tests and shutdown)."""
        with self._lock:
            self._drain()

    def close(self) -> None:
        """Write everything and roll it into Parquet; safe to call twice."""
        self._stop.set()
        self._wake.set()
        self._roll_wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._roller is not None:
            self._roller.join(timeout=30)
            if self._roller.is_alive():
                logger.warning(
                    "the prediction log roller is still publishing a spool at shutdown; if the "
                    "process ends first, the next server on this log publishes it"
                )
            self._roller = None
        with self._lock:
            self._drain()
            if self._spool is not None:
                self._spool.remove()  # publishes what is left, without a fresh spool first
                self._spool = None

    # ---- writer thread ---------------------------------------------------------------

    def _loop(self) -> None:
        last_roll = time.monotonic()
        rotate_after = 0.0  # a rotation that failed (a full disk) waits before it is retried
        while not self._stop.is_set():
            self._wake.wait(self.spool_interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                with self._lock:
                    self._drain(convert=self._convert_in_thread)
                    spool = self._spool
                    now = time.monotonic()
                    if (
                        spool is not None
                        and now >= rotate_after
                        and (
                            now - last_roll >= self.roll_interval or spool.rows >= SPOOL_ROWS_LIMIT
                        )
                    ):
                        last_roll = now
                        try:
                            spool.rotate()
                        except OSError:
                            # Not at every wake-up while the disk refuses a fresh spool folder.
                            rotate_after = now + ROTATE_RETRY_S
                            raise
                        self._roll_wake.set()
                if (
                    spool is not None
                    and spool.pending_rows > PENDING_ROWS_LIMIT
                    and not spool.failing  # behind because the store is down: the roller retries
                ):
                    spool.publish_rolled()  # the roller is starved: roll at normal priority
            except Exception:  # the log must never take the server down
                logger.exception("prediction log writer failed; will retry")

    # ---- roller thread ---------------------------------------------------------------

    def _roll_loop(self) -> None:
        _lowest_priority()
        while not self._stop.is_set():
            # Also on a timer: a spool that could not be published is tried again.
            self._roll_wake.wait(self.roll_interval)
            self._roll_wake.clear()
            spool = self._spool
            if self._stop.is_set() or spool is None:
                break
            try:
                # One spool at a time, so that shutdown waits for one roll at most.
                while not self._stop.is_set() and spool.publish_next():
                    pass
            except Exception:  # the log must never take the server down
                logger.exception("prediction log roller failed; will retry")

    def _drain(self, *, convert: bool = True) -> None:
        """Convert what is queued (unless the event loop does it) and spool every batch."""
        if self._spool is None:
            return
        while convert and (self._queue or self._feedback):
            self._convert(CHUNK)
            # Hand the GIL back between chunks: a request arriving during a long drain would
            # otherwise wait out Python's whole switch interval (5 ms).
            time.sleep(0)
        converted = self._converted
        while converted:
            table, key, batch = converted.popleft()
            self._spool.write(table, key, batch)

    def _convert(self, limit: int) -> int:
        """Build Arrow batches from up to ``limit`` queued entries (and queued feedback).

        Stops early once the entries taken hold :data:`CHUNK_ROWS` rows; returns how many
        entries it took.
        """
        from loopml.serve.logschema import feedback_batches, prediction_batches

        queue = self._queue
        entries: list[LogEntry] = []
        rows = 0
        while queue and len(entries) < limit and rows < CHUNK_ROWS:
            entry = queue.popleft()
            entries.append(entry)
            rows += len(entry.outputs[0]) if entry.outputs else 1
        if entries:
            for key, batch, served in prediction_batches(entries, log_inputs=self.log_inputs):
                self._converted.append(("predictions", key, batch))
                if self._on_rows is not None and served is not None and len(served):
                    try:
                        self._on_rows(key[0], key[1], served)
                    except Exception:
                        logger.exception("prediction summary callback failed")
        feedback: list[FeedbackEntry] = []
        while self._feedback:
            feedback.append(self._feedback.popleft())
        for key, batch in feedback_batches(feedback) if feedback else ():
            self._converted.append(("feedback", key, batch))
        return len(entries)


class _Spool:
    """This process's spool folder: one Arrow IPC stream per (table, model, version)."""

    def __init__(self, root: Path, location: LogLocation) -> None:
        self.root = root
        self.location = location
        self.rows = 0
        self._prefix = f"{os.getpid()}-{int(time.time() * 1000)}"
        self._seq = 0
        # Rolled spools not yet published: (folder, its held lock, its rows). Added to by
        # rotate(), taken from one at a time by publish_next() (the roller, the writer when
        # the roller falls behind, close()), always under _pending_lock; a spool being
        # published is out of the list, so two threads never publish the same one.
        self._unpublished: list[tuple[Path, Any, int]] = []
        self._pending_lock = threading.Lock()
        self.pending_rows = 0
        self.failing = False  # whether the last publish failed (the store is out of reach)
        self._open()

    def _open(self) -> None:
        """Make a fresh spool folder and write into it from now on.

        Nothing changes until the folder is ready: if making it fails (a full or read-only
        disk), the spool being written stays the current one, its streams open.
        """
        self._seq += 1
        folder = self.root / f"{self._prefix}-{self._seq}"
        # Locked before it is visible: a server starting next to this one (another worker)
        # recovers every unlocked spool it finds, and would take a half-made one for dead.
        making = self.root / f".{folder.name}"
        making.mkdir(parents=True, exist_ok=True)
        lock_file = open(making / ".lock", "w")  # noqa: SIM115 - held while alive
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            making.rename(folder)
        except BaseException:
            lock_file.close()  # the hidden folder left behind is removed by recover()
            raise
        self.dir, self._lock_file = folder, lock_file
        self._writers: dict[tuple[str, str, str, str], Any] = {}
        self.rows = 0

    def write(self, table: str, key: tuple[str, str, str], batch: Any) -> None:
        import pyarrow as pa

        full_key = (table, *key)
        writer = self._writers.get(full_key)
        if writer is None:
            name, version, date = key
            path = self.dir / f"{table}~{_safe(name)}~{_safe(version)}~{date}.arrows"
            sink = _sink(path)
            writer = pa.ipc.new_stream(sink, batch.schema)
            self._writers[full_key] = (writer, sink, batch.schema)
        else:
            writer, sink, schema = writer
            if batch.schema != schema:
                # A new schema for the same model version (rare: e.g. nulls typed
                # differently). Close this stream and start another next to it.
                writer.close()
                sink.close()
                name, version, date = key
                path = (
                    self.dir
                    / f"{table}~{_safe(name)}~{_safe(version)}~{date}~{time.monotonic_ns()}.arrows"
                )
                sink = _sink(path)
                writer = pa.ipc.new_stream(sink, batch.schema)
                self._writers[full_key] = (writer, sink, batch.schema)
        writer.write_batch(batch)
        sink.flush()  # each batch reaches the OS, in one write instead of one per buffer
        self.rows += batch.num_rows

    def rotate(self) -> None:
        """Start a fresh spool; the full one waits for :meth:`publish_rolled` (cheap).

        The fresh spool is made first: if that fails, the full one stays current (and keeps
        taking rows) instead of being queued for publishing while still written to. A queued
        spool that cannot be published (an object store out of reach) stays on disk, still
        locked by this process, and is tried again later; should the process die first,
        :func:`recover` publishes it at the next start.
        """
        full = (self.dir, self._lock_file, self._writers, self.rows)
        self._open()
        self._retire(*full)

    def remove(self) -> None:
        """Roll what is left and remove the spool (shutdown)."""
        self._retire(self.dir, self._lock_file, self._writers, self.rows)
        self._writers = {}
        self.publish_rolled()
        for folder, lock, _ in self._unpublished:
            logger.error(
                "prediction log spool %s could not be published; the next server started "
                "on this log (or `loopml serve recover-log`) publishes it",
                folder,
            )
            lock.close()
        self._unpublished = []

    def _retire(self, folder: Path, lock: Any, writers: dict[Any, Any], rows: int) -> None:
        """Close a spool's streams and queue it for publishing."""
        for writer, sink, _ in writers.values():
            _close(writer, sink)
        rows = rows if writers else 0
        with self._pending_lock:
            self._unpublished.append((folder, lock, rows))
            self.pending_rows += rows

    def publish_rolled(self) -> None:
        """Publish every spool queued so far, oldest first, until one fails (it stays queued)."""
        while self.publish_next():
            pass

    def publish_next(self) -> bool:
        """Publish the oldest queued spool; ``False`` when none is queued or it failed.

        A spool that fails stays queued in front, and :attr:`failing` says so until a later
        one succeeds. The roller and the writer may both call this: each takes its own spool.
        """
        with self._pending_lock:
            if not self._unpublished:
                return False
            item = self._unpublished.pop(0)
        folder, lock, rows = item
        try:
            if rows:
                _roll_folder(folder, self.location)
        except Exception as exc:  # the store is out of reach: keep it, try again later
            logger.warning(
                "publishing prediction log spool %s to %s failed (%s); will retry",
                folder,
                self.location.url,
                exc,
            )
            with self._pending_lock:
                self._unpublished.insert(0, item)
            self.failing = True
            return False
        self.failing = False
        with self._pending_lock:
            self.pending_rows -= rows
        try:
            _remove_dir(folder)
        except OSError as exc:  # published: at worst the next start publishes it again
            logger.warning("removing published spool %s failed: %s", folder, exc)
        finally:
            lock.close()
        return True


def _lowest_priority() -> None:
    """Give the calling thread the lowest CPU priority (``nice`` 19), where the OS allows.

    On Linux the nice value belongs to the thread (``setpriority`` on its thread id), so the
    threads answering requests keep theirs. Elsewhere that call would name a process, so the
    roller keeps the process's priority there.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _sink(path: Path) -> Any:
    import pyarrow as pa

    # A batch of a few hundred requests is some tens of KiB; larger ones pass straight through.
    return pa.BufferedOutputStream(pa.OSFile(str(path), "wb"), buffer_size=256 * 1024)


def _close(writer: Any, sink: Any) -> None:
    """Close one spool stream; a failure (a full disk) must not stop the roll that follows."""
    try:
        writer.close()
    except Exception:
        logger.exception("closing a prediction log spool stream failed")
    try:
        sink.close()
    except Exception:
        logger.exception("closing a prediction log spool file failed")


def recover(
    folder: str | Path | LogLocation,
    spool_folder: str | Path | None = None,
    *,
    storage_options: dict[str, Any] | None = None,
) -> int:
    """Roll spools left by dead processes (``kill -9``) into Parquet; returns rows recovered.

    A live process holds a lock on its spool, so running this next to live servers is safe.
    """
    location = LogLocation.of(folder, storage_options=storage_options)
    root = Path(spool_folder) if spool_folder is not None else location.default_spool(_home())
    if not root.is_dir():
        return 0
    recovered = 0
    for spool in sorted(root.iterdir()):
        if spool.name.startswith("."):
            # Still being made by a live process (see _Spool._open), or left by one killed in
            # the microseconds between making and showing it: such a folder never holds data.
            _remove_if_abandoned(spool)
            continue
        with _claimed(spool) as dead:
            if dead:
                recovered += _roll_folder(spool, location)
                _remove_dir(spool)
    return recovered


def _roll_folder(spool: Path, location: LogLocation) -> int:
    """Publish each stream of ``spool`` as a Parquet file in its partition; returns rows."""
    import pyarrow as pa

    rows = 0
    for path in sorted(spool.glob("*.arrows")):
        batches = _read_stream(path)
        if not batches:
            continue
        # One chunk per column: Parquet writes many small chunks (each with its own
        # dictionary) about twice as slowly.
        table = pa.Table.from_batches(batches).combine_chunks()
        parts = path.stem.split("~")
        kind, name, date = parts[0], parts[1], parts[3]
        # Named after the spool file: recovering the same spool twice overwrites, never doubles.
        file_name = f"part-{spool.name}-{path.stem.split('~', 1)[1].replace('~', '-')}.parquet"
        location.publish(table, kind, name, date, file_name)
        rows += table.num_rows
    return rows


def _read_stream(path: Path) -> list[Any]:
    """Every complete record batch of an IPC stream (a killed writer may leave a torn tail)."""
    import pyarrow as pa

    batches = []
    try:
        with pa.OSFile(str(path), "rb") as source:
            reader = pa.ipc.open_stream(source)
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    break
    except (pa.ArrowInvalid, OSError, EOFError):
        pass  # keep the batches read before the torn tail
    return batches


def _home() -> Path:
    from loopml.config import Settings

    return Settings.from_env().home


def _remove_if_abandoned(making: Path) -> None:
    """Remove a hidden spool folder whose maker died before showing it (it holds no rows)."""
    try:
        age = time.time() - making.stat().st_mtime
    except OSError:
        return
    if age < ABANDONED_AFTER_S or not making.is_dir():
        return  # a live maker shows its folder within microseconds of making it
    with _claimed(making) as dead, contextlib.suppress(OSError):
        if dead:
            _remove_dir(making)  # best effort: an empty folder left behind costs nothing


@contextlib.contextmanager
def _claimed(spool: Path) -> Iterator[bool]:
    """Take ``spool``'s lock if its process is gone: yields whether it was taken (and is held
    for the block). A live process holds its spool's lock for as long as it runs."""
    try:
        handle = open(spool / ".lock", "a")  # noqa: SIM115 - closed below
    except OSError:
        yield False
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False  # its process is alive
            return
        yield True


def _remove_dir(folder: Path) -> None:
    # The lock goes last: a folder without its lock file looks unowned to recover().
    paths = sorted(folder.iterdir(), key=lambda p: p.name == ".lock") if folder.exists() else []
    for path in paths:
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()


def _safe(text: str) -> str:
    """A partition value safe in a path (model names are already restricted by the registry)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)
