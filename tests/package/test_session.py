"""Sessions for serving, and the cost of importing the packaging layer."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import loopml.package
from loopml.package import PackagingError, export_onnx, load_onnx_session


def test_a_session_runs_the_exported_model_single_threaded_by_default() -> None:
    x = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    onnx_bytes = export_onnx(LinearRegression().fit(x, [2, 4, 6]), x, task="regression").onnx_bytes

    session = load_onnx_session(onnx_bytes)

    options = session.get_session_options()
    assert options.intra_op_num_threads == 1
    (out,) = session.run(None, {"x": np.array([[5.0]])})
    assert out.tolist() == [[pytest.approx(10.0)]]
    assert (
        load_onnx_session(onnx_bytes, intra_op_threads=2).get_session_options().intra_op_num_threads
        == 2
    )


def test_bytes_that_do_not_load_raise_a_packaging_error() -> None:
    with pytest.raises(PackagingError, match="onnxruntime cannot load the model"):
        load_onnx_session(b"not a model")


def test_negative_thread_counts_are_refused() -> None:
    with pytest.raises(PackagingError, match="thread counts must be >= 0"):
        load_onnx_session(b"", intra_op_threads=-1)


def test_the_public_names_are_exactly_the_lazy_table() -> None:
    assert sorted(loopml.package.__all__) == sorted(loopml.package._LAZY)
    for name in loopml.package.__all__:
        assert getattr(loopml.package, name) is not None


def test_importing_the_package_and_the_request_feed_stays_light() -> None:
    """A server imports ``signature`` and ``feed`` per worker: no pandas, sklearn, onnx."""
    heavy = ("pandas", "sklearn", "skl2onnx", "onnx", "onnxruntime", "torch")
    code = (
        "import sys, loopml.package, loopml.package.feed, loopml.package.signature; "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""
