"""Artifacts in any fsspec filesystem: S3 (with the ``s3`` extra) and, for tests, memory.

Atomicity comes from the object store where it can: an S3 ``PUT`` (and a multipart upload,
which only becomes visible once completed) shows the whole object or nothing, so bytes and
local files are written straight to their key. Streams from arbitrary file objects, and every
write on a filesystem without atomic puts, go to a hidden temporary key first and are then
moved into place: fsspec's writers commit whatever was buffered when closed, even after an
error, which must never happen under a real key.

fsspec is imported on first use, not with the module.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from loopml.artifacts.atomic import TMP_PREFIX, atomic_path, is_temporary_name
from loopml.artifacts.storage import CHUNK_SIZE, ArtifactStorage, Source, uri_scheme
from loopml.errors import BackendUnavailableError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["FsspecStorage"]

# Filesystems whose single-object writes are all-or-nothing on the server side.
_ATOMIC_PUT_PROTOCOLS = frozenset({"s3"})
# Client libraries whose own exception types (not OSError) mean "the service failed us".
_CLIENT_LIBRARIES = ("botocore", "aiobotocore", "aiohttp", "s3fs", "urllib3", "requests")


class FsspecStorage(ArtifactStorage):
    """Objects under ``root_uri`` (``s3://bucket/prefix``) in an fsspec filesystem.

    ``storage_options`` are passed to the filesystem unchanged (for s3fs: ``key``, ``secret``,
    ``client_kwargs={"endpoint_url": ...}``, ``default_block_size``...). Nothing is imported
    or contacted until the first operation.
    """

    def __init__(self, root_uri: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.protocol = uri_scheme(root_uri)
        if not root_uri.split("://", 1)[1].strip("/"):
            raise InvalidInputError(
                f"Artifact root {root_uri!r} names no bucket or folder",
                hint=f"e.g. {self.protocol}://bucket/prefix",
            )
        self.root_uri = root_uri.rstrip("/")
        self.storage_options = dict(storage_options or {})

    def __repr__(self) -> str:
        # storage_options may hold credentials: never print them.
        return f"FsspecStorage({self.root_uri!r})"

    @cached_property
    def fs(self) -> AbstractFileSystem:
        """The fsspec filesystem, created on first use."""
        import fsspec

        try:
            return fsspec.filesystem(self.protocol, **self.storage_options)
        except TypeError as exc:
            raise InvalidInputError(
                f"Storage options {sorted(self.storage_options)} were rejected by the "
                f"{self.protocol}:// filesystem",
                hint="check the option names against the fsspec/s3fs documentation",
            ) from exc

    @cached_property
    def _root(self) -> str:
        return cast(str, self.fs._strip_protocol(self.root_uri)).rstrip("/")

    def _path(self, key: str) -> str:
        return f"{self._root}/{self.check_key(key)}"

    def exists(self, key: str) -> bool:
        path = self._path(key)
        with self._translated("checking", key):
            # Another process may have written since we last listed: never trust the cache.
            self.fs.invalidate_cache(path)
            try:
                info = self.fs.info(path)
            except FileNotFoundError:
                return False
        return bool(info.get("type") == "file")

    def list(self, prefix: str = "") -> list[str]:
        base = f"{self._root}/{self.check_prefix(prefix)}" if prefix else self._root
        with self._translated("listing", prefix or "/"):
            self.fs.invalidate_cache(base)
            found = self.fs.find(base)
        start = len(self._root) + 1
        return sorted(
            path[start:]
            for path in found
            if path.startswith(base + "/") and not is_temporary_name(path.rsplit("/", 1)[-1])
        )

    def put(self, key: str, source: Source) -> None:
        path = self._path(key)
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            self._write(key, path, lambda target: self.fs.pipe_file(target, data))
        elif isinstance(source, str | os.PathLike):
            local = Path(source)
            if not local.is_file():
                raise NotFoundError(
                    f"Local file {str(local)!r} to store as artifact {key!r} does not exist",
                    hint="check the path; folders are stored file by file",
                )
            self._write(key, path, lambda target: self.fs.put_file(str(local), target))
        else:
            stream = source

            def copy(target: str) -> None:
                with self.fs.open(target, "wb") as out:
                    shutil.copyfileobj(stream, out, CHUNK_SIZE)

            self._write(key, path, copy, via_temporary=True)

    def _write(
        self, key: str, path: str, write: Callable[[str], object], *, via_temporary: bool = False
    ) -> None:
        with self._translated("storing", key):
            if self.protocol in _ATOMIC_PUT_PROTOCOLS and not via_temporary:
                write(path)
                return
            folder, name = path.rsplit("/", 1)
            tmp = f"{folder}/{TMP_PREFIX}{name[:64]}-{secrets.token_hex(8)}"
            try:
                write(tmp)
                self.fs.mv(tmp, path)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.fs.rm_file(tmp)
                raise

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        with self._translated("reading", key):
            return cast(BinaryIO, self.fs.open(path, "rb"))

    def get(self, key: str) -> bytes:
        path = self._path(key)
        with self._translated("reading", key):
            return cast(bytes, self.fs.cat_file(path))

    def download(self, key: str, dest: str | os.PathLike[str]) -> None:
        path = self._path(key)
        with self._translated("downloading", key), atomic_path(dest) as tmp:
            self.fs.get_file(path, str(tmp))

    def delete(self, key: str) -> bool:
        if not self.exists(key):
            return False
        with self._translated("deleting", key):
            self.fs.rm_file(self._path(key))
        return True

    def uri(self, key: str) -> str:
        return f"{self.root_uri}/{self.check_key(key)}"

    def _endpoint(self) -> str:
        client_kwargs = self.storage_options.get("client_kwargs") or {}
        endpoint = client_kwargs.get("endpoint_url") if isinstance(client_kwargs, dict) else None
        return f" at {endpoint}" if endpoint else ""

    @contextlib.contextmanager
    def _translated(self, action: str, key: str) -> Iterator[None]:
        """Turn client-library errors into loopml errors that name the artifact and root."""
        try:
            yield
        except FileNotFoundError as exc:
            if action == "storing":
                raise NotFoundError(
                    f"Cannot store artifact {key!r}: the bucket or folder of {self.root_uri!r} "
                    "does not exist",
                    hint="create the bucket first (loopml never creates buckets)",
                ) from exc
            raise NotFoundError(
                f"Artifact {key!r} not found under {self.root_uri!r}",
                hint="check the key, and that the bucket exists",
            ) from exc
        except PermissionError as exc:
            raise BackendUnavailableError(
                f"Access denied while {action} artifact {key!r} under {self.root_uri!r}",
                hint="check the credentials in storage_options or the environment",
            ) from exc
        except Exception as exc:
            module = type(exc).__module__.split(".", 1)[0]
            if isinstance(exc, OSError) or module in _CLIENT_LIBRARIES:
                raise BackendUnavailableError(
                    f"Artifact storage {self.root_uri!r} failed while {action} {key!r}: "
                    f"{type(exc).__name__}",
                    hint=f"check that the object store{self._endpoint()} is reachable and "
                    "the storage options are right",
                ) from exc
            raise
