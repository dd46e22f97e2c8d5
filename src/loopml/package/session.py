"""Load ONNX bytes into an onnxruntime session tuned for serving."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.package.errors import PackagingError

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["load_onnx_session"]


def load_onnx_session(
    onnx_bytes: bytes,
    *,
    intra_op_threads: int = 1,
    inter_op_threads: int = 1,
    optimize: bool = True,
) -> onnxruntime.InferenceSession:
    """An ``InferenceSession`` on the CPU with settings that suit a model server.

    ``intra_op_threads`` defaults to 1: tabular models are too small to gain from splitting
    one call across threads, and a server runs several workers (and batches requests), so
    extra threads only contend for the same cores. Raise it for large batch scoring; ``0``
    lets onnxruntime use every core. Threads never spin while idle, so an idle server burns
    no CPU. Graph optimisation (constant folding, node fusion) is on unless ``optimize`` is
    false.
    """
    import onnxruntime as ort

    if intra_op_threads < 0 or inter_op_threads < 0:
        raise PackagingError(
            f"thread counts must be >= 0, got intra_op_threads={intra_op_threads}, "
            f"inter_op_threads={inter_op_threads}",
            hint="use 1 for serving, 0 for onnxruntime's default (all cores)",
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if optimize
        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: warnings go to stderr, not to our logs
    try:
        return ort.InferenceSession(
            bytes(onnx_bytes), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/NotImplemented
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PackagingError(
            f"onnxruntime cannot load the model: {first_line}",
            hint="the ONNX file is corrupt or uses an operator this onnxruntime lacks; "
            "re-export it with loopml.package.export_onnx",
        ) from exc
