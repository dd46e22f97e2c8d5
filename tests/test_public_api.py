"""The public surface of ``import loopml``: explicit, cheap, and free of heavy modules."""

from __future__ import annotations

import subprocess
import sys
import time

import loopml

HEAVY = (
    "sqlalchemy",
    "pandas",
    "numpy",
    "onnxruntime",
    "torch",
    "sklearn",
    "boto3",
    "alembic",
    "polars",
    "pyarrow",
    "deltalake",
    "optuna",
    "starlette",
    "uvicorn",
)


def test_every_exported_name_resolves() -> None:
    for name in loopml.__all__:
        assert getattr(loopml, name) is not None, name


def test_exported_names_are_exactly_the_lazy_table_plus_version() -> None:
    assert sorted(loopml.__all__) == sorted([*loopml._LAZY, "__version__"])


def test_importing_loopml_loads_no_heavy_library() -> None:
    code = f"import sys, loopml; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""


def test_importing_loopml_is_quick() -> None:
    # Generous bound for a loaded CI machine; benchmarks/tracking.py measures it properly.
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import loopml"], check=True)
    assert time.perf_counter() - started < 2.0


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        loopml.nope  # noqa: B018
