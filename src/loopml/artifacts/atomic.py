"""Atomic local file writes: a file appears whole under its final name, or not at all.

Bytes go to a hidden temporary file in the destination's own folder (so the final
``os.replace`` is a rename within one filesystem, which POSIX and Windows make atomic), are
fsynced, and only then renamed into place. A crash or ``SIGKILL`` half-way leaves at most a
``.loopml-tmp-*`` file, which listings skip, never a truncated file under the real name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["TMP_PREFIX", "atomic_path", "atomic_writer", "is_temporary_name"]

TMP_PREFIX = ".loopml-tmp-"


def is_temporary_name(name: str) -> bool:
    """True for the file names :func:`atomic_path` uses for work in progress."""
    return name.startswith(TMP_PREFIX)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary path next to ``dest``; on success it replaces ``dest``.

    The caller writes the temporary file however it likes (``shutil.copyfile``, an fsspec
    ``get_file``...). If the block raises, the temporary file is removed and ``dest`` is
    untouched.
    """
    final = Path(dest)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f"{TMP_PREFIX}{final.name[:64]}-{secrets.token_hex(8)}"
    # os.open with 0o666 lets the umask decide permissions, as for any normal file
    # (tempfile.mkstemp would force 0o600 and make shared artifact folders unreadable).
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(final.parent)


@contextlib.contextmanager
def atomic_writer(dest: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a binary file to write; on success its content replaces ``dest`` atomically."""
    with atomic_path(dest) as tmp, open(tmp, "wb") as out:
        yield out


def _fsync_file(path: Path) -> None:
    # Without fsync a power cut after the rename can leave a zero-length file under the final
    # name on ext4/xfs: the rename is journaled before the data blocks are written.
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    # Persist the rename itself. Windows cannot open a directory this way; there the rename
    # is durable enough once MoveFileEx returns.
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
