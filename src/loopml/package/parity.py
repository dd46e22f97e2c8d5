"""Check that the ONNX model answers like the native one, row by row, before it ships.

:func:`check_parity` runs onnxruntime and the native model (``predict``, plus
``predict_proba`` — or ``decision_function`` when there are no probabilities — for
classifiers) on the same held-out rows and compares every output within ``rtol``/``atol``
(``|onnx - native| <= atol + rtol * |native|``). Class labels must match exactly, except on
rows where the native probabilities of the top two classes tie within the tolerance (a float
rounding there may legitimately pick either). A failure raises :class:`ParityError` naming the
output, the largest difference, its row and the tolerance; the :class:`ParityReport` goes into
the model card either way.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.package.errors import PackagingError, ParityError

if TYPE_CHECKING:
    import onnxruntime
    import pandas as pd

    from loopml.package.signature import Signature

__all__ = ["OutputParity", "ParityReport", "check_parity"]

TORCH_HEAD_KEY = "loopml.torch_output"


@dataclass(frozen=True)
class OutputParity:
    """How one ONNX output compared with the native model's answer."""

    output: str
    native: str  # the native method compared: predict, predict_proba, decision_function, forward
    kind: str  # "values" (compared within tolerance) or "labels" (compared exactly)
    max_abs_diff: float
    max_rel_diff: float
    worst_row: int  # row (position in the data) of the largest difference or first mismatch
    mismatched_rows: int
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("max_abs_diff", "max_rel_diff"):
            if not np.isfinite(data[key]):
                data[key] = None if np.isnan(data[key]) else str(data[key])
        return data


