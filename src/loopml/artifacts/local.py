"""Artifacts in a local folder: the default backend, with atomic, fsynced writes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO

from loopml.artifacts.atomic import atomic_path, atomic_writer, is_temporary_name
from loopml.artifacts.storage import CHUNK_SIZE, ArtifactStorage, Source
from loopml.errors import NotFoundError

__all__ = ["LocalStorage"]


class LocalStorage(ArtifactStorage):
    """Objects are plain files under ``root``; keys map to relative paths.

    The folder is created on the first write, not here: constructing a backend does no I/O.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        # Absolute now, so a later chdir cannot move the store and uri() is stable.
        self.root = Path(root).expanduser().absolute()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*self.check_key(key).split("/"))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        base = self.root / self.check_prefix(prefix) if prefix else self.root
        keys = []
        for folder, _dirs, files in os.walk(base):
            rel = Path(folder).relative_to(self.root).as_posix()
            for name in files:
                if not is_temporary_name(name):
                    keys.append(name if rel == "." else f"{rel}/{name}")
        return sorted(keys)

    def put(self, key: str, source: Source) -> None:
        dest = self._path(key)
        if isinstance(source, bytes | bytearray | memoryview):
            with atomic_writer(dest) as out:
                out.write(source)
        elif isinstance(source, str | os.PathLike):
            local = Path(source)
            if not local.is_file():
                raise NotFoundError(
                    f"Local file {str(local)!r} to store as artifact {key!r} does not exist",
                    hint="check the path; folders are stored file by file",
                )
            with atomic_path(dest) as tmp:
                shutil.copyfile(local, tmp)  # sendfile() on Linux: no copy through Python
        else:
            with atomic_writer(dest) as out:
                shutil.copyfileobj(source, out, CHUNK_SIZE)

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise self._missing(key) from None

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise self._missing(key) from None

    def download(self, key: str, dest: str | os.PathLike[str]) -> None:
        path = self._path(key)
        if not path.is_file():
            raise self._missing(key)
        with atomic_path(dest) as tmp:
            shutil.copyfile(path, tmp)

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def _missing(self, key: str) -> NotFoundError:
        return NotFoundError(
            f"Artifact {key!r} not found under {str(self.root)!r}",
            hint="list what is stored with the artifact store's list(prefix)",
        )
