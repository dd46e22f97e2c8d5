"""Turn request data into the ONNX feed a model's :class:`Signature` asks for.

The server calls :func:`to_feed` on every request, so this module is written for speed: no
pandas, a per-signature plan cached on the signature, and a pure-Python check of short lists
(one-row requests convert in a few microseconds) before handing them to NumPy. Every problem
raises :class:`~loopml.package.errors.InvalidFeedError` naming the input, the expected dtype
and shape, and the offending value and row; nothing else escapes for any request data.

Type rules (strict, as a schema should be): float inputs take ints and floats, never bools or
strings; int inputs take ints and integral floats (``2.0``); string inputs take strings only;
bool inputs take bools only. NaN (or ``null``) is accepted only by inputs marked ``nullable``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.package.errors import InvalidFeedError

if TYPE_CHECKING:
    import pandas as pd

    from loopml.package.signature import Signature, TensorSpec

__all__ = ["frame_to_feed", "rows_to_columns", "to_feed"]

# Lists up to this length are checked element by element in Python (cheaper than NumPy's
# per-call overhead); longer ones are converted by NumPy first and checked vectorised.
_SHORT = 16
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_NP_DTYPES: dict[str, Any] = {
    "float64": np.float64,
    "float32": np.float32,
    "int64": np.int64,
    "string": object,
    "bool": np.bool_,
}

_Converter = Callable[[Any, "TensorSpec"], np.ndarray]
_PLAN_ATTR = "_loopml_feed_plan"


# --- public API ---------------------------------------------------------------------------------


def to_feed(signature: Signature, columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Convert ``{column: values}`` into ``{onnx_input: ndarray}`` for ``session.run``.

    For the ``"columns"`` layout each key is an input name and each value a list (or 1-D
    array, or ``[[v], [v]]``) with one value per row. For the ``"tensor"`` layout pass either
    ``{input_name: rows}`` (a 2-D list/array) or one list per name in
    ``signature.feature_names``.

    Raises :class:`InvalidFeedError` for a missing or unknown column, a value of the wrong type
    (``"abc"`` for a float), a wrong shape, NaN where the input is not nullable, rows of
    different lengths, or an empty batch.
    """
    if type(columns) is not dict and not isinstance(columns, Mapping):
        raise InvalidFeedError(
            f"inputs must be an object mapping names to lists of values, "
            f"got {type(columns).__name__}",
            hint=f"send {{{', '.join(repr(c) for c in _column_names(signature))}: [...]}}",
        )
    if signature.input_layout == "tensor":
        return _tensor_feed(signature, columns)
    plan: list[tuple[TensorSpec, _Converter, bool]] = signature.__dict__.get(_PLAN_ATTR) or _plan(
        signature
    )
    if len(columns) != len(plan):
        _check_names(signature, columns)
    feed: dict[str, np.ndarray] = {}
    rows = -1
    for spec, convert, two_d in plan:
        try:
            values = columns[spec.name]
        except KeyError:
            _check_names(signature, columns)
            raise  # unreachable: _check_names raised
        array = convert(values, spec)
        n = array.shape[0]
        if rows != n:
            if rows == -1:
                if n == 0:
                    raise _empty_batch()
                rows = n
            else:
                raise _length_mismatch(plan[0][0].name, rows, spec.name, n)
        feed[spec.name] = array.reshape(n, 1) if two_d else array
    return feed


