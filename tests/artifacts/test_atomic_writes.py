"""A writer killed with SIGKILL mid-upload leaves no partial artifact under the real key."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys

from loopml.artifacts import storage_for_uri

from .conftest import Backend

STALL_AFTER = 6 * 1024 * 1024  # past one S3 multipart part, so bytes really are in flight
KEY = "models/big.onnx"

# The child streams STALL_AFTER bytes into put(), says so, then hangs inside put() until killed.
CHILD = """
import io, json, sys, time
from loopml.artifacts import storage_for_uri

uri, options, key, stall_after = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])

class Stalling(io.RawIOBase):
    sent = 0
    def readable(self):
        return True
    def readinto(self, buffer):
        if self.sent >= stall_after:
            print("STALLED", flush=True)
            time.sleep(120)
        n = min(len(buffer), stall_after - self.sent)
        buffer[:n] = b"w" * n
        self.sent += n
        return n

storage_for_uri(uri, options).put(key, io.BufferedReader(Stalling(), 1024 * 1024))
print("FINISHED", flush=True)
"""


def kill_writer_mid_put(backend: Backend) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            backend.uri,
            json.dumps(backend.options),
            KEY,
            str(STALL_AFTER),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], 60)
        assert ready, "the writer never reached the middle of its upload"
        assert child.stdout.readline().strip() == "STALLED"
        assert child.poll() is None  # still inside put()
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL


def test_a_writer_killed_mid_put_leaves_no_partial_artifact(durable_backend: Backend) -> None:
    storage = storage_for_uri(durable_backend.uri, durable_backend.options)
    storage.put(KEY, b"the previous, complete version")

    kill_writer_mid_put(durable_backend)

    # The killed write really was half-done: its bytes sit in a hidden temporary...
    if durable_backend.local_root is not None:
        leftovers = [k for k in durable_backend.raw_keys() if ".loopml-tmp-" in k]
        assert len(leftovers) == 1
        assert os.path.getsize(durable_backend.local_root / leftovers[0]) >= STALL_AFTER // 2
    else:
        assert any(".loopml-tmp-" in k for k in durable_backend.uploads_in_progress())
    # ...but the real key still holds the previous version, whole, and listings hide the rest.
    assert storage.get(KEY) == b"the previous, complete version"
    assert storage.list() == [KEY]


def test_a_first_write_killed_mid_put_leaves_no_key_at_all(durable_backend: Backend) -> None:
    storage = storage_for_uri(durable_backend.uri, durable_backend.options)

    kill_writer_mid_put(durable_backend)

    assert not storage.exists(KEY)
    assert storage.list() == []
    assert KEY not in durable_backend.raw_keys()
    storage.put(KEY, b"a later write succeeds")
    assert storage.get(KEY) == b"a later write succeeds"