@dataclass(frozen=True)
class ParityReport:
    """The outcome of a parity check (stored in the model card)."""

    rows: int
    rtol: float
    atol: float
    outputs: tuple[OutputParity, ...]
    onnxruntime_version: str
    seconds: float

    @property
    def passed(self) -> bool:
        return all(output.passed for output in self.outputs)

    def failures(self) -> list[OutputParity]:
        return [output for output in self.outputs if not output.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rows": self.rows,
            "rtol": self.rtol,
            "atol": self.atol,
            "onnxruntime_version": self.onnxruntime_version,
            "seconds": round(self.seconds, 4),
            "outputs": [output.to_dict() for output in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParityReport:
        def number(value: Any) -> float:
            return float("nan") if value is None else float(value)

        outputs = tuple(
            OutputParity(
                **{
                    **item,
                    "max_abs_diff": number(item["max_abs_diff"]),
                    "max_rel_diff": number(item["max_rel_diff"]),
                }
            )
            for item in data["outputs"]
        )
        return cls(
            rows=int(data["rows"]),
            rtol=float(data["rtol"]),
            atol=float(data["atol"]),
            outputs=outputs,
            onnxruntime_version=str(data["onnxruntime_version"]),
            seconds=float(data["seconds"]),
        )


def check_parity(
    model: Any,
    onnx_bytes: bytes,
    X_holdout: pd.DataFrame | np.ndarray,
    *,
    task: str,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    raise_on_failure: bool = True,
) -> ParityReport:
    """Compare onnxruntime with the native ``model`` on ``X_holdout``.

    ``model`` is the fitted scikit-learn estimator/pipeline that was exported, or the
    ``torch.nn.Module`` given to :func:`~loopml.package.export_torch_onnx`. Raises
    :class:`ParityError` (with ``.report``) when an output differs beyond the tolerance,
    unless ``raise_on_failure`` is false.
    """
    from loopml.package.session import load_onnx_session
    from loopml.package.signature import Signature

    session = load_onnx_session(onnx_bytes)
    signature = Signature.from_session(session)
    if signature.task != task:
        raise PackagingError(
            f"the ONNX model was exported for task {signature.task!r}, not {task!r}",
            hint="pass the task the model was exported with",
        )
    report = run_parity(model, session, signature, X_holdout, rtol=rtol, atol=atol)
    if raise_on_failure and not report.passed:
        raise parity_error(report)
    return report


def run_parity(
    model: Any,
    session: onnxruntime.InferenceSession,
    signature: Signature,
    X: pd.DataFrame | np.ndarray,
    *,
    rtol: float,
    atol: float,
) -> ParityReport:
    """The comparison itself, on an already-loaded session (no raising)."""
    import onnxruntime

    from loopml.package.feed import as_pandas, frame_to_feed

    X = as_pandas(X)
    if rtol < 0 or atol < 0:
        raise PackagingError(f"tolerances must be >= 0, got rtol={rtol}, atol={atol}")
    rows = len(X)
    if rows == 0:
        raise PackagingError(
            "parity needs at least one held-out row, got an empty data set",
            hint="pass the held-out (test) split the model was evaluated on",
        )
    started = time.perf_counter()
    feed = frame_to_feed(signature, X)
    try:
        results = session.run(None, feed)
    except Exception as exc:  # onnxruntime's own error types
        text = str(exc).strip()
        first_line = text.splitlines()[0] if text else repr(exc)
        raise PackagingError(
            f"onnxruntime failed to score the held-out data: {first_line}",
            hint="the exported graph does not fit the data: check the column names and types",
        ) from exc
    produced = dict(zip(signature.output_names, results, strict=True))
    head = session.get_modelmeta().custom_metadata_map.get(TORCH_HEAD_KEY)
    native = native_outputs(model, X, signature, torch_head=head)
    outputs = []
    for name, (method, expected) in native.items():
        actual = produced[name]
        if name == "label":
            probabilities = native.get("probabilities", (None, None))[1]
            outputs.append(_compare_labels(method, expected, actual, probabilities, rtol, atol))
        else:
            outputs.append(_compare_values(name, method, expected, actual, rtol, atol))
    return ParityReport(
        rows=rows,
        rtol=rtol,
        atol=atol,
        outputs=tuple(outputs),
        onnxruntime_version=onnxruntime.__version__,
        seconds=time.perf_counter() - started,
    )


def parity_error(report: ParityReport) -> ParityError:
    worst = report.failures()[0]
    if worst.kind == "labels":
        detail = (
            f"ONNX output 'label' disagrees with the native {worst.native}() on "
            f"{worst.mismatched_rows} of {report.rows} rows (first at row {worst.worst_row})"
        )
    else:
        detail = (
            f"ONNX output {worst.output!r} differs from the native {worst.native}(): "
            f"max abs diff {worst.max_abs_diff:.6g} at row {worst.worst_row}, "
            f"{worst.mismatched_rows} of {report.rows} rows outside the tolerance "
            f"(rtol={report.rtol:g}, atol={report.atol:g})"
        )
    return ParityError(
        f"parity check failed: {detail}",
        report=report,
        hint="a pipeline step computes differently in ONNX: re-train without custom or "
        "float32-only steps, or loosen rtol/atol only if this difference is acceptable",
    )


# --- native answers -----------------------------------------------------------------------------


def native_outputs(
    model: Any, X: Any, signature: Signature, *, torch_head: str | None = None
) -> dict[str, tuple[str, np.ndarray]]:
    """``{onnx_output: (native_method, values)}`` for every output the signature has."""
    if _is_torch_module(model):
        return _torch_outputs(model, X, signature, torch_head or "values")
    names = set(signature.output_names)
    out: dict[str, tuple[str, np.ndarray]] = {}
    try:
        with warnings.catch_warnings():
            # a native model's own warnings (feature names, convergence) are not parity news
            warnings.simplefilter("ignore")
            if "variable" in names:
                out["variable"] = ("predict", np.asarray(model.predict(X), dtype=np.float64))
            if "label" in names:
                out["label"] = ("predict", np.asarray(model.predict(X)))
            if "probabilities" in names:
                out["probabilities"] = ("predict_proba", np.asarray(model.predict_proba(X)))
            if "scores" in names:
                out["scores"] = (
                    "decision_function",
                    np.asarray(model.decision_function(X), dtype=np.float64),
                )
    except Exception as exc:
        raise PackagingError(
            f"the native model failed on the held-out data: {type(exc).__name__}: {exc}",
            hint="pass held-out rows with the same columns and types the model was trained on",
        ) from exc
    return out


def _is_torch_module(model: Any) -> bool:
    return any(cls.__module__.startswith("torch.nn") for cls in type(model).__mro__[1:])


def _torch_outputs(
    module: Any, X: Any, signature: Signature, head: str
) -> dict[str, tuple[str, np.ndarray]]:
    import torch

    values = X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)
    with torch.no_grad():
        raw = module(torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)))
    raw = raw.detach().numpy().astype(np.float64)
    if signature.task == "regression":
        return {"variable": ("forward", raw)}
    if raw.ndim == 1 or raw.shape[1] == 1:
        positive = raw.reshape(-1)
        if head == "logits":
            positive = 1.0 / (1.0 + np.exp(-positive))
        probabilities = np.column_stack([1.0 - positive, positive])
    elif head == "logits":
        shifted = raw - raw.max(axis=1, keepdims=True)
        probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    else:
        probabilities = raw
    classes = np.asarray(signature.classes or list(range(probabilities.shape[1])))
    labels = classes[np.argmax(probabilities, axis=1)]
    return {"label": ("forward", labels), "probabilities": ("forward", probabilities)}


