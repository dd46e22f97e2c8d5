"""Artifact backends for the contract suites: a local folder, fsspec memory, and real S3.

S3 is moto's server on 127.0.0.1 speaking the real S3 HTTP API, reached through s3fs exactly
as a production bucket would be. Each test gets its own root (a fresh folder, memory root or
bucket prefix), and a ``raw`` handle that reads and writes the backend *around* loopml, to
corrupt blobs and to look for leftovers the way an operator would.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

BUCKET = "loopml-test"
S3_BLOCK_SIZE = 5 * 1024 * 1024  # S3's minimum multipart part, so big streams use multipart


@dataclass
class Backend:
    """One artifact root on one backend, plus raw access that bypasses loopml."""

    name: str
    uri: str
    options: dict[str, Any] = field(default_factory=dict)
    local_root: Path | None = None
    s3_client: Any = None
    s3_prefix: str = ""

    def raw_write(self, key: str, data: bytes) -> None:
        """Overwrite ``key`` directly, as a faulty disk or a careless script would."""
        if self.local_root is not None:
            path = self.local_root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        elif self.s3_client is not None:
            self.s3_client.put_object(Bucket=BUCKET, Key=f"{self.s3_prefix}/{key}", Body=data)
        else:
            import fsspec

            fsspec.filesystem("memory").pipe_file(f"{self.uri}/{key}", data)

    def raw_keys(self) -> list[str]:
        """Every object under the root, including temporaries loopml's listing hides."""
        if self.local_root is not None:
            if not self.local_root.exists():
                return []
            return sorted(
                p.relative_to(self.local_root).as_posix()
                for p in self.local_root.rglob("*")
                if p.is_file()
            )
        if self.s3_client is not None:
            pages = self.s3_client.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix=self.s3_prefix + "/"
            )
            start = len(self.s3_prefix) + 1
            return sorted(o["Key"][start:] for page in pages for o in page.get("Contents", []))
        import fsspec

        fs = fsspec.filesystem("memory")
        root = fs._strip_protocol(self.uri)
        return sorted(p[len(root) + 1 :] for p in fs.find(root))

    def uploads_in_progress(self) -> list[str]:
        """Keys of unfinished S3 multipart uploads under this root."""
        assert self.s3_client is not None
        response = self.s3_client.list_multipart_uploads(Bucket=BUCKET, Prefix=self.s3_prefix + "/")
        return [u["Key"] for u in response.get("Uploads", [])]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible HTTP server (moto) on a free port, with one bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def s3_options(endpoint: str) -> dict[str, Any]:
    """storage_options for s3fs, as a user would write them for MinIO or Ceph."""
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        "default_block_size": S3_BLOCK_SIZE,
    }


def _make_backend(name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    if name == "local":
        root = tmp_path / "artifacts"
        return Backend(name, str(root), local_root=root)
    if name == "memory":
        root = f"memory://loopml-tests/{uuid.uuid4().hex}"
        request.addfinalizer(lambda: _clear_memory(root))
        return Backend(name, root)
    import boto3

    endpoint = request.getfixturevalue("s3_endpoint")
    prefix = uuid.uuid4().hex
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    return Backend(
        name,
        f"s3://{BUCKET}/{prefix}",
        options=s3_options(endpoint),
        s3_client=client,
        s3_prefix=prefix,
    )


def _clear_memory(root: str) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    path = fs._strip_protocol(root)
    if fs.exists(path):
        fs.rm(path, recursive=True)


@pytest.fixture(params=["local", "memory", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Every backend: the contract suites run once per entry."""
    return _make_backend(request.param, tmp_path, request)


@pytest.fixture(params=["local", "s3"])
def durable_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Backends whose data outlives the writing process (for crash tests)."""
    return _make_backend(request.param, tmp_path, request)


@pytest.fixture(autouse=True)
def _no_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Real credentials or a profile in the environment must never redirect these tests.
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