def rows_to_columns(signature: Signature, rows: Sequence[Any]) -> dict[str, Any]:
    """Pivot row-major request data (``[[1.0, "a"], ...]`` or ``[{"x": 1.0}, ...]``) to columns.

    The result feeds :func:`to_feed`. Positional rows follow ``signature.columns`` order.
    """
    if type(rows) is list and rows and signature.input_layout == "columns":
        # fast path for the common, well-formed request: a list of lists of the right width
        names = signature.input_names
        width = len(names)
        for row in rows:
            if type(row) is not list or len(row) != width:
                break
        else:
            if len(rows) == 1:
                return {name: [value] for name, value in zip(names, rows[0], strict=True)}
            return dict(zip(names, map(list, zip(*rows, strict=True)), strict=True))
    if isinstance(rows, str | bytes) or not isinstance(rows, Sequence | np.ndarray):
        raise InvalidFeedError(
            f"instances must be a list of rows, got {type(rows).__name__}",
            hint=f"send [[{', '.join(_column_names(signature))}], ...]",
        )
    if len(rows) == 0:
        raise _empty_batch()
    names = _column_names(signature)
    if signature.input_layout == "tensor":
        first = rows[0]
        if isinstance(first, Mapping):
            if not signature.feature_names:
                raise InvalidFeedError(
                    "this model takes positional rows: its feature names are not recorded",
                    field=signature.inputs[0].name,
                    hint="send each row as a list of numbers",
                )
            return _records_to_columns(signature, rows, list(signature.feature_names))
        return {signature.inputs[0].name: rows}
    if isinstance(rows[0], Mapping):
        return _records_to_columns(signature, rows, list(names))
    width = len(names)
    for index, row in enumerate(rows):
        if isinstance(row, str | bytes | Mapping) or not isinstance(row, Sequence | np.ndarray):
            raise InvalidFeedError(
                f"row {index} must be a list of {width} values "
                f"({', '.join(names)}), got {_show(row)}",
                hint="send every row in the same form",
            )
        if len(row) != width:
            raise InvalidFeedError(
                f"row {index} has {len(row)} values; the model takes {width}: {', '.join(names)}",
                hint="send one value per input column, in this order",
            )
    return {name: list(column) for name, column in zip(names, zip(*rows, strict=True), strict=True)}


def frame_to_feed(signature: Signature, frame: pd.DataFrame | np.ndarray) -> dict[str, np.ndarray]:
    """Feed built from a whole DataFrame (or 2-D array), for parity checks and batch scoring.

    Unlike :func:`to_feed` it does not refuse NaN (scoring data as given is the point), but it
    still refuses missing columns and values ONNX cannot carry. Polars frames are accepted.
    """
    data: Any = as_pandas(frame)
    if signature.input_layout == "tensor":
        spec = signature.inputs[0]
        values = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
        if values.ndim != 2 or (spec.shape[1] != -1 and values.shape[1] != spec.shape[1]):
            raise InvalidFeedError(
                f"input {spec.name!r} expects {spec.describe()}, got an array of shape "
                f"{list(values.shape)}",
                field=spec.name,
            )
        try:
            return {spec.name: values.astype(_NP_DTYPES[spec.dtype])}
        except (TypeError, ValueError) as exc:
            raise InvalidFeedError(
                f"input {spec.name!r} expects {spec.dtype} values: {exc}", field=spec.name
            ) from exc
    if not hasattr(data, "columns"):
        raise InvalidFeedError(
            f"this model takes named columns ({', '.join(signature.input_names)}); "
            f"got a {type(data).__name__} without column names",
            hint="pass a pandas DataFrame",
        )
    feed = {}
    for spec in signature.inputs:
        if spec.name not in data.columns:
            raise InvalidFeedError(
                f"the data has no column {spec.name!r} ({spec.describe()})",
                field=spec.name,
                hint=f"the model takes: {', '.join(signature.input_names)}",
            )
        column = np.asarray(data[spec.name])
        if spec.dtype == "string":
            column = column.astype(object)
            bad = [i for i, v in enumerate(column) if not isinstance(v, str)]
            if bad:
                raise InvalidFeedError(
                    f"column {spec.name!r} holds {_show(column[bad[0]])} at row {bad[0]}; "
                    "ONNX string inputs cannot carry missing or non-string values",
                    field=spec.name,
                    hint="fill missing categories (e.g. with 'missing') in the feature transform",
                )
        elif column.dtype.kind == "M" or str(data[spec.name].dtype).startswith("datetime64"):
            column = _epoch_seconds(data[spec.name])
        else:
            try:
                column = column.astype(_NP_DTYPES[spec.dtype])
            except (TypeError, ValueError) as exc:
                raise InvalidFeedError(
                    f"column {spec.name!r} cannot be read as {spec.dtype}: {exc}",
                    field=spec.name,
                ) from exc
        feed[spec.name] = column.reshape(-1, *spec.shape[1:])
    return feed


