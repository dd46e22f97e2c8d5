"""What a run records about where it ran: user, code commit, interpreter and key packages."""

from __future__ import annotations

import functools
import getpass
import os
import platform
import subprocess
import sys
from typing import Any

KEY_PACKAGES = (
    "loopml",
    "numpy",
    "pandas",
    "scikit-learn",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "optuna",
    "torch",
    "polars",
    "pyarrow",
)


def current_user() -> str:
    try:
        return os.environ.get("LOOPML_USER") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


@functools.lru_cache(maxsize=8)
def git_state(directory: str) -> tuple[str | None, bool | None]:
    """(commit sha, dirty?) of the git checkout containing ``directory``, or (None, None)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())


@functools.lru_cache(maxsize=1)
def environment() -> dict[str, Any]:
    """Python version, platform, and installed versions of packages that shape a model."""
    from importlib import metadata

    packages: dict[str, str] = {}
    for name in KEY_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "packages": packages,
    }


def entry_point() -> str:
    """The script or command that started this process."""
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "<interactive>"
