"""The ArtifactStorage contract, run unchanged against every backend (local, memory, S3)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from loopml.artifacts import ArtifactStorage, storage_for_uri
from loopml.errors import InvalidInputError, NotFoundError

from .conftest import Backend


@pytest.fixture
def storage(backend: Backend) -> ArtifactStorage:
    return storage_for_uri(backend.uri, backend.options)


class FailingStream(io.RawIOBase):
    """Yields some bytes, then fails, like a network stream dropping mid-transfer."""

    def __init__(self, good_bytes: int) -> None:
        self.remaining = good_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self.remaining <= 0:
            raise RuntimeError("source stream broke")
        n = min(len(buffer), self.remaining)
        buffer[:n] = b"x" * n
        self.remaining -= n
        return n


def test_bytes_file_objects_and_paths_round_trip(storage: ArtifactStorage, tmp_path: Path) -> None:
    local = tmp_path / "weights.bin"
    local.write_bytes(b"from a path")

    storage.put("a/bytes.txt", b"from bytes")
    storage.put("a/stream.txt", io.BytesIO(b"from a stream"))
    storage.put("b/path.bin", local)

    assert storage.get("a/bytes.txt") == b"from bytes"
    assert storage.get("a/stream.txt") == b"from a stream"
    with storage.open("b/path.bin") as src:
        assert src.read() == b"from a path"


def test_put_replaces_an_existing_object_whole(storage: ArtifactStorage) -> None:
    storage.put("model.onnx", b"version one, rather long")
    storage.put("model.onnx", b"v2")

    assert storage.get("model.onnx") == b"v2"


def test_list_returns_sorted_full_keys_below_a_folder(storage: ArtifactStorage) -> None:
    for key in ["b/2", "a/1", "a/sub/3", "ab/4"]:
        storage.put(key, key.encode())

    assert storage.list() == ["a/1", "a/sub/3", "ab/4", "b/2"]
    assert storage.list("a") == ["a/1", "a/sub/3"]
    assert storage.list("./a/") == ["a/1", "a/sub/3"]
    assert storage.list("missing") == []


def test_an_empty_root_lists_nothing(storage: ArtifactStorage) -> None:
    assert storage.list() == []


def test_exists_is_true_for_objects_and_false_for_folders(storage: ArtifactStorage) -> None:
    storage.put("folder/file", b"x")

    assert storage.exists("folder/file")
    assert not storage.exists("folder")
    assert not storage.exists("folder/other")


def test_reading_a_missing_key_raises_not_found_naming_it(
    storage: ArtifactStorage, tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError, match=r"Artifact 'nope/missing\.bin' not found"):
        storage.get("nope/missing.bin")
    with pytest.raises(NotFoundError, match=r"'nope/missing\.bin' not found"):
        storage.open("nope/missing.bin")
    with pytest.raises(NotFoundError, match=r"'nope/missing\.bin' not found"):
        storage.download("nope/missing.bin", tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_storing_a_missing_local_file_raises_not_found(
    storage: ArtifactStorage, tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError, match=r"Local file .*ghost\.bin.* does not exist"):
        storage.put("k", tmp_path / "ghost.bin")


def test_delete_reports_whether_the_object_existed(storage: ArtifactStorage) -> None:
    storage.put("gone", b"x")

    assert storage.delete("gone") is True
    assert storage.delete("gone") is False
    assert not storage.exists("gone")


def test_download_writes_a_local_file_creating_its_folder(
    storage: ArtifactStorage, tmp_path: Path
) -> None:
    payload = bytes(range(256)) * 5000  # > 1 MiB: more than one chunk
    storage.put("big.bin", payload)
    dest = tmp_path / "new" / "folder" / "big.bin"

    storage.download("big.bin", dest)

    assert dest.read_bytes() == payload
    assert [p.name for p in dest.parent.iterdir()] == ["big.bin"]


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("../escape", r"'\.\.' component"),
        ("a/../../escape", r"'\.\.' component"),
        ("/etc/passwd", "absolute"),
        ("..\\escape", "backslash"),
        ("a\x00b", "NUL byte"),
        ("", "empty"),
    ],
)
def test_keys_that_could_escape_the_root_are_rejected(
    storage: ArtifactStorage, backend: Backend, key: str, reason: str
) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        storage.put(key, b"x")
    with pytest.raises(InvalidInputError, match=reason):
        storage.get(key)
    with pytest.raises(InvalidInputError, match=reason):
        storage.uri(key)
    assert backend.raw_keys() == []


def test_temporary_file_names_are_reserved(storage: ArtifactStorage) -> None:
    with pytest.raises(InvalidInputError, match="reserved for writes in progress"):
        storage.put("a/.loopml-tmp-x", b"x")


def test_a_stream_that_fails_mid_put_leaves_nothing_behind(
    storage: ArtifactStorage, backend: Backend
) -> None:
    storage.put("model.onnx", b"the previous version")

    with pytest.raises(RuntimeError, match="source stream broke"):
        storage.put("model.onnx", io.BufferedReader(FailingStream(3 * 1024 * 1024)))

    assert storage.get("model.onnx") == b"the previous version"
    assert backend.raw_keys() == ["model.onnx"]  # no temporary object left over


def test_uri_names_the_key_under_the_root(storage: ArtifactStorage, backend: Backend) -> None:
    storage.put("tables/t/part-0", b"x")

    uri = storage.uri("tables/t/part-0")

    assert uri == f"{backend.uri}/tables/t/part-0"
    assert storage.uri("tables/t") == f"{backend.uri}/tables/t"
