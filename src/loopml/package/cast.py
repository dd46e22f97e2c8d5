"""Checking request values against an input's dtype and casting them, naming the bad cell.

Used by :mod:`loopml.package.feed` on every request, so each function has a fast path for
well-formed data (a Python type check on short lists, one vectorised check on long ones) and
falls back to :func:`_exact`, which walks the values and raises at the first one that does
not fit, by its place in the request: ``instances[3][1] (column 'age') is 'abc'; expected a
number (float64)``.

The rules are strict, as a schema's should be: float inputs take ints and floats, never
booleans or strings; integer inputs take ints and integral floats (``2.0``) within range;
string inputs take strings only; bool inputs take booleans only. A missing value (``null`` or
NaN) is accepted only by a ``nullable`` float input; infinities and values beyond the input's
range never are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from loopml.package.errors import InvalidFeedError
from loopml.package.signature import TensorSpec

__all__ = [
    "Cell",
    "column",
    "empty_batch",
    "fit_rank",
    "kind_of",
    "matrix",
    "refuse_non_finite",
    "typed_array",
]

#: How to name the value at row ``i`` of a column in an error message.
Cell = Callable[[int], str]

# Up to this many values are checked one by one in Python, which is cheaper than the fixed
# cost of NumPy's vectorised checks (a handful of ufunc calls, ~6 µs) up to about 64 values:
# one 20-feature row took 11 µs through NumPy and 5 µs here. More are converted by NumPy
# first and checked vectorised.
_SHORT = 64
_NUMBER_KINDS = "fiu"
_FLOAT_MAX = {name: float(np.finfo(name).max) for name in ("float16", "float32", "float64")}
# Per float width: the bits 1.0 leaves clear (sign and top exponent bit included), as the
# unsigned type to view the floats as. See _has_bools.
_ZERO_OR_ONE_BITS: dict[int, tuple[Any, Any]] = {
    8: (np.uint64, np.uint64(0xC00F_FFFF_FFFF_FFFF)),
    4: (np.uint32, np.uint32(0xC07F_FFFF)),
}
_INT_RANGE = {
    name: (int(np.iinfo(name).min), int(np.iinfo(name).max))
    for name in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
}


# --- a column of scalars ------------------------------------------------------------------


def column(values: Any, spec: TensorSpec, cell: Cell, field: str) -> np.ndarray:
    """A 1-D array of ``spec``'s dtype from one value per row (a list, tuple or 1-D array)."""
    if isinstance(values, np.ndarray):
        return _typed_column(values, spec, cell, field)
    kind = spec.np_dtype.kind
    if kind == "f":
        return _floats(values, spec, cell, field)
    if kind in "iu":
        return _ints(values, spec, cell, field)
    if kind == "b":
        for v in values:
            if type(v) is not bool:
                return _exact(values, spec, cell, field)
        return np.array(values, dtype=np.bool_)
    for v in values:
        if type(v) is not str:
            return _exact(values, spec, cell, field)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _floats(values: Sequence[Any], spec: TensorSpec, cell: Cell, field: str) -> np.ndarray:
    dtype = spec.np_dtype
    limit = _FLOAT_MAX[spec.dtype]
    if len(values) <= _SHORT:
        for v in values:
            t = type(v)
            # One comparison refuses NaN, infinities and values beyond the dtype's range.
            if (t is not float and t is not int) or not -limit <= v <= limit:
                return _exact(values, spec, cell, field)
        return np.array(values, dtype=dtype)
    return _long(values, spec, cell, field)


def _ints(values: Sequence[Any], spec: TensorSpec, cell: Cell, field: str) -> np.ndarray:
    dtype = spec.np_dtype
    low, high = _INT_RANGE[spec.dtype]
    if len(values) <= _SHORT:
        for v in values:
            if type(v) is not int or not low <= v <= high:
                return _exact(values, spec, cell, field)
        return np.array(values, dtype=dtype)
    return _long(values, spec, cell, field)