# --- comparisons --------------------------------------------------------------------------------


def _compare_values(
    name: str, method: str, expected: np.ndarray, actual: np.ndarray, rtol: float, atol: float
) -> OutputParity:
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if expected.ndim == 1 and actual.ndim == 2 and actual.shape[1] == 2 and method != "predict":
        actual = actual[:, 1]  # binary decision_function is the positive class's score
    if expected.size == actual.size and expected.shape != actual.shape:
        actual = actual.reshape(expected.shape)
    if expected.shape != actual.shape:
        return OutputParity(name, method, "values", np.inf, np.inf, 0, len(expected), False)
    with np.errstate(invalid="ignore"):
        diff = np.abs(actual - expected)
    both_nan = np.isnan(actual) & np.isnan(expected)
    diff = np.where(both_nan, 0.0, np.where(np.isnan(diff), np.inf, diff))
    bad = diff > atol + rtol * np.abs(np.nan_to_num(expected))
    per_row = diff.reshape(len(diff), -1).max(axis=1) if diff.size else diff
    worst = int(np.argmax(per_row)) if per_row.size else 0
    bad_rows = bad.reshape(len(bad), -1).any(axis=1) if bad.size else bad
    # relative difference where it means something: entries with a non-zero native value
    scale = np.abs(np.nan_to_num(expected))
    relevant = scale > 0
    rel = diff[relevant] / scale[relevant]
    return OutputParity(
        output=name,
        native=method,
        kind="values",
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        max_rel_diff=float(rel.max()) if rel.size else 0.0,
        worst_row=worst,
        mismatched_rows=int(bad_rows.sum()),
        passed=not bool(bad.any()),
    )


def _compare_labels(
    method: str,
    expected: np.ndarray,
    actual: np.ndarray,
    probabilities: np.ndarray | None,
    rtol: float,
    atol: float,
) -> OutputParity:
    expected = np.asarray(expected).reshape(-1)
    actual = np.asarray(actual).reshape(-1)
    if expected.shape != actual.shape:
        return OutputParity("label", method, "labels", np.nan, np.nan, 0, len(expected), False)
    differs = np.array([a != b for a, b in zip(expected.tolist(), actual.tolist(), strict=True)])
    if differs.any() and probabilities is not None and probabilities.ndim == 2:
        top_two = np.sort(probabilities, axis=1)[:, -2:]
        tied = (top_two[:, 1] - top_two[:, 0]) <= atol + rtol * top_two[:, 1]
        differs &= ~tied
    mismatches = int(differs.sum()) if differs.size else 0
    return OutputParity(
        output="label",
        native=method,
        kind="labels",
        max_abs_diff=float("nan"),
        max_rel_diff=float("nan"),
        worst_row=int(np.argmax(differs)) if mismatches else 0,
        mismatched_rows=mismatches,
        passed=mismatches == 0,
    )
