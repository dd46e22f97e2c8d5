"""Checking and casting request values to a model input's dtype, naming the bad cell.

Used by :mod:`loopml.serve.feed`: a cast that could surprise (a string for a number, a float
that is not an integer for an int64 input, an out-of-range value) is refused with the path of
the first offending value, e.g. ``instances[3][1] (column 'age') is 'abc'; expected a number``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from loopml.errors import InvalidInputError
from loopml.serve.runtime import TensorSpec

__all__ = [
    "cast_typed_array",
    "cast_values",
    "cell_path",
    "empty_batch",
    "fit_rank",
    "kind_of",
    "locate_bad_value",
    "shape_column",
]

NUMBER_KINDS = "fiu"


def cast_values(
    array: np.ndarray,
    spec: TensorSpec,
    where: str,
    source: list[Any],
    columns: tuple[str, ...] | None,
    cell: Callable[[int], str] | None = None,
) -> np.ndarray:
    # Values out of the target's range become inf and fail the finite check: a 400, not a crash.
    with np.errstate(all="ignore"):
        return _cast_checked(array, spec, where, source, columns, cell)


def _cast_checked(
    array: np.ndarray,
    spec: TensorSpec,
    where: str,
    source: list[Any],
    columns: tuple[str, ...] | None,
    cell: Callable[[int], str] | None = None,
) -> np.ndarray:
    """Cast a freshly parsed array to ``spec.dtype``, refusing lossy or surprising casts."""
    target = spec.dtype
    kind = array.dtype.kind
    if target.kind == "f":
        if kind in NUMBER_KINDS:
            return array.astype(target, copy=False)
        if kind == "O" and all(v is None or _is_number(v) for v in array.ravel().tolist()):
            # JSON null is a missing value: NaN, refused later unless the model allows it.
            return np.array(
                [np.nan if v is None else v for v in array.ravel().tolist()], dtype=target
            ).reshape(array.shape)
    elif target.kind in "iu":
        if kind in "iu":
            return array.astype(target, copy=False)
        if kind == "f" and np.isfinite(array).all() and (array == np.floor(array)).all():
            return array.astype(target)
    elif target.kind == "b":
        if kind == "b":
            return array
    elif target.kind in "OUS":
        if kind in "US":
            return array.astype(object)
        if kind == "O" and all(isinstance(v, str) for v in array.ravel().tolist()):
            return array
    locate_bad_value(source, spec, where, columns, cell)
    raise InvalidInputError(f"{where} holds values that are not {_expected(spec)}")


def locate_bad_value(
    source: list[Any],
    spec: TensorSpec,
    where: str,
    columns: tuple[str, ...] | None,
    cell: Callable[[int], str] | None = None,
) -> None:
    """Raise naming the first value in ``source`` that does not fit ``spec``."""
    for i, item in enumerate(source):
        cells = item if isinstance(item, list) else [item]
        for j, value in enumerate(cells):
            if _fits(value, spec.dtype):
                continue
            if cell is not None:
                path = cell(i)
            elif isinstance(item, list):
                path = f"{where}[{i}][{j}]"
            else:
                path = f"{where}[{i}]"
            named = (
                f" (feature {columns[j]!r})"
                if columns and isinstance(item, list) and j < len(columns)
                else ""
            )
            raise InvalidInputError(
                f"{path}{named} is {value!r:.80}; expected {_expected(spec)}",
            )


def _fits(value: Any, dtype: np.dtype[Any]) -> bool:
    if dtype.kind == "f":
        return value is None or _is_number(value)
    if dtype.kind in "iu":
        return type(value) is int or (type(value) is float and value.is_integer())
    if dtype.kind == "b":
        return type(value) is bool
    return isinstance(value, str)


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _expected(spec: TensorSpec) -> str:
    kind = spec.dtype.kind
    if kind == "f":
        return f"a number ({spec.dtype.name})"
    if kind in "iu":
        return f"an integer ({spec.dtype.name})"
    if kind == "b":
        return "a boolean"
    return "a string"


def cast_typed_array(array: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    """Cast a typed tensor to the input's dtype when that cannot surprise anyone."""
    with np.errstate(all="ignore"):
        return _cast_typed(array, spec, where)


def _cast_typed(array: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    if array.dtype == spec.dtype:
        return array
    source, target = array.dtype.kind, spec.dtype.kind
    ok = (
        (target == "f" and source in NUMBER_KINDS)
        or (target in "iu" and source in "iu")
        or (target in "OUS" and source in "OUS")
        or (target == "b" and source == "b")
    )
    if not ok:
        raise InvalidInputError(
            f"{where} has datatype {_v2(array.dtype)}; the model expects {spec.datatype}",
        )
    return array.astype(spec.dtype)


def fit_rank(array: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    """Accept ``[n]`` for a ``[n, 1]`` input; check every fixed dimension."""
    if array.ndim == 1 and len(spec.shape) == 2 and spec.shape[1] == 1:
        array = array.reshape(-1, 1)
    if array.ndim != len(spec.shape) or any(
        want != -1 and got != want for got, want in zip(array.shape, spec.shape, strict=False)
    ):
        raise InvalidInputError(
            f"{where} has shape {list(array.shape)}; the model expects {list(spec.shape)} "
            f"(-1 = any size)",
        )
    return array


def cell_path(where: str, column: int, name: str) -> Callable[[int], str]:
    """How to name row ``i`` of a column that came from positional rows."""
    return lambda i: f"{where}[{i}][{column}] (column {name!r})"


def shape_column(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if len(spec.shape) == 2:
        return array.reshape(-1, 1)
    return array


def _v2(dtype: np.dtype[Any]) -> str:
    from loopml.serve.runtime import V2_DATATYPES

    return V2_DATATYPES.get(dtype.name, dtype.name)


def kind_of(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return f"{type(value).__name__} {value!r:.40}"


def empty_batch(where: str) -> InvalidInputError:
    return InvalidInputError(
        f"empty batch: {where} has no rows", hint="send at least one row to predict"
    )
