"""The byte-level seam every artifact backend implements, and how a URI picks one.

:class:`ArtifactStorage` knows nothing about hashes, runs or models: it stores bytes under
relative ``/``-separated keys below one root. Content addressing, checksums and layout live
above it in :class:`~loopml.artifacts.store.ArtifactStore`, so a backend stays a page long
(the shape of Metaflow's ``DataStoreStorage``).

Backends are chosen by URI scheme from :data:`SCHEMES` and imported on first use, so
``import loopml.artifacts`` never loads fsspec, s3fs or boto3:

==============================  ==============================================  ==========
root URI                        backend                                         extra
==============================  ==============================================  ==========
``./artifacts``, ``/abs/path``  :class:`~loopml.artifacts.local.LocalStorage`   —
``file:///abs/path``            :class:`~loopml.artifacts.local.LocalStorage`   —
``s3://bucket/prefix``          :class:`~loopml.artifacts.fsspec_storage.FsspecStorage`  ``s3``
``memory://name`` (tests)       :class:`~loopml.artifacts.fsspec_storage.FsspecStorage`  —
==============================  ==============================================  ==========
"""

from __future__ import annotations

import abc
import importlib
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, BinaryIO
from urllib.parse import unquote, urlsplit

from loopml._optional import require
from loopml.artifacts.atomic import atomic_writer, is_temporary_name
from loopml.artifacts.paths import check_artifact_path
from loopml.errors import InvalidInputError

__all__ = ["CHUNK_SIZE", "SCHEMES", "ArtifactStorage", "Source", "storage_for_uri"]

#: Read and copy granularity for streamed files: large enough for throughput, small enough
#: that a multi-gigabyte model never sits in memory.
CHUNK_SIZE = 1024 * 1024

#: What :meth:`ArtifactStorage.put` accepts: bytes, a readable binary file, or a local path.
Source = bytes | bytearray | memoryview | IO[bytes] | str | os.PathLike[str]


class ArtifactStorage(abc.ABC):
    """Bytes under relative keys below one root; every write is atomic.

    The contract, checked against every backend by ``tests/artifacts/test_storage_contract.py``:

    - keys are logical paths checked by :func:`~loopml.artifacts.check_artifact_path`;
    - :meth:`put` never leaves a partial object visible under ``key``, even if the process
      is killed mid-write, and replaces an existing object whole;
    - reading a missing key raises :class:`~loopml.errors.NotFoundError` naming it;
    - :meth:`exists` is true for stored objects only, never for a mere prefix ("folder").
    """

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """True when an object is stored under ``key``."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys of every object below the folder ``prefix`` (``""``: everything)."""

    @abc.abstractmethod
    def put(self, key: str, source: Source) -> None:
        """Store ``source`` (bytes, a readable binary file or a local path) under ``key``.

        File and path sources are streamed in :data:`CHUNK_SIZE` pieces, never read whole.
        """

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Open ``key`` for streamed reading; use it as a context manager."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove ``key``; return whether it existed (deleting twice is not an error)."""

    @abc.abstractmethod
    def uri(self, key: str) -> str:
        """Where ``key`` lives, as other tools take it: a local path or ``s3://...`` URL.

        ``key`` may name a folder that does not exist yet (a Delta table root, say).
        """

    def get(self, key: str) -> bytes:
        """All bytes stored under ``key`` (backends override this with one round trip)."""
        with self.open(key) as src:
            return src.read()

    def download(self, key: str, dest: str | os.PathLike[str]) -> None:
        """Copy ``key`` to the local file ``dest``, atomically (no partial ``dest`` on failure)."""
        with self.open(key) as src, atomic_writer(dest) as out:
            shutil.copyfileobj(src, out, CHUNK_SIZE)

    @staticmethod
    def check_key(key: str) -> str:
        """Normalize ``key`` with :func:`check_artifact_path`; refuse temporary-file names."""
        key = check_artifact_path(key)
        if is_temporary_name(key.rsplit("/", 1)[-1]):
            raise InvalidInputError(
                f"Artifact key {key!r} is not allowed: names starting with '.loopml-tmp-' "
                "are reserved for writes in progress",
                hint="choose another file name",
            )
        return key

    @classmethod
    def check_prefix(cls, prefix: str) -> str:
        """Normalize a :meth:`list` prefix, which names a folder and follows the key rules."""
        try:
            return cls.check_key(prefix)
        except InvalidInputError as exc:
            raise InvalidInputError(f"Listing prefix: {exc.message}", hint=exc.hint) from None


@dataclass(frozen=True)
class _Backend:
    target: str  # "module:Class", imported on first use
    module: str | None = None  # optional dependency the backend needs
    extra: str | None = None  # the loopml extra that installs it


_LOCAL = _Backend("loopml.artifacts.local:LocalStorage")
_FSSPEC = "loopml.artifacts.fsspec_storage:FsspecStorage"

#: Artifact root URI scheme -> backend. ``""`` is a plain local path.
SCHEMES: dict[str, _Backend] = {
    "": _LOCAL,
    "file": _LOCAL,
    "s3": _Backend(_FSSPEC, module="s3fs", extra="s3"),
    "memory": _Backend(_FSSPEC),
}


def uri_scheme(uri: str) -> str:
    """The backend scheme of an artifact root URI (``""`` for a plain local path).

    Raises :class:`~loopml.errors.InvalidInputError` listing the valid schemes when
    ``uri`` uses one loopml has no backend for. Does no I/O and imports nothing.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInputError(
            f"Artifact root {uri!r} is empty or not a string",
            hint="pass a local folder such as './artifacts' or a URL such as 's3://bucket/prefix'",
        )
    # Only "scheme://" counts as a URL, so a Windows path like C:\artifacts stays local.
    scheme = urlsplit(uri).scheme.lower() if "://" in uri else ""
    if scheme not in SCHEMES:
        valid = ", ".join(f"{name}://" for name in SCHEMES if name)
        raise InvalidInputError(
            f"Artifact root {uri!r} uses the unsupported scheme {scheme + '://'!r}; "
            f"valid: a local path, {valid}",
            hint="e.g. ./artifacts or s3://bucket/prefix (with pip install 'loopml[s3]')",
        )
    return scheme


def storage_for_uri(uri: str, storage_options: Mapping[str, Any] | None = None) -> ArtifactStorage:
    """Build the backend for an artifact root ``uri``, importing it lazily.

    ``storage_options`` go to the fsspec filesystem (for s3: ``key``, ``secret``,
    ``client_kwargs={"endpoint_url": ...}``...). Local roots take none. A missing optional
    dependency raises :class:`~loopml.errors.MissingDependencyError` with the
    ``pip install`` line; the backend itself connects to nothing until first used.
    """
    scheme = uri_scheme(uri)
    backend = SCHEMES[scheme]
    if backend.module is not None and backend.extra is not None:
        require(backend.module, extra=backend.extra, purpose=f"Storing artifacts at {uri!r}")
    module_name, class_name = backend.target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if backend is _LOCAL:
        if storage_options:
            raise InvalidInputError(
                f"Artifact root {uri!r} is a local folder, which takes no storage options "
                f"(got {sorted(storage_options)})",
                hint="storage options are for fsspec URLs such as s3://bucket/prefix",
            )
        return cls(_local_path(uri))
    return cls(uri, storage_options)


def _local_path(uri: str) -> str:
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise InvalidInputError(
            f"Artifact root {uri!r} names the host {parts.netloc!r}; file:// URLs must be local",
            hint="use file:///absolute/path (three slashes) or a plain path",
        )
    return unquote(parts.path)