def _epoch_seconds(series: Any) -> np.ndarray:
    """Datetimes as int64 seconds since the Unix epoch (UTC), the form ONNX inputs carry."""
    import pandas as pd

    stamps = pd.to_datetime(series, utc=True)
    return np.asarray(
        stamps.dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    )


def as_pandas(frame: Any) -> Any:
    """A polars (or pyarrow) table as a pandas DataFrame; anything else unchanged."""
    module = type(frame).__module__
    if module.startswith("polars") and hasattr(frame, "to_pandas"):
        return frame.to_pandas()
    if module.startswith("pyarrow") and hasattr(frame, "to_pandas"):
        return frame.to_pandas()
    return frame


# --- the per-signature plan -------------------------------------------------------------------


def _plan(signature: Signature) -> Any:
    plan = signature.__dict__.get(_PLAN_ATTR)
    if plan is None:
        plan = [(spec, _CONVERTERS[spec.dtype], len(spec.shape) == 2) for spec in signature.inputs]
        # The signature is frozen; the plan is a cache derived from it, not state.
        object.__setattr__(signature, _PLAN_ATTR, plan)
    return plan


def _column_names(signature: Signature) -> tuple[str, ...]:
    return signature.columns or signature.input_names


def _check_names(signature: Signature, columns: Mapping[str, Any]) -> None:
    expected = signature.input_names
    missing = [name for name in expected if name not in columns]
    if missing:
        spec = signature.input(missing[0])
        raise InvalidFeedError(
            f"missing input {spec.name!r} ({spec.describe()})"
            + (
                f" and {len(missing) - 1} more: {', '.join(missing[1:])}"
                if len(missing) > 1
                else ""
            ),
            field=spec.name,
            hint=f"the model takes: {', '.join(expected)}",
        )
    extra = [str(name) for name in columns if name not in expected]
    if extra:
        raise InvalidFeedError(
            f"unknown input{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))}",
            field=extra[0],
            hint=f"the model takes: {', '.join(expected)}",
        )


def _records_to_columns(
    signature: Signature, rows: Sequence[Any], names: list[str]
) -> dict[str, Any]:
    wanted = set(names)
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InvalidFeedError(
                f"row {index} must be an object like row 0, got {_show(row)}",
                hint="send every row in the same form",
            )
        if len(row) != len(names) or not wanted.issuperset(row):
            missing = [n for n in names if n not in row]
            extra = [str(k) for k in row if k not in wanted]
            detail = []
            if missing:
                detail.append(f"missing {', '.join(map(repr, missing))}")
            if extra:
                detail.append(f"unknown {', '.join(map(repr, extra))}")
            raise InvalidFeedError(
                f"row {index}: {'; '.join(detail)}",
                field=(missing or extra)[0],
                hint=f"the model takes: {', '.join(names)}",
            )
    columns = {name: [row[name] for row in rows] for name in names}
    if signature.input_layout == "tensor":
        return {
            signature.inputs[0].name: [list(row) for row in zip(*columns.values(), strict=True)]
        }
    return columns


