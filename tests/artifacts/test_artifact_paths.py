"""check_artifact_path: the one gate between user-supplied names and the artifact root."""

from __future__ import annotations

import os
import posixpath
from pathlib import PureWindowsPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.artifacts import check_artifact_path
from loopml.errors import InvalidInputError

ROOT = "/srv/loopml/artifacts"


@pytest.mark.parametrize(
    ("path", "normalized"),
    [
        ("model.onnx", "model.onnx"),
        ("./model/model.onnx", "model/model.onnx"),
        ("a//b/./c/", "a/b/c"),
        ("..hidden/...", "..hidden/..."),  # dots inside names are just names
        ("with space/ü.txt", "with space/ü.txt"),
    ],
)
def test_safe_paths_are_normalized(path: str, normalized: str) -> None:
    assert check_artifact_path(path) == normalized


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "it is empty"),
        ("./", "it names no file or folder"),
        ("/etc/passwd", "it is absolute"),
        ("../secrets", "it contains a '..' component"),
        ("model/../../secrets", "it contains a '..' component"),
        ("model/..", "it contains a '..' component"),
        ("..\\..\\secrets", "it contains a backslash"),
        ("model\\weights", "it contains a backslash"),
        ("C:/Windows/system32", "it is a drive or a URL"),
        ("s3://other-bucket/key", "it is a drive or a URL"),
        ("model\x00.onnx", "it contains a NUL byte"),
        ("line\nbreak", "it contains a NUL byte or another control character"),
    ],
)
def test_unsafe_paths_are_rejected_saying_why_and_what_is_allowed(path: str, reason: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_artifact_path(path)

    assert caught.value.message.startswith(f"Artifact path {path!r} is not allowed: {reason}")
    assert caught.value.hint is not None
    assert "relative and '/'-separated" in caught.value.hint


def test_a_non_string_path_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match=r"Artifact path 3 is a int, not a string"):
        check_artifact_path(3)  # type: ignore[arg-type]


_pieces = st.sampled_from(
    ["a", "b.txt", ".", "..", "", "...", "..a", "~", "C:", "c:x", "\\", "..\\..", "%2e%2e", "s3:"]
)
_paths = st.one_of(
    st.text(max_size=12),
    st.lists(st.one_of(_pieces, st.text(max_size=3)), max_size=6).map("/".join),
    st.lists(_pieces, max_size=6).map(lambda parts: "/" + "/".join(parts)),
)


@settings(max_examples=1000, database=None, deadline=None)
@given(_paths)
def test_nothing_accepted_escapes_the_root(path: str) -> None:
    try:
        safe = check_artifact_path(path)
    except InvalidInputError:
        return

    parts = safe.split("/")
    assert "" not in parts
    assert "." not in parts
    assert ".." not in parts
    assert check_artifact_path(safe) == safe  # idempotent: already normal
    resolved = posixpath.normpath(posixpath.join(ROOT, safe))
    assert resolved.startswith(ROOT + "/")
    # Windows reading the same string must agree: no drive, not absolute, no way up.
    windows = PureWindowsPath(safe)
    assert not windows.drive
    assert not windows.is_absolute()
    assert ".." not in windows.parts
    native = os.path.normpath(os.path.join(ROOT, *parts))
    assert native.startswith(os.path.normpath(ROOT) + os.sep)
