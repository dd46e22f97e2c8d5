"""Choosing a backend from a URI: the scheme table, lazy imports and their error messages."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import loopml.artifacts
from loopml.artifacts import ArtifactStore, storage_for_uri
from loopml.artifacts.local import LocalStorage
from loopml.artifacts.storage import SCHEMES
from loopml.config import ARTIFACT_SCHEMES
from loopml.errors import (
    BackendUnavailableError,
    InvalidInputError,
    MissingDependencyError,
    NotFoundError,
)

HEAVY_MODULES = ("fsspec", "s3fs", "boto3", "botocore", "aiobotocore", "aiohttp")


def test_the_public_api_is_exactly_the_declared_names() -> None:
    assert sorted(loopml.artifacts.__all__) == [
        "ArtifactStorage",
        "ArtifactStore",
        "Blob",
        "check_artifact_path",
        "storage_for_uri",
    ]
    for name in loopml.artifacts.__all__:
        assert getattr(loopml.artifacts, name).__doc__


def test_importing_the_package_loads_no_backend_library() -> None:
    code = (
        "import sys, loopml.artifacts\n"
        f"print(','.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_settings_and_storage_accept_the_same_schemes() -> None:
    assert set(SCHEMES) == set(ARTIFACT_SCHEMES)


@pytest.mark.parametrize("uri", ["gs://bucket/prefix", "ftp://host/x", "hdfs://nn/path"])
def test_an_unknown_scheme_fails_listing_the_valid_ones(uri: str) -> None:
    scheme = uri.split("://")[0]
    expected = (
        f"Artifact root '{uri}' uses the unsupported scheme '{scheme}://'; "
        "valid: a local path, file://, s3://, memory://"
    )

    with pytest.raises(InvalidInputError, match=re.escape(expected)):
        storage_for_uri(uri)
    with pytest.raises(InvalidInputError, match=re.escape(expected)):
        ArtifactStore(uri)


def test_missing_s3fs_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)  # makes `import s3fs` raise ImportError
    store = ArtifactStore("s3://bucket/prefix")  # building it needs nothing yet

    with pytest.raises(MissingDependencyError, match=re.escape("pip install 'loopml[s3]'")):
        storage_for_uri("s3://bucket/prefix")
    with pytest.raises(
        MissingDependencyError,
        match=r"Storing artifacts at 's3://bucket/prefix' needs the optional package 's3fs'",
    ):
        store.put_bytes(b"x")


def test_an_s3_uri_without_a_bucket_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match=r"Artifact root 's3://' names no bucket"):
        storage_for_uri("s3://")


def test_file_urls_and_plain_paths_open_the_same_local_folder(tmp_path: Path) -> None:
    from_url = storage_for_uri(tmp_path.as_uri())
    from_path = storage_for_uri(str(tmp_path))

    assert isinstance(from_url, LocalStorage)
    assert isinstance(from_path, LocalStorage)
    assert from_url.root == from_path.root == tmp_path


def test_a_relative_local_root_is_fixed_at_construction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    storage = storage_for_uri("artifacts")
    monkeypatch.chdir("/")

    assert storage.uri("k") == str(tmp_path / "artifacts" / "k")


def test_a_file_url_on_another_host_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="names the host 'fileserver'"):
        storage_for_uri("file://fileserver/share/artifacts")


def test_local_roots_take_no_storage_options(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"takes no storage options \(got \['key'\]\)"):
        storage_for_uri(str(tmp_path), {"key": "secret"})


def test_constructing_a_store_touches_nothing(tmp_path: Path) -> None:
    root = tmp_path / "not-yet"

    store = ArtifactStore(str(root))
    assert not root.exists()

    store.put_bytes(b"first write creates it")
    assert root.is_dir()


def test_an_unreachable_object_store_raises_backend_unavailable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}},
    }
    started = time.monotonic()
    store = ArtifactStore("s3://bucket/prefix", options)
    assert time.monotonic() - started < 0.5  # no connection attempted by the constructor

    with pytest.raises(
        BackendUnavailableError,
        match=rf"Artifact storage 's3://bucket/prefix' failed while checking .*"
        rf"object store at {endpoint} is reachable",
    ):
        store.put_bytes(b"x")


def test_the_repr_never_shows_credentials() -> None:
    store = ArtifactStore("s3://bucket/prefix", {"key": "AKIA-SECRET", "secret": "hunter2"})

    assert repr(store) == "ArtifactStore('s3://bucket/prefix')"
    assert "hunter2" not in repr(store.storage)


def test_writing_to_a_missing_bucket_says_to_create_it(s3_endpoint: str) -> None:
    from .conftest import s3_options

    store = ArtifactStore("s3://no-such-bucket/prefix", s3_options(s3_endpoint))

    with pytest.raises(
        NotFoundError,
        match=r"Cannot store artifact 'blobs/.*': the bucket or folder of "
        r"'s3://no-such-bucket/prefix' does not exist \(hint: create the bucket first",
    ):
        store.put_bytes(b"x")
