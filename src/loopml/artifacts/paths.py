"""Logical artifact paths: the only strings allowed to name something under an artifact root.

A logical path is relative, uses ``/`` as its separator on every OS and never climbs out of
the root. :func:`check_artifact_path` is the single gate every backend key and every
user-supplied ``artifact_path`` passes through, so "``../../etc/passwd``" is refused in one
place instead of being escaped differently by each backend.
"""

from __future__ import annotations

import re

from loopml.errors import InvalidInputError

__all__ = ["check_artifact_path"]

_ALLOWED = (
    "an artifact path is relative and '/'-separated, e.g. 'model/model.onnx'; "
    "no leading '/', no '..', no backslashes, no drive letters or URLs"
)
# "C:" at the start means a Windows drive; "x://" anywhere means someone passed a URL.
_DRIVE = re.compile(r"^[A-Za-z]:")


def check_artifact_path(path: str) -> str:
    """Return ``path`` normalized to a safe, relative, ``/``-separated artifact path.

    Normalizing drops ``.`` components, repeated and trailing slashes (so ``./a//b/`` becomes
    ``a/b``). Anything that could point outside the artifact root, or mean different things on
    different systems, raises :class:`~loopml.errors.InvalidInputError`:

    - an empty path (or one that is only ``.`` and ``/``),
    - an absolute path (``/etc/passwd``), a drive (``C:...``) or a URL (``s3://...``),
    - a ``..`` component anywhere (``a/../b`` is refused, not resolved),
    - a backslash (on Windows it is a separator, so ``..\\x`` would climb out),
    - a NUL byte or another control character.

    >>> check_artifact_path("./model//weights.onnx")
    'model/weights.onnx'
    """
    if not isinstance(path, str):
        raise InvalidInputError(
            f"Artifact path {path!r} is a {type(path).__name__}, not a string",
            hint=_ALLOWED,
        )
    problem = _problem(path)
    if problem is not None:
        raise InvalidInputError(f"Artifact path {path!r} is not allowed: {problem}", hint=_ALLOWED)
    normalized = "/".join(part for part in path.split("/") if part not in ("", "."))
    if not normalized:
        problem = "it names no file or folder"
    elif _DRIVE.match(normalized):
        # Checked after normalizing too, so './C:/x' cannot smuggle a drive past the check.
        problem = "it is a drive or a URL, not a path inside the artifact root"
    if problem is not None:
        raise InvalidInputError(f"Artifact path {path!r} is not allowed: {problem}", hint=_ALLOWED)
    return normalized


def _problem(path: str) -> str | None:
    """Say what is wrong with ``path``, or ``None`` when it is acceptable."""
    if path == "":
        return "it is empty"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return "it contains a NUL byte or another control character"
    if "\\" in path:
        return "it contains a backslash"
    if path.startswith("/"):
        return "it is absolute"
    if _DRIVE.match(path) or "://" in path:
        return "it is a drive or a URL, not a path inside the artifact root"
    if ".." in path.split("/"):
        return "it contains a '..' component"
    return None