def _tensor_feed(signature: Signature, columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    spec = signature.inputs[0]
    width = spec.shape[1]
    if spec.name in columns and len(columns) == 1:
        values = columns[spec.name]
        array = _asarray(_as_sequence(values, spec), spec)
        if array.ndim != 2 or (width != -1 and array.shape[1] != width):
            if isinstance(values, list):
                for index, row in enumerate(values):
                    if not isinstance(row, list | tuple) or (width != -1 and len(row) != width):
                        raise InvalidFeedError(
                            f"input {spec.name!r} expects rows of {width} values "
                            f"({spec.describe()}); row {index} is {_show(row)}",
                            field=spec.name,
                        )
            if array.size == 0:
                raise _empty_batch()
            raise InvalidFeedError(
                f"input {spec.name!r} expects {spec.describe()}, got shape {list(array.shape)}",
                field=spec.name,
            )
        if array.shape[0] == 0:
            raise _empty_batch()
        flat = array.ravel()
        if array.dtype.kind not in "fiub":
            # names the offending value and its (row, column) position
            original = [v for row in values for v in row] if isinstance(values, list) else flat
            try:
                _CONVERTERS[spec.dtype](list(original), spec)
            except InvalidFeedError as exc:
                raise _at_cell(exc, spec, array.shape[1]) from None
        try:
            converted = _CONVERTERS[spec.dtype](flat, spec)
        except InvalidFeedError as exc:
            raise _at_cell(exc, spec, array.shape[1]) from None
        return {spec.name: converted.reshape(array.shape)}
    names = signature.feature_names
    if not names:
        raise InvalidFeedError(
            f"this model takes one 2-D input {spec.name!r} ({spec.describe()})",
            field=spec.name,
            hint=f'send {{"{spec.name}": [[...], ...]}} or rows as "instances"',
        )
    column_spec = type(spec)(spec.name, spec.dtype, (-1,), spec.nullable)
    if set(columns) != set(names):
        missing = [n for n in names if n not in columns]
        extra = [str(n) for n in columns if n not in names]
        what = f"missing input {missing[0]!r}" if missing else f"unknown input {extra[0]!r}"
        raise InvalidFeedError(
            what, field=(missing or extra)[0], hint=f"the model takes: {', '.join(names)}"
        )
    arrays = []
    for name in names:
        try:
            arrays.append(_CONVERTERS[spec.dtype](columns[name], column_spec))
        except InvalidFeedError as exc:
            raise InvalidFeedError(
                exc.message.replace(repr(spec.name), repr(name)), field=name
            ) from None
    lengths = {a.shape[0] for a in arrays}
    if len(lengths) > 1:
        sizes = ", ".join(f"{n}={a.shape[0]}" for n, a in zip(names, arrays, strict=True))
        raise InvalidFeedError(f"inputs have different lengths: {sizes}")
    if 0 in lengths:
        raise _empty_batch()
    return {spec.name: np.column_stack(arrays)}


def _at_cell(exc: InvalidFeedError, spec: TensorSpec, width: int) -> InvalidFeedError:
    """Rewrite "at row i" (of the flattened tensor) as "at row r, column c"."""
    message = exc.message
    marker = " at row "
    if marker in message:
        head, _, tail = message.rpartition(marker)
        index = int(tail)
        message = f"{head} at row {index // width}, column {index % width}"
    return InvalidFeedError(message, field=spec.name, hint=exc.hint)


# --- element converters -----------------------------------------------------------------------


def _as_sequence(values: Any, spec: TensorSpec) -> Any:
    """Reject things that are not a list of values (a bare scalar, a string, an object)."""
    if isinstance(values, list | np.ndarray):
        return values
    if isinstance(values, tuple):
        return list(values)
    raise InvalidFeedError(
        f"input {spec.name!r} expects a list of {spec.dtype} values (one per row), "
        f"got {_show(values)}",
        field=spec.name,
        hint=f'send "{spec.name}": [value, ...]',
    )


def _flatten(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if array.ndim == 1:
        return array
    if array.ndim == 2 and array.shape[1] == 1:
        return array[:, 0]
    raise InvalidFeedError(
        f"input {spec.name!r} expects one value per row ({spec.describe()}), "
        f"got values of shape {list(array.shape)}",
        field=spec.name,
    )


def _float_converter(np_dtype: Any) -> _Converter:
    is_f32 = np_dtype is np.float32

    def convert(values: Any, spec: TensorSpec) -> np.ndarray:
        if type(values) is not list:
            values = _as_sequence(values, spec)
        if type(values) is list and len(values) <= _SHORT:
            has_none = False
            for row, v in enumerate(values):
                t = type(v)
                if t is float:
                    if not math.isfinite(v) or (is_f32 and abs(v) > _FLOAT32_MAX):
                        if v != v and spec.nullable:
                            continue
                        raise _bad_number(spec, v, row)
                elif t is int:
                    if is_f32 and abs(v) > _FLOAT32_MAX:
                        raise _bad_number(spec, v, row)
                elif v is None and spec.nullable:
                    has_none = True
                elif t is list:  # [[v], [v]] columns, or a shape error to report
                    return _float_slow(values, spec, np_dtype)
                else:
                    raise _bad_value(spec, v, row)
            if has_none:
                values = [math.nan if v is None else v for v in values]
            try:
                return np.array(values, dtype=np_dtype)
            except OverflowError:  # an int beyond float64's range
                pass
        return _float_slow(values, spec, np_dtype)

    return convert


def _float_slow(values: Any, spec: TensorSpec, np_dtype: Any) -> np.ndarray:
    array = _flatten(_asarray(values, spec), spec)
    kind = array.dtype.kind
    if kind in "iu":
        array = array.astype(np_dtype)
    elif kind == "f":
        array = array.astype(np_dtype, copy=False)
    elif kind == "O":
        array = _objects_to_float(array, spec, np_dtype)
    else:
        raise _bad_value(spec, *_first_bad(values, array, _is_number))
    finite = np.isfinite(array)
    if not finite.all():
        bad = ~finite & ~np.isnan(array) if spec.nullable else ~finite
        if bad.any():
            row = int(np.argmax(bad))
            original = values[row] if isinstance(values, list) else array[row]
            raise _bad_number(spec, original, row)
    return array


def _objects_to_float(array: np.ndarray, spec: TensorSpec, np_dtype: Any) -> np.ndarray:
    out = np.empty(array.shape[0], dtype=np_dtype)
    for row, v in enumerate(array):
        v = _unwrap(v)
        if v is None and spec.nullable:
            out[row] = math.nan
        elif _is_number(v):
            try:
                out[row] = v
            except OverflowError:
                raise _bad_number(spec, v, row) from None
        else:
            raise _bad_value(spec, v, row)
    return out


def _int_converter(values: Any, spec: TensorSpec) -> np.ndarray:
    values = _as_sequence(values, spec)
    if type(values) is list and len(values) <= _SHORT:
        for row, v in enumerate(values):
            t = type(v)
            if t is int:
                if not _INT64_MIN <= v <= _INT64_MAX:
                    raise _bad_number(spec, v, row)
            elif t is not float or not v.is_integer() or not -(2.0**63) <= v < 2.0**63:
                break  # the general path below finds and names the bad value
        else:
            return np.array(values, dtype=np.int64)
    array = _flatten(_asarray(values, spec), spec)
    kind = array.dtype.kind
    if kind == "i":
        return array.astype(np.int64, copy=False)
    if kind == "u":
        too_big = array > _INT64_MAX
        if too_big.any():
            row = int(np.argmax(too_big))
            raise _bad_number(spec, array[row], row)
        return array.astype(np.int64)
    if kind == "f":
        ok = np.isfinite(array) & (np.abs(array) < 2.0**63)
        ok &= array == np.round(np.where(ok, array, 0.0))
        if not ok.all():
            row = int(np.argmin(ok))
            raise _bad_value(spec, array[row], row)
        return array.astype(np.int64)
    if kind == "O":
        out = np.empty(array.shape[0], dtype=np.int64)
        for row, v in enumerate(array):
            v = _unwrap(v)
            if not _is_number(v) or (
                isinstance(v, float | np.floating) and not float(v).is_integer()
            ):
                raise _bad_value(spec, v, row)
            if not _INT64_MIN <= int(v) <= _INT64_MAX:
                raise _bad_number(spec, v, row)
            out[row] = int(v)
        return out
    raise _bad_value(spec, *_first_bad(values, array, _is_number))


def _string_converter(values: Any, spec: TensorSpec) -> np.ndarray:
    values = _as_sequence(values, spec)
    if type(values) is list:
        for v in values:
            if type(v) is not str:
                break
        else:
            array = np.empty(len(values), dtype=object)
            array[:] = values
            return array
    array = _flatten(_asarray(values, spec), spec)
    if array.dtype.kind == "U":
        return array.astype(object)
    if array.dtype.kind == "O":
        unwrapped = [_unwrap(v) for v in array]
        if all(isinstance(v, str) for v in unwrapped):
            out = np.empty(len(unwrapped), dtype=object)
            out[:] = unwrapped
            return out
    raise _bad_value(spec, *_first_bad(values, array, _is_text))


def _bool_converter(values: Any, spec: TensorSpec) -> np.ndarray:
    values = _as_sequence(values, spec)
    if type(values) is list and len(values) <= _SHORT:
        for v in values:
            if type(v) is not bool:
                break
        else:
            return np.array(values, dtype=np.bool_)
    array = _flatten(_asarray(values, spec), spec)
    if array.dtype.kind == "b":
        return array
    if array.dtype.kind == "O":
        unwrapped = [_unwrap(v) for v in array]
        if all(isinstance(v, bool | np.bool_) for v in unwrapped):
            return np.array(unwrapped, dtype=np.bool_)
    raise _bad_value(spec, *_first_bad(values, array, _is_bool))


_CONVERTERS: dict[str, _Converter] = {
    "float64": _float_converter(np.float64),
    "float32": _float_converter(np.float32),
    "int64": _int_converter,
    "string": _string_converter,
    "bool": _bool_converter,
}


def _asarray(values: Any, spec: TensorSpec) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values
    try:
        array = np.asarray(values)
    except (ValueError, TypeError, OverflowError):
        # ragged nested lists, huge ints...: fall back to one object per row
        array = np.empty(len(values), dtype=object)
        try:
            array[:] = values
        except (ValueError, TypeError) as exc:
            raise InvalidFeedError(
                f"input {spec.name!r} expects one {spec.dtype} value per row "
                f"({spec.describe()}); the values given are ragged or nested",
                field=spec.name,
            ) from exc
    return array


def _unwrap(value: Any) -> Any:
    """``[v]`` -> ``v``: columns may arrive as ``[[1.0], [2.0]]`` (shape [n, 1])."""
    if isinstance(value, list | np.ndarray) and len(value) == 1:
        return value[0]
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)


def _first_bad(values: Any, array: np.ndarray, ok: Callable[[Any], bool]) -> tuple[Any, int]:
    """The first offending value and its row, read from what the caller sent."""
    source = values if isinstance(values, list) else array
    for row, v in enumerate(source):
        v = _unwrap(v)
        if not ok(v):
            return v, row
    return (source[0] if len(source) else None), 0


# --- error messages ---------------------------------------------------------------------------


def _show(value: Any) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


_EXPECT = {
    "float64": "numbers",
    "float32": "numbers",
    "int64": "integers",
    "string": "strings",
    "bool": "booleans (true/false)",
}


def _bad_value(spec: TensorSpec, value: Any, row: int) -> InvalidFeedError:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _bad_number(spec, value, row)
    return InvalidFeedError(
        f"input {spec.name!r} expects {_EXPECT[spec.dtype]} ({spec.describe()}); "
        f"got {_show(value)} at row {row}",
        field=spec.name,
        hint=f"send {spec.dtype} values for {spec.name!r}",
    )


def _bad_number(spec: TensorSpec, value: Any, row: int) -> InvalidFeedError:
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return InvalidFeedError(
            f"input {spec.name!r} does not accept missing values (NaN or null): the model "
            f"cannot score them; got {'null' if value is None else 'NaN'} at row {row}",
            field=spec.name,
            hint=f"send a value for {spec.name!r} in every row, or impute it in the "
            "feature transform and re-train",
        )
    return InvalidFeedError(
        f"input {spec.name!r} got {_show(value)} at row {row}, which is out of range "
        f"for {spec.dtype}",
        field=spec.name,
        hint=f"send finite {spec.dtype} values",
    )


def _empty_batch() -> InvalidFeedError:
    return InvalidFeedError(
        "the batch is empty: send at least one row", hint="an empty list has nothing to score"
    )


def _length_mismatch(first: str, n_first: int, other: str, n_other: int) -> InvalidFeedError:
    return InvalidFeedError(
        f"inputs have different lengths: {first!r} has {n_first} rows, {other!r} has {n_other}",
        field=other,
        hint="send the same number of values for every input",
    )
