"""ArtifactStore over every backend: dedup, verified reads, atomic downloads, locations."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from loopml.artifacts import ArtifactStore, Blob
from loopml.errors import IntegrityError, InvalidInputError, NotFoundError

from .conftest import Backend

MISSING_SHA = hashlib.sha256(b"never stored").hexdigest()


@pytest.fixture
def store(backend: Backend) -> ArtifactStore:
    return ArtifactStore(backend.uri, backend.options)


def blob_key(sha: str) -> str:
    return f"blobs/{sha[:2]}/{sha[2:4]}/{sha}"


def test_put_bytes_returns_the_sha256_and_size(store: ArtifactStore) -> None:
    blob = store.put_bytes(b"hello")

    assert blob == Blob(hashlib.sha256(b"hello").hexdigest(), 5)
    assert store.get_bytes(blob.sha256) == b"hello"
    assert store.exists(blob.sha256)


def test_blobs_are_laid_out_by_hash_prefix(store: ArtifactStore, backend: Backend) -> None:
    blob = store.put_bytes(b"layout")

    assert backend.raw_keys() == [blob_key(blob.sha256)]


def test_identical_content_is_stored_once(
    store: ArtifactStore, backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "same.bin"
    local.write_bytes(b"identical content")
    first = store.put_bytes(b"identical content")
    uploads: list[str] = []
    real_put = store.storage.put
    monkeypatch.setattr(
        store.storage, "put", lambda key, src: uploads.append(key) or real_put(key, src)
    )

    again = store.put_bytes(b"identical content")
    from_file = store.put_file(local)

    assert first == again == from_file
    assert uploads == []  # the second and third copies were never sent
    assert backend.raw_keys() == [blob_key(first.sha256)]


def test_put_file_streams_content_larger_than_one_chunk(
    store: ArtifactStore, tmp_path: Path
) -> None:
    payload = os.urandom(3 * 1024 * 1024 + 17)
    local = tmp_path / "model.onnx"
    local.write_bytes(payload)

    blob = store.put_file(local)

    assert blob == Blob(hashlib.sha256(payload).hexdigest(), len(payload))
    assert store.get_bytes(blob.sha256) == payload


def test_an_empty_file_is_a_valid_blob(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")

    blob = store.put_file(tmp_path / "empty")

    assert blob.size == 0
    assert store.get_bytes(blob.sha256) == b""


def test_download_writes_the_verified_blob(store: ArtifactStore, tmp_path: Path) -> None:
    payload = os.urandom(2 * 1024 * 1024 + 3)
    blob = store.put_bytes(payload)
    dest = tmp_path / "out" / "model.onnx"

    assert store.download(blob.sha256, dest) == blob
    assert dest.read_bytes() == payload


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: b"evil" + data[4:], id="overwritten"),
        pytest.param(lambda data: data[:-1], id="truncated"),
    ],
)
def test_a_corrupted_blob_raises_integrity_error_naming_both_hashes(
    store: ArtifactStore, backend: Backend, tmp_path: Path, damage: object
) -> None:
    data = b"weights " * 1000
    blob = store.put_bytes(data)
    bad = damage(data)  # type: ignore[operator]
    backend.raw_write(blob_key(blob.sha256), bad)
    bad_sha = hashlib.sha256(bad).hexdigest()
    expected = rf"Artifact blob {blob.sha256} at .* is corrupt: expected sha256 {blob.sha256}, "
    expected += rf"read {len(bad)} bytes with sha256 {bad_sha}"

    with pytest.raises(IntegrityError, match=expected):
        store.get_bytes(blob.sha256)
    dest = tmp_path / "dl" / "model.bin"
    with pytest.raises(IntegrityError, match=expected):
        store.download(blob.sha256, dest)
    assert list(dest.parent.iterdir()) == []  # neither the file nor a temporary remains


def test_a_failed_verified_download_keeps_the_previous_file(
    store: ArtifactStore, backend: Backend, tmp_path: Path
) -> None:
    blob = store.put_bytes(b"good")
    backend.raw_write(blob_key(blob.sha256), b"bad!")
    dest = tmp_path / "model.bin"
    dest.write_bytes(b"previous")

    with pytest.raises(IntegrityError, match="is corrupt"):
        store.download(blob.sha256, dest)

    assert dest.read_bytes() == b"previous"


def test_a_missing_blob_raises_not_found_naming_the_sha(
    store: ArtifactStore, tmp_path: Path
) -> None:
    message = rf"Artifact blob {MISSING_SHA} not found in '{store.root_uri}'"

    with pytest.raises(NotFoundError, match=message):
        store.get_bytes(MISSING_SHA)
    with pytest.raises(NotFoundError, match=message):
        store.download(MISSING_SHA, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    assert not store.exists(MISSING_SHA)
    assert store.delete(MISSING_SHA) is False


def test_delete_removes_a_blob(store: ArtifactStore) -> None:
    blob = store.put_bytes(b"short-lived")

    assert store.delete(blob.sha256) is True
    assert not store.exists(blob.sha256)


def test_uppercase_hashes_name_the_same_blob(store: ArtifactStore) -> None:
    blob = store.put_bytes(b"case")

    assert store.get_bytes(blob.sha256.upper()) == b"case"


@pytest.mark.parametrize("bad", ["abc", "../" + "a" * 61, "g" * 64, "a" * 65])
def test_a_malformed_hash_is_rejected(store: ArtifactStore, bad: str) -> None:
    with pytest.raises(InvalidInputError, match="is not a SHA-256 hash"):
        store.get_bytes(bad)


def test_uri_for_points_at_the_blob_under_the_root(store: ArtifactStore, backend: Backend) -> None:
    blob = store.put_bytes(b"where am I")

    uri = store.uri_for(blob.sha256)

    assert uri == f"{backend.uri}/{blob_key(blob.sha256)}"
    if backend.local_root is not None:
        assert Path(uri).read_bytes() == b"where am I"


def test_subpath_gives_locations_for_non_blob_data(store: ArtifactStore, backend: Backend) -> None:
    assert store.subpath("datasets", "iris/v1") == f"{backend.uri}/datasets/iris/v1"
    assert store.subpath("./predictions/") == f"{backend.uri}/predictions"


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (("..", "outside"), r"'\.\.' component"),
        (("datasets", "/abs"), "absolute"),
        (("blobs", "x"), r"inside 'blobs/', which is reserved"),
        ((), "at least one part"),
    ],
)
def test_subpath_rejects_escapes_and_the_blob_area(
    store: ArtifactStore, parts: tuple[str, ...], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        store.subpath(*parts)


def test_put_bytes_rejects_text(store: ArtifactStore) -> None:
    with pytest.raises(InvalidInputError, match=r"put_bytes\(\) takes bytes, got a str"):
        store.put_bytes("text")  # type: ignore[arg-type]


def test_put_file_rejects_missing_files_and_folders(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"ghost\.onnx' as an artifact: it does not exist"):
        store.put_file(tmp_path / "ghost.onnx")
    with pytest.raises(NotFoundError, match="as an artifact: it is a folder"):
        store.put_file(tmp_path)


def test_download_refuses_a_folder_as_destination(store: ArtifactStore, tmp_path: Path) -> None:
    blob = store.put_bytes(b"x")

    with pytest.raises(InvalidInputError, match="is a folder"):
        store.download(blob.sha256, tmp_path)


def test_two_stores_on_one_root_see_each_others_blobs(backend: Backend) -> None:
    writer = ArtifactStore(backend.uri, backend.options)
    reader = ArtifactStore(backend.uri, backend.options)
    assert not reader.exists(hashlib.sha256(b"shared").hexdigest())

    blob = writer.put_bytes(b"shared")

    assert reader.exists(blob.sha256)
    assert reader.get_bytes(blob.sha256) == b"shared"