def _long(values: Sequence[Any], spec: TensorSpec, cell: Cell, field: str) -> np.ndarray:
    """A long list of numbers: parsed by NumPy and checked vectorised, else the exact path."""
    try:
        array = np.array(values)
    except (ValueError, TypeError, OverflowError):
        return _exact(values, spec, cell, field)
    out = _checked(array, values, spec) if array.ndim == 1 else None
    return out if out is not None else _exact(values, spec, cell, field)


def _typed_column(array: np.ndarray, spec: TensorSpec, cell: Cell, field: str) -> np.ndarray:
    """A column given as a NumPy array (the Python API): typed already, checked vectorised."""
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.reshape(-1)
    if array.ndim != 1:
        raise InvalidFeedError(
            f"column {field!r} must hold one value per row; got an array of shape "
            f"{list(array.shape)}",
            field=field,
        )
    kind, target = array.dtype.kind, spec.np_dtype
    if kind == "O" or (kind in _NUMBER_KINDS and target.kind in _NUMBER_KINDS):
        out = None if kind == "O" else _checked(array, None, spec)
        return out if out is not None else _exact(array.tolist(), spec, cell, field)
    if kind == target.kind == "b":
        return array
    if kind in "US" and target.kind == "O":
        return array.astype(object)
    return _exact(array.tolist(), spec, cell, field)


# --- rows of scalars ----------------------------------------------------------------------


def matrix(rows: Sequence[Any], spec: TensorSpec, width: int | None) -> np.ndarray | None:
    """``rows`` (lists or tuples of ``width`` numbers) as one 2-D array of ``spec``'s dtype.

    Returns ``None`` whenever anything is unusual — a ragged row, a string, a boolean, a
    missing or out-of-range value — so that the caller's careful path, which names the bad
    cell, takes over. Used for tensor inputs and for models whose columns share one dtype.
    """
    dtype = spec.np_dtype
    kind = dtype.kind
    if kind not in _NUMBER_KINDS:
        return None
    if width is not None and len(rows) * width <= _SHORT:
        if kind == "f":
            limit = _FLOAT_MAX[spec.dtype]
            for row in rows:
                if (type(row) is not list and type(row) is not tuple) or len(row) != width:
                    return None
                for v in row:
                    t = type(v)
                    if (t is not float and t is not int) or not -limit <= v <= limit:
                        return None
        else:
            low, high = _INT_RANGE[spec.dtype]
            for row in rows:
                if (type(row) is not list and type(row) is not tuple) or len(row) != width:
                    return None
                for v in row:
                    if type(v) is not int or not low <= v <= high:
                        return None
        return np.array(rows, dtype=dtype)
    try:
        array = np.array(rows)
    except (ValueError, TypeError, OverflowError):
        return None
    if array.ndim != 2 or not array.size or (width is not None and array.shape[1] != width):
        return None
    return _checked(array, rows, spec)


def _checked(array: np.ndarray, source: Any, spec: TensorSpec) -> np.ndarray | None:
    """A freshly parsed numeric ``array`` cast to ``spec``'s dtype, or ``None`` when it holds
    anything the careful path must look at.

    For a float input: finite numbers within its range; for an integer input: integers within
    its range (integral floats are rare, and the exact path accepts them). ``source``, the
    lists the array was parsed from, is checked for booleans (``None``: a typed array).
    """
    kind = array.dtype.kind
    if kind not in _NUMBER_KINDS:
        return None
    target = spec.dtype
    if array.size:
        if spec.np_dtype.kind in "iu":
            low, high = _INT_RANGE[target]
            if kind == "f" or not (low <= int(array.min()) and int(array.max()) <= high):
                return None
        elif target == "float64":
            # count_nonzero: a third of the cost of .all() on arrays of this size.
            if kind == "f" and np.count_nonzero(np.isfinite(array)) != array.size:
                return None
        # NaN propagates through the maximum and compares False. (The ufunc's own reduce:
        # ndarray.max adds a Python wrapper on every request.)
        elif not np.maximum.reduce(np.abs(array), axis=None) <= _FLOAT_MAX[target]:
            return None
    out = array.astype(spec.np_dtype, copy=False)
    if source is not None and _has_bools(out, source):
        return None
    return out


