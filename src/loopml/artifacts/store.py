"""The content-addressed artifact store: bytes named by their SHA-256, verified on every read.

Layout under the root (a local folder or an fsspec URL)::

    blobs/<sha[:2]>/<sha[2:4]>/<sha>     one object per distinct content
    <anything else>                      free for subpath(): Delta tables, prediction logs...

Identical content is stored once, whoever logs it and under whatever artifact name: the
metadata store maps names to hashes. Reads recompute the hash, so a blob that was truncated,
bit-flipped or overwritten raises :class:`~loopml.errors.IntegrityError` instead of loading a
wrong model.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from loopml.artifacts.atomic import atomic_writer
from loopml.artifacts.paths import check_artifact_path
from loopml.artifacts.storage import CHUNK_SIZE, ArtifactStorage, storage_for_uri, uri_scheme
from loopml.errors import IntegrityError, InvalidInputError, NotFoundError

__all__ = ["BLOB_PREFIX", "ArtifactStore", "Blob"]

BLOB_PREFIX = "blobs"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Blob:
    """A stored piece of content: its lowercase hex SHA-256 and its size in bytes."""

    sha256: str
    size: int


class ArtifactStore:
    """Content-addressed blobs (plus free-form subpaths) under one root URI.

    >>> store = ArtifactStore("memory://doctest-artifacts")
    >>> blob = store.put_bytes(b"hello")
    >>> blob.size, store.get_bytes(blob.sha256)
    (5, b'hello')

    The constructor checks the URI scheme but does no I/O and imports no backend; the backend
    (see :func:`~loopml.artifacts.storage_for_uri`) is built on first use.
    """

    def __init__(self, root_uri: str, storage_options: Mapping[str, Any] | None = None) -> None:
        uri_scheme(root_uri)  # fail now, listing the valid schemes, rather than on first write
        self.root_uri = root_uri
        self.storage_options = dict(storage_options or {})

    def __repr__(self) -> str:
        return f"ArtifactStore({self.root_uri!r})"

    @cached_property
    def storage(self) -> ArtifactStorage:
        """The byte-level backend for :attr:`root_uri`."""
        return storage_for_uri(self.root_uri, self.storage_options)

    # -- writing ---------------------------------------------------------------------------

    def put_bytes(self, data: bytes | bytearray | memoryview) -> Blob:
        """Store ``data`` unless identical content is already stored; return its :class:`Blob`."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidInputError(
                f"put_bytes() takes bytes, got a {type(data).__name__}",
                hint="encode text first (text.encode()) or use put_file() for a local file",
            )
        data = bytes(data)
        blob = Blob(hashlib.sha256(data).hexdigest(), len(data))
        key = blob_key(blob.sha256)
        if not self.storage.exists(key):
            self.storage.put(key, data)
        return blob

    def put_file(self, path: str | os.PathLike[str]) -> Blob:
        """Store the local file at ``path`` unless its content is already stored.

        The file is hashed in 1 MiB chunks, then uploaded only if no blob has that hash. The
        file must not change while it is being stored; if it does, the next read of the blob
        raises :class:`~loopml.errors.IntegrityError` rather than return the wrong bytes.
        """
        local = Path(path)
        if not local.is_file():
            what = "is a folder" if local.is_dir() else "does not exist"
            raise NotFoundError(
                f"Cannot store {str(local)!r} as an artifact: it {what}",
                hint="pass the path of an existing file; store folders file by file",
            )
        blob = _hash_file(local)
        key = blob_key(blob.sha256)
        if not self.storage.exists(key):
            self.storage.put(key, local)
        return blob

    def delete(self, sha256: str) -> bool:
        """Remove a blob; return whether it existed. Callers must know nothing refers to it."""
        return self.storage.delete(blob_key(sha256))

    # -- reading ---------------------------------------------------------------------------

    def exists(self, sha256: str) -> bool:
        """True when a blob with this hash is stored."""
        return self.storage.exists(blob_key(sha256))

    def get_bytes(self, sha256: str) -> bytes:
        """The content of blob ``sha256``, after checking it still hashes to ``sha256``."""
        key = blob_key(sha256)
        try:
            data = self.storage.get(key)
        except NotFoundError:
            raise self._missing(sha256) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256.lower():
            raise self._corrupt(sha256, actual, len(data))
        return data

    def download(self, sha256: str, dest: str | os.PathLike[str]) -> Blob:
        """Write blob ``sha256`` to the local file ``dest``, verified and atomically.

        ``dest`` only appears, whole, once the streamed content has matched its hash; on a
        mismatch or any error it is left as it was (absent, or its previous content).
        """
        target = Path(dest)
        if target.is_dir():
            raise InvalidInputError(
                f"Download destination {str(target)!r} is a folder",
                hint="pass the path of the file to create, e.g. folder / 'model.onnx'",
            )
        key = blob_key(sha256)
        try:
            source = self.storage.open(key)
        except NotFoundError:
            raise self._missing(sha256) from None
        hasher = hashlib.sha256()
        size = 0
        with source, atomic_writer(target) as out:
            while chunk := source.read(CHUNK_SIZE):
                hasher.update(chunk)
                size += len(chunk)
                out.write(chunk)
            actual = hasher.hexdigest()
            if actual != sha256.lower():
                # Raised inside the writer so the temporary file is discarded, not renamed.
                raise self._corrupt(sha256, actual, size)
        return Blob(sha256.lower(), size)

    # -- locations -------------------------------------------------------------------------

    def uri_for(self, sha256: str) -> str:
        """Where blob ``sha256`` lives (local path or ``s3://`` URL); does not check it exists."""
        return self.storage.uri(blob_key(sha256))

    def subpath(self, *parts: str) -> str:
        """A path or URL under the root for data that is not a blob (Delta tables, logs...).

        Each part is checked with :func:`~loopml.artifacts.check_artifact_path`, so nothing
        can point outside the root; ``blobs/`` is reserved for content-addressed blobs.

        >>> ArtifactStore("s3://bucket/loopml").subpath("datasets", "iris")
        's3://bucket/loopml/datasets/iris'
        """
        if not parts:
            raise InvalidInputError(
                "subpath() needs at least one part",
                hint="e.g. store.subpath('datasets', 'iris')",
            )
        relative = "/".join(check_artifact_path(part) for part in parts)
        if relative.split("/", 1)[0] == BLOB_PREFIX:
            raise InvalidInputError(
                f"Subpath {relative!r} is inside {BLOB_PREFIX + '/'!r}, which is reserved "
                "for content-addressed blobs",
                hint="use another top-level folder, e.g. 'datasets' or 'predictions'",
            )
        return self.storage.uri(relative)

    # -- errors ----------------------------------------------------------------------------

    def _missing(self, sha256: str) -> NotFoundError:
        return NotFoundError(
            f"Artifact blob {sha256.lower()} not found in {self.root_uri!r}",
            hint="check the hash, and that this is the artifact root the blob was logged to",
        )

    def _corrupt(self, sha256: str, actual: str, size: int) -> IntegrityError:
        return IntegrityError(
            f"Artifact blob {sha256.lower()} at {self.uri_for(sha256)!r} is corrupt: "
            f"expected sha256 {sha256.lower()}, read {size} bytes with sha256 {actual}",
            hint="the stored copy was changed or truncated; delete it with "
            "ArtifactStore.delete() and log the artifact again from its source",
        )


def blob_key(sha256: str) -> str:
    """The storage key of a blob: ``blobs/<sha[:2]>/<sha[2:4]>/<sha>``.

    Two levels of 256 folders keep any one folder small on filesystems that slow down with
    many entries, and spread S3 keys over prefixes.
    """
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256.lower()):
        raise InvalidInputError(
            f"{sha256!r} is not a SHA-256 hash",
            hint="a blob is named by 64 hexadecimal characters, as in Blob.sha256",
        )
    sha = sha256.lower()
    return f"{BLOB_PREFIX}/{sha[:2]}/{sha[2:4]}/{sha}"


def _hash_file(path: Path) -> Blob:
    hasher = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as src:
        while read := src.readinto(view):
            hasher.update(view[:read])
            size += read
    return Blob(hasher.hexdigest(), size)
