"""Walk a scikit-learn model's steps and check, before converting, that each one exports.

Errors then name the step as a path through the pipeline — ``features/log_income`` or
``model`` — instead of surfacing a converter's stack trace.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from loopml.package.errors import PackagingError

__all__ = ["Step", "preflight", "step_path", "walk_steps"]

# id(estimator) -> path, for the conversion running in this context (converters use it to
# name the step they fail on).
_PATHS: contextvars.ContextVar[dict[int, str] | None] = contextvars.ContextVar(
    "loopml_step_paths", default=None
)


@dataclass(frozen=True)
class Step:
    path: str
    estimator: Any

    def describe(self) -> str:
        return f"{self.path!r} ({type(self.estimator).__name__})"


def walk_steps(model: Any, path: str = "") -> Iterator[Step]:
    """Every leaf estimator with its path; containers are opened, not yielded."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline

    def join(name: str) -> str:
        return f"{path}/{name}" if path else name

    if isinstance(model, Pipeline):
        for name, step in model.steps:
            if step is None or (isinstance(step, str) and step == "passthrough"):
                continue
            yield from walk_steps(step, join(name))
    elif isinstance(model, ColumnTransformer):
        transformers = getattr(model, "transformers_", model.transformers)
        for name, transformer, _columns in transformers:
            if isinstance(transformer, str):  # "drop" / "passthrough"
                continue
            yield from walk_steps(transformer, join(name))
    elif isinstance(model, FeatureUnion):
        for name, transformer in model.transformer_list:
            if isinstance(transformer, str):
                continue
            yield from walk_steps(transformer, join(name))
    else:
        yield Step(path or type(model).__name__, model)


def preflight(model: Any) -> list[Step]:
    """Raise :class:`PackagingError` naming the first step that has no ONNX converter."""
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from sklearn.preprocessing import FunctionTransformer

    from loopml.package.converters import FUNCTION_TRANSFORMS, _func_name, function_is_exportable

    steps = list(walk_steps(model))
    for step in steps:
        estimator = step.estimator
        if type(estimator) not in sklearn_operator_name_map:
            raise PackagingError(
                f"step {step.describe()} cannot be exported to ONNX: no converter is "
                f"registered for {type(estimator).__module__}.{type(estimator).__qualname__}",
                hint="use a scikit-learn estimator skl2onnx supports, one of loopml's feature "
                "transforms, or register a converter with skl2onnx.update_registered_converter",
                step=step.path,
            )
        if isinstance(estimator, FunctionTransformer) and not function_is_exportable(
            estimator.func
        ):
            raise PackagingError(
                f"step {step.describe()} cannot be exported to ONNX: "
                f"func={_func_name(estimator.func)} has no ONNX equivalent",
                hint="use one of "
                + ", ".join(f"np.{name}" for name in FUNCTION_TRANSFORMS)
                + " (or loopml's 'log1p' feature transform)",
                step=step.path,
            )
    return steps


def step_path(estimator: Any) -> str | None:
    """The path of ``estimator`` in the model being converted, if known."""
    paths = _PATHS.get()
    return None if paths is None else paths.get(id(estimator))


def naming_steps(steps: list[Step]) -> contextvars.Token[dict[int, str] | None]:
    """Make ``step_path`` answer for these steps (reset the returned token when done)."""
    return _PATHS.set({id(step.estimator): step.path for step in steps})


def reset_naming(token: contextvars.Token[dict[int, str] | None]) -> None:
    _PATHS.reset(token)


def guess_step(steps: list[Step], message: str) -> Step | None:
    """The step a converter's error text is most likely about (by class name)."""
    for step in steps:
        if type(step.estimator).__name__ in message:
            return step
    return None