def _has_bools(array: np.ndarray, source: Any) -> bool:
    """Whether ``source`` (the lists ``array`` was parsed from) holds a boolean.

    NumPy reads ``[1.0, true]`` as ``[1.0, 1.0]``; only the cells equal to 0 or 1 can have
    been booleans, so only those are looked at in Python.
    """
    bits = _ZERO_OR_ONE_BITS.get(array.dtype.itemsize) if array.dtype.kind == "f" else None
    if bits is not None:
        # One pass over the bits: only 0, 1 and the powers of two in (0, 1) have none outside
        # the mask set (those last are merely looked at below, needlessly).
        if np.count_nonzero(np.bitwise_and(array.view(bits[0]), bits[1])) == array.size:
            return False
    elif not (np.count_nonzero(array == 0) or np.count_nonzero(array == 1)):
        return False
    suspects = np.flatnonzero((array == 0) | (array == 1)).tolist()
    if array.ndim == 1:
        return any(type(source[i]) is bool for i in suspects)
    width = array.shape[1]
    return any(type(source[i // width][i % width]) is bool for i in suspects)


# --- the careful path ---------------------------------------------------------------------


def _exact(values: Any, spec: TensorSpec, cell: Cell, field: str) -> np.ndarray:
    """Check every value, raising at the first that does not fit; cast the rest."""
    values = list(values)  # a copy: missing values and integral floats are replaced below
    dtype = spec.np_dtype
    kind = dtype.kind
    if kind == "f":
        limit = _FLOAT_MAX[spec.dtype]
        for i, v in enumerate(values):
            if v is None or (isinstance(v, float | np.floating) and math.isnan(v)):
                if not spec.nullable:
                    raise _missing(cell(i), v, dtype, field)
                values[i] = math.nan
            elif not _is_number(v):
                raise _wrong(cell(i), v, spec, field)
            elif not -limit <= v <= limit:
                if isinstance(v, float | np.floating) and math.isinf(v):
                    raise _missing(cell(i), v, dtype, field)
                raise _out_of_range(cell(i), v, dtype, field)
    elif kind in "iu":
        low, high = _INT_RANGE[spec.dtype]
        for i, v in enumerate(values):
            if isinstance(v, float | np.floating):
                if not math.isfinite(v) or not float(v).is_integer():
                    raise _wrong(cell(i), v, spec, field)
                values[i] = v = int(v)
            elif not _is_number(v):
                raise _wrong(cell(i), v, spec, field)
            if not low <= int(v) <= high:
                raise _out_of_range(cell(i), v, dtype, field)
    elif kind == "b":
        for i, v in enumerate(values):
            if not isinstance(v, bool | np.bool_):
                raise _wrong(cell(i), v, spec, field)
    else:
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise _wrong(cell(i), v, spec, field)
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array
    return np.array(values, dtype=dtype)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


# --- typed arrays (Open Inference Protocol tensors) ---------------------------------------


def typed_array(array: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    """Cast a typed tensor to the input's dtype when that cannot surprise anyone."""
    target = spec.np_dtype
    if array.dtype == target:
        return array
    source, wanted = array.dtype.kind, target.kind
    if not (
        (wanted == "f" and source in _NUMBER_KINDS)
        or (wanted in "iu" and source in "iu")
        or (wanted == "O" and source in "OUS")
        or (wanted == "b" and source == "b")
    ):
        raise InvalidFeedError(
            f"{where} has datatype {_v2(array.dtype)}; the model expects {spec.v2_datatype}",
            field=spec.name,
        )
    if array.size and (wanted in "iu" or (wanted == "f" and spec.dtype != "float64")):
        # Values beyond the target's range would wrap around or become inf: refuse them.
        if wanted in "iu":
            low, high = _INT_RANGE[spec.dtype]
            fits = low <= int(array.min()) and int(array.max()) <= high
        else:
            with np.errstate(invalid="ignore"):
                fits = not (np.abs(array) > _FLOAT_MAX[spec.dtype]).any()
        if not fits:
            raise InvalidFeedError(
                f"{where} holds values out of range for {spec.v2_datatype}",
                field=spec.name,
                hint=f"send values that fit {spec.dtype}",
            )
    return array.astype(target)


def fit_rank(array: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    """Accept ``[n]`` for an ``[n, 1]`` input; check every fixed dimension."""
    shape = spec.shape
    if array.ndim == 1 and len(shape) == 2 and shape[1] == 1:
        array = array.reshape(-1, 1)
    if array.ndim != len(shape) or any(
        want != -1 and got != want for got, want in zip(array.shape, shape, strict=False)
    ):
        raise InvalidFeedError(
            f"{where} has shape {list(array.shape)}; the model expects {list(shape)} "
            "(-1 = any size)",
            field=spec.name,
        )
    return array


def refuse_non_finite(array: np.ndarray, spec: TensorSpec, where: str) -> None:
    """Raise naming the first NaN (unless ``spec`` is nullable) or infinity in ``array``."""
    if array.dtype.kind != "f":
        return
    finite = np.isfinite(array)
    if finite.all():
        return
    bad = ~finite & ~np.isnan(array) if spec.nullable else ~finite
    if bad.any():
        index = np.argwhere(bad)[0].tolist()
        value = array[tuple(index)].item()
        raise _missing(f"{where} at index {index}", value, array.dtype, spec.name)


def _v2(dtype: np.dtype[Any]) -> str:
    from loopml.package.signature import V2_DATATYPES

    return V2_DATATYPES.get(dtype.name, dtype.name)


# --- messages -----------------------------------------------------------------------------


def kind_of(value: Any) -> str:
    """A short description of a request value for error messages."""
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    if isinstance(value, np.generic):
        value = value.item()
    return f"{type(value).__name__} {value!r:.40}"


def _show(value: Any) -> str:
    if isinstance(value, list | tuple | dict) or value is None:
        return kind_of(value)
    if isinstance(value, np.generic):
        value = value.item()
    return f"{value!r:.80}"


def expected(spec: TensorSpec) -> str:
    """What an input takes, in words: ``a number (float64)``."""
    kind = spec.np_dtype.kind
    if kind == "f":
        return f"a number ({spec.dtype})"
    if kind in "iu":
        return f"an integer ({spec.dtype})"
    if kind == "b":
        return "a boolean (true/false)"
    return "a string"


def _wrong(path: str, value: Any, spec: TensorSpec, field: str) -> InvalidFeedError:
    what = expected(spec)
    if isinstance(value, list | tuple | dict):
        what = f"one scalar, {what}"
    return InvalidFeedError(
        f"{path} is {_show(value)}; expected {what}",
        field=field,
        hint=f"send {spec.dtype} values for {field!r}",
    )


def _missing(path: str, value: Any, dtype: np.dtype[Any], field: str) -> InvalidFeedError:
    shown = "null" if value is None else repr(float(value))
    return InvalidFeedError(
        f"{path} is {shown}, a missing or non-finite value; expected a finite number "
        f"({dtype.name}): {field!r} does not accept missing values",
        field=field,
        hint="impute missing values before sending, or package the model with an imputer",
    )


def _out_of_range(path: str, value: Any, dtype: np.dtype[Any], field: str) -> InvalidFeedError:
    return InvalidFeedError(
        f"{path} is {_show(value)}, which is out of range for {dtype.name}",
        field=field,
        hint=f"send values that fit {dtype.name}",
    )


def empty_batch(where: str) -> InvalidFeedError:
    return InvalidFeedError(
        f"empty batch: {where} has no rows", hint="send at least one row to predict"
    )
