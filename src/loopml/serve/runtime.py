"""Running one model version: the engine that executes it, and the signature it reads.

The signature is :class:`loopml.package.Signature`, read off the loaded session
(:meth:`~loopml.package.Signature.from_session`): the one recorded with the version (registry,
model card) must describe the ONNX graph, so the server never trusts a card that disagrees
with the model; without one, the signature in the model's metadata, or one inferred from the
graph, is used. Engines: onnxruntime (always), and a pickled scikit-learn estimator only when
the operator opted in with ``allow_pickle``.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np

from loopml.errors import InvalidInputError, LoopMLError
from loopml.package.signature import Signature, TensorSpec

__all__ = ["Engine", "OnnxEngine", "PickleEngine", "load_engine"]


class Engine(Protocol):
    """Executes a feed of named arrays; outputs come back in ``schema.outputs`` order."""

    schema: Signature  # what the model takes and returns

    def run(self, feed: dict[str, np.ndarray]) -> list[Any]: ...


class OnnxEngine:
    """onnxruntime, one thread by default: the server scales with processes, not threads."""

    def __init__(self, onnx: bytes, signature: dict[str, Any] | None, *, threads: int = 1) -> None:
        from loopml.package.errors import PackagingError
        from loopml.package.session import load_onnx_session

        try:
            # One thread, no spinning: a spinning pool would steal the core the event loop
            # needs between requests.
            self._session = load_onnx_session(onnx, intra_op_threads=threads)
        except PackagingError as exc:
            cause = str(exc.__cause__ or exc).strip().splitlines()
            raise InvalidInputError(
                f"the ONNX model cannot be loaded by onnxruntime: {(cause or [''])[0][:300]}",
                hint="re-export the model with loopml's packaging step (loopml models package)",
            ) from None
        self.schema = Signature.from_session(self._session, declared=signature)
        names = list(self.schema.output_names)
        inner = getattr(self._session, "_sess", None)
        if inner is not None and hasattr(inner, "run"):
            # The binding under InferenceSession.run: same call, without the per-call checks
            # of the Python wrapper (a third of the cost of running a linear model).
            self._run = lambda feed: inner.run(names, feed, None)
        else:  # pragma: no cover - other onnxruntime layouts
            self._run = lambda feed: self._session.run(names, feed)

    def run(self, feed: dict[str, np.ndarray]) -> list[Any]:
        try:
            return self._run(feed)
        except Exception as exc:
            raise InvalidInputError(f"the model rejected the input: {_short(exc)}") from None


class PickleEngine:
    """A pickled estimator with ``predict`` (opt-in: unpickling runs arbitrary code)."""

    def __init__(self, payload: bytes, signature: dict[str, Any] | None) -> None:
        import pickle

        if not signature:
            raise InvalidInputError(
                "a pickled model needs a signature listing its inputs",
                hint="register the model with a signature, or export it to ONNX",
            )
        declared = Signature.from_dict(signature)
        self._model = pickle.loads(payload)
        # The engine answers with predict() alone: one output, typed as the signature's own.
        answer = next(s for s in declared.outputs if s.name == declared.prediction_output)
        self.schema = Signature(
            inputs=declared.inputs,
            outputs=(TensorSpec("predictions", answer.dtype, (-1,)),),
            task=declared.task,
            classes=declared.classes,
            input_layout=declared.input_layout,
            feature_names=declared.feature_names,
        )

    def run(self, feed: dict[str, np.ndarray]) -> list[Any]:
        if self.schema.input_layout == "tensor":
            matrix = feed[self.schema.inputs[0].name]
            frame: Any = matrix
            if self.schema.feature_names:
                import pandas as pd

                frame = pd.DataFrame(matrix, columns=list(self.schema.feature_names))
        else:
            import pandas as pd

            frame = pd.DataFrame({name: values.reshape(-1) for name, values in feed.items()})
        try:
            return [np.asarray(self._model.predict(frame))]
        except Exception as exc:
            raise InvalidInputError(f"the model rejected the input: {_short(exc)}") from None


def load_engine(
    onnx: bytes | None,
    pickle: bytes | None,
    signature: dict[str, Any] | None,
    *,
    allow_pickle: bool,
    threads: int = 1,
    label: str,
) -> tuple[Engine, float]:
    """Build the engine for one model version; returns it with its load time in seconds."""
    started = time.perf_counter()
    engine: Engine
    if onnx is not None:
        engine = OnnxEngine(onnx, signature, threads=threads)
    elif pickle is not None and allow_pickle:
        engine = PickleEngine(pickle, signature)
    elif not allow_pickle:
        raise LoopMLError(
            f"model {label} has no ONNX artifact, and serving pickles is not allowed",
            hint="package it to ONNX (loopml models package), or opt in with allow_pickle: true "
            "if you trust who wrote the pickle (loading one executes code)",
        )
    else:
        raise LoopMLError(f"model {label} has neither an ONNX artifact nor a pickle")
    return engine, time.perf_counter() - started


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return text[:300]
