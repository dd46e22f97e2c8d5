"""Turn request data into the onnxruntime feed a model's :class:`Signature` asks for.

The server builds one :class:`FeedBuilder` per loaded model and calls it on every request,
so this module is written for speed: the builder precomputes what the hot path needs (column
order, a record picker, whether rows parse as one matrix), and :mod:`loopml.package.cast`
checks short lists in Python and long ones vectorised. Every request form funnels into one
of five methods:

- :meth:`~FeedBuilder.rows`: a list of rows, each a list of values in column order or a
  ``{column: value}`` record (``instances``, ``dataframe_records``, CSV rows);
- :meth:`~FeedBuilder.columns`: ``{column: [values]}``;
- :meth:`~FeedBuilder.tensor`: a nested list for a single-input model;
- :meth:`~FeedBuilder.split`: MLflow's ``dataframe_split`` (``columns`` + ``data``);
- :meth:`~FeedBuilder.arrays`: named, already-typed arrays (Open Inference Protocol tensors).

Anything else raises :class:`~loopml.package.errors.InvalidFeedError` (an
``InvalidInputError``) naming the place in the request (``instances[3][1] (column 'age')``),
the bad value and what was expected; a server answers it with a 400. :func:`to_feed` is the
same conversion for Python callers, and :func:`frame_to_feed` feeds whole DataFrames (parity
checks, batch scoring).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from loopml.data.dates import to_epoch_seconds
from loopml.package.cast import (
    Cell,
    column,
    empty_batch,
    fit_rank,
    kind_of,
    matrix,
    refuse_non_finite,
    typed_array,
)
from loopml.package.errors import InvalidFeedError

if TYPE_CHECKING:
    import pandas as pd

    from loopml.package.signature import Signature, TensorSpec

__all__ = ["Feed", "FeedBuilder", "as_pandas", "feed_builder", "frame_to_feed", "to_feed"]

_BUILDER_ATTR = "_loopml_feed_builder"


class Feed(NamedTuple):
    """Named input arrays, ready for ``session.run``, and the number of rows they hold."""

    arrays: dict[str, np.ndarray]
    rows: int


def to_feed(signature: Signature, data: Mapping[str, Any] | Sequence[Any]) -> dict[str, np.ndarray]:
    """Convert request data into ``{onnx_input: ndarray}`` for ``session.run``.

    ``data`` is ``{column: values}`` (for the ``"tensor"`` layout also ``{input_name:
    rows}``), or a list of rows: lists of values in ``signature.columns`` order, or
    ``{column: value}`` records. Raises :class:`InvalidFeedError` for a missing or unknown
    column, a value of the wrong type (``"abc"`` for a float), a wrong shape, NaN where the
    input is not nullable, rows or columns of different lengths, or an empty batch.
    """
    builder = feed_builder(signature)
    if isinstance(data, Mapping):
        return builder.columns(data if type(data) is dict else dict(data), "inputs").arrays
    if isinstance(data, list | tuple):
        return builder.rows(data, "rows").arrays
    first = (signature.columns or signature.input_names)[0]
    raise InvalidFeedError(
        f"data must be an object mapping columns to values, or a list of rows; got "
        f"{type(data).__name__}",
        hint=f"e.g. {{{first!r}: [...], ...}} or [[...], ...]",
    )


def feed_builder(signature: Signature, label: str | None = None) -> FeedBuilder:
    """The :class:`FeedBuilder` of ``signature``, built once and kept on it."""
    builder: FeedBuilder | None = signature.__dict__.get(_BUILDER_ATTR)
    if builder is None:
        builder = FeedBuilder(signature, label)
        # The signature is frozen; the builder is a cache derived from it, not state.
        object.__setattr__(signature, _BUILDER_ATTR, builder)
    return builder


class FeedBuilder:
    """Builds feeds for one signature: create once per loaded model, use per request.

    ``label`` names the model in messages (``churn:3``). ``where`` arguments name the part of
    the request being read (``instances``, ``dataframe_split.data``) so that errors point at
    the exact place: ``instances[3][1] (column 'age') is 'abc'; expected a number (float64)``.
    """

    def __init__(self, signature: Signature, label: str | None = None) -> None:
        self.signature = signature
        self.label = label
        self._who = f"model {label}" if label else "the model"
        inputs = signature.inputs
        self._tensor = signature.input_layout == "tensor"
        self._columns: tuple[str, ...] | None = signature.columns or None
        self._column_set = frozenset(self._columns or ())
        self._single = inputs[0] if len(inputs) == 1 else None
        self._width = self._single.width if self._single is not None else None
        self._by_name = {spec.name: spec for spec in inputs}
        self._two_d = frozenset(spec.name for spec in inputs if len(spec.shape) == 2)
        # A record's values in column order, by one C call.
        self._pick = operator.itemgetter(*self._columns) if self._columns else None
        # Columns that all share one numeric dtype and take no missing values: their rows
        # parse as one matrix, which is then cut into columns.
        self._uniform: TensorSpec | None = None
        if not self._tensor:
            first = inputs[0]
            if (
                first.np_dtype.kind in "fiu"
                and all(spec.dtype == first.dtype for spec in inputs)
                and not any(spec.nullable for spec in inputs)
            ):
                self._uniform = first

    def column_spec(self, name: str) -> TensorSpec | None:
        """The input spec a column feeds (``None`` for a column the model does not take)."""
        if self._tensor:
            if self._columns is None or name in self._column_set:
                return self._single
            return None
        return self._by_name.get(name)

    # ---- the five forms --------------------------------------------------------------

    def rows(self, rows: Any, where: str) -> Feed:
        """A list of rows: lists of values in column order, or ``{column: value}`` records."""
        if type(rows) is not list:
            if not isinstance(rows, list | tuple):
                raise InvalidFeedError(
                    f"{where} must be a list of rows, got {kind_of(rows)}",
                    hint=self._row_hint(),
                )
            rows = list(rows)
        if not rows:
            raise empty_batch(where)
        if isinstance(rows[0], dict):
            return self._records(rows, where)
        if self._tensor:
            return self._tensor_rows(rows, where)
        uniform = self._uniform
        if uniform is not None:
            array = matrix(rows, uniform, len(self.signature.inputs))
            if array is not None:
                return self._cut(array)
        return self._positional(rows, where)

    def columns(self, mapping: dict[str, Any], where: str) -> Feed:
        """``{column: [values]}``; a scalar value stands for a one-row column."""
        if not mapping:
            raise empty_batch(where)
        single = self._single
        if (
            single is not None
            and len(mapping) == 1
            and single.name in mapping
            and single.name not in self._column_set
        ):
            return self.tensor(mapping[single.name], f"{where}.{single.name}")
        if mapping.keys() != self._column_set:
            self._check_names(mapping.keys(), where)
        names = self._columns
        assert names is not None  # _check_names refuses names for an unnamed tensor
        values: dict[str, Any] = {}
        n = -1
        for name in names:
            values[name] = data = _as_column(mapping[name])
            if n != len(data):
                if n != -1:
                    raise InvalidFeedError(
                        f"{where} has columns of different lengths: "
                        + ", ".join(f"{k}={len(_as_column(mapping[k]))}" for k in names),
                        field=name,
                        hint="every column needs one value per row",
                    )
                n = len(data)
        if n == 0:
            raise empty_batch(where)
        return self._from_columns(values, n, where, _column_cell)

    def tensor(self, data: Any, where: str) -> Feed:
        """A nested list for the model's only input (``inputs: [[...], ...]``), or a flat
        list of values for a one-column model (``instances: [1.0, 2.0]``)."""
        single = self._single
        if single is None:
            if isinstance(data, list) and data and isinstance(data[0], list):
                return self.rows(data, where)
            raise InvalidFeedError(
                f"{where} must name the model's inputs, as {{name: values}}",
                hint=f"inputs: {list(self.signature.input_names)}",
            )
        if not isinstance(data, list):
            raise InvalidFeedError(f"{where} must be a list, got {kind_of(data)}")
        if not data:
            raise empty_batch(where)
        if self._tensor:
            if not isinstance(data[0], list):
                if single.width != 1:
                    raise InvalidFeedError(
                        f"{where} must be a list of rows of {self._width_text()}, got a flat list",
                        hint=self._row_hint(),
                    )
                data = [[value] for value in data]  # a flat list of one-feature rows
            return self._tensor_rows(data, where)
        if isinstance(data[0], list):
            return self.rows(data, where)
        n = len(data)
        array = column(data, single, _flat_cell(where), single.name)
        return Feed({single.name: array.reshape(n, 1) if single.name in self._two_d else array}, n)

    def split(self, columns: Any, data: Any, where: str) -> Feed:
        """MLflow's ``dataframe_split``: ``columns`` names, ``data`` rows in that order."""
        if columns is None:
            return self.rows(data, f"{where}.data")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InvalidFeedError(f"{where}.columns must be a list of column names")
        if len(set(columns)) != len(columns):
            repeated = sorted({c for c in columns if columns.count(c) > 1})
            raise InvalidFeedError(
                f"{where}.columns names {repeated} more than once; each column must appear once",
                field=repeated[0],
            )
        if not isinstance(data, list):
            raise InvalidFeedError(f"{where}.data must be a list of rows, got {kind_of(data)}")
        if not data:
            raise empty_batch(f"{where}.data")
        single = self._single
        if self._columns is None and single is not None and single.width == len(columns):
            # An unnamed tensor: the columns cannot be checked by name, only counted.
            return self.rows(data, f"{where}.data")
        self._check_names(columns, f"{where}.columns")
        assert self._columns is not None
        if list(columns) == list(self._columns):
            return self.rows(data, f"{where}.data")
        order = [columns.index(name) for name in self._columns]
        reordered = []
        for i, row in enumerate(data):
            if not isinstance(row, list) or len(row) != len(columns):
                raise InvalidFeedError(
                    f"{where}.data[{i}] must be a list of {len(columns)} values "
                    f"(one per column), got {kind_of(row)}"
                )
            reordered.append([row[j] for j in order])
        return self.rows(reordered, f"{where}.data")

    def arrays(self, named: dict[str, np.ndarray], where: str) -> Feed:
        """Typed arrays by input name (Open Inference Protocol tensors)."""
        expected = self._by_name
        if named.keys() != expected.keys():
            missing = [name for name in expected if name not in named]
            extra = sorted(set(named) - set(expected))
            raise InvalidFeedError(
                f"{where} does not match the model's inputs: "
                + "; ".join(
                    part
                    for part in (
                        f"missing {missing}" if missing else "",
                        f"unexpected {extra}" if extra else "",
                    )
                    if part
                ),
                field=(missing or extra)[0],
                hint="model inputs: "
                + ", ".join(
                    f"{s.name} {s.v2_datatype} {list(s.shape)}" for s in self.signature.inputs
                ),
            )
        feed: dict[str, np.ndarray] = {}
        rows = -1
        for name, array in named.items():
            spec = expected[name]
            label = f"{where} {name!r}"
            array = fit_rank(typed_array(array, spec, label), spec, label)
            n = int(array.shape[0]) if array.ndim else 1
            if n == 0:
                raise empty_batch(label)
            if rows == -1:
                rows = n
            elif n != rows:
                raise InvalidFeedError(
                    f"{label} has {n} rows but other inputs have {rows}",
                    field=name,
                    hint="every input needs the same batch size",
                )
            refuse_non_finite(array, spec, label)
            feed[name] = array
        return Feed(feed, rows)

    # ---- rows --------------------------------------------------------------------------

    def _cut(self, array: np.ndarray) -> Feed:
        """A ``[n, columns]`` matrix of a uniform model as one array per input."""
        n = array.shape[0]
        inputs = self.signature.inputs
        if len(inputs) == 1:
            name = inputs[0].name
            return Feed({name: array if name in self._two_d else array.reshape(n)}, n)
        by_column = np.ascontiguousarray(array.T)  # one copy; each row of it is a column
        two_d = self._two_d
        return Feed(
            {
                spec.name: by_column[j].reshape(n, 1) if spec.name in two_d else by_column[j]
                for j, spec in enumerate(inputs)
            },
            n,
        )

    def _positional(self, rows: list[Any], where: str) -> Feed:
        names = self._columns
        assert names is not None  # the columns layout names its inputs
        width = len(names)
        if not {type(row) for row in rows} <= {list, tuple} or {len(row) for row in rows} != {
            width
        }:
            self._bad_row(rows, width, where)
        if len(rows) == 1:
            values: dict[str, Any] = {name: [v] for name, v in zip(names, rows[0], strict=True)}
        else:
            values = dict(zip(names, zip(*rows, strict=True), strict=True))
        return self._from_columns(values, len(rows), where, _positional_cell)

    def _records(self, rows: list[Any], where: str) -> Feed:
        names = self._columns
        pick = self._pick
        if names is None or pick is None:
            raise InvalidFeedError(
                f"{where} holds records with column names, but {self._who} takes an "
                f"unnamed tensor of {self._width_text()}",
                hint="send each row as a list of values in feature order",
            )
        width = len(names)
        try:
            if {len(row) for row in rows} != {width}:
                raise KeyError(width)
            picked = list(map(pick, rows))
        except (KeyError, TypeError, IndexError):
            self._check_records(rows, where)
            raise InvalidFeedError(f"{where} must be a list of records") from None
        n = len(rows)
        if width == 1:
            values: dict[str, Any] = {names[0]: picked}
        else:
            spec = self._single if self._tensor else self._uniform
            if spec is not None:
                array = matrix(picked, spec, width)
                if array is not None:
                    return Feed({spec.name: array}, n) if self._tensor else self._cut(array)
            values = dict(zip(names, zip(*picked, strict=True), strict=True))
        return self._from_columns(values, n, where, _record_cell)

    def _tensor_rows(self, rows: list[Any], where: str) -> Feed:
        spec = self._single
        assert spec is not None  # the tensor layout has exactly one input
        array = matrix(rows, spec, self._width)
        if array is not None:
            return Feed({spec.name: array}, array.shape[0])
        first = rows[0]
        width = spec.width or (len(first) if isinstance(first, list | tuple) else 0)
        if not {type(row) for row in rows} <= {list, tuple} or {len(row) for row in rows} != {
            width
        }:
            self._bad_row(rows, width, where)
        if self._columns is None:
            names: Sequence[str] = [spec.name] * width
            cell = _tensor_cell
        else:
            names, cell = self._columns, _positional_cell
        columns = [
            column(values, spec, cell(where, j, name), name)
            for j, (name, values) in enumerate(zip(names, zip(*rows, strict=True), strict=True))
        ]
        return Feed({spec.name: np.stack(columns, axis=1)}, len(rows))

    def _from_columns(self, values: dict[str, Any], n: int, where: str, cell: Any) -> Feed:
        """One array per input from ``{column: values}`` (``cell`` names a value's place)."""
        if self._tensor:
            spec = self._single
            assert spec is not None
            assert self._columns is not None
            columns = [
                column(values[name], spec, cell(where, j, name), name)
                for j, name in enumerate(self._columns)
            ]
            return Feed({spec.name: np.stack(columns, axis=1)}, n)
        feed = {}
        two_d = self._two_d
        for j, spec in enumerate(self.signature.inputs):
            name = spec.name
            array = column(values[name], spec, cell(where, j, name), name)
            feed[name] = array.reshape(n, 1) if name in two_d else array
        return Feed(feed, n)

    # ---- errors ----------------------------------------------------------------------

    def _bad_row(self, rows: list[Any], width: int, where: str) -> None:
        """Raise naming the first row that is not a list of ``width`` values."""
        names = f" ({', '.join(self._columns)})" if self._columns else ""
        for i, row in enumerate(rows):
            if not isinstance(row, list | tuple) or len(row) != width:
                raise InvalidFeedError(
                    f"{where}[{i}] must be a list of {width} values{names}, got {kind_of(row)}",
                    hint=self._row_hint(),
                )
        raise InvalidFeedError(f"{where} must be a list of rows of {width} values")

    def _check_records(self, rows: list[Any], where: str) -> None:
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InvalidFeedError(
                    f"{where}[{i}] must be a record like {rows[0]!r:.60}, got {kind_of(row)}"
                )
            if row.keys() != self._column_set:
                self._check_names(row.keys(), f"{where}[{i}]")

    def _check_names(self, names: Any, where: str) -> None:
        expected = self._columns
        if expected is None:
            raise InvalidFeedError(
                f"{where} names columns, but {self._who} takes an unnamed tensor "
                f"of {self._width_text()}",
                hint="send rows as lists of values in feature order (instances: [[...]])",
            )
        given = set(names)
        missing = [name for name in expected if name not in given]
        extra = sorted(str(name) for name in given - self._column_set)
        problems = []
        if missing:
            problems.append(f"missing column(s) {missing}")
        if extra:
            problems.append(f"unexpected column(s) {extra}")
        if problems:
            raise InvalidFeedError(
                f"{where}: " + " and ".join(problems),
                field=(missing or extra)[0],
                hint=f"{self._who} expects columns {list(expected)}",
            )

    def _width_text(self) -> str:
        single = self._single
        if single is not None and single.width is not None:
            names = f" ({', '.join(self._columns)})" if self._columns else ""
            return f"{single.width} {single.dtype} value(s) per row{names}"
        return "a tensor of shape " + (str(list(single.shape)) if single else "?")

    def _row_hint(self) -> str:
        if self._columns:
            return f"each row lists {', '.join(self._columns)} in that order, or is a record"
        return f"each row lists {self._width_text()}"


def _as_column(values: Any) -> Any:
    """A column's values as a sequence: a scalar is one row; ``[[v], [v]]`` is ``[v, v]``."""
    if type(values) is list:
        if (
            values
            and type(values[0]) is list
            and all(type(v) is list and len(v) == 1 for v in values)
        ):
            return [v[0] for v in values]  # a [n, 1] column vector
        return values
    if isinstance(values, tuple | np.ndarray):
        return values
    return [values]


# How errors name the value at row i of column j: built only when a value is refused.
def _positional_cell(where: str, j: int, name: str) -> Cell:
    return lambda i: f"{where}[{i}][{j}] (column {name!r})"


def _record_cell(where: str, j: int, name: str) -> Cell:
    return lambda i: f"{where}[{i}] (column {name!r})"


def _column_cell(where: str, j: int, name: str) -> Cell:
    return lambda i: f"{where}[{name!r}][{i}]"


def _tensor_cell(where: str, j: int, name: str) -> Cell:
    return lambda i: f"{where}[{i}][{j}]"


def _flat_cell(where: str) -> Cell:
    return lambda i: f"{where}[{i}]"


# --- whole frames ---------------------------------------------------------------------------


def frame_to_feed(signature: Signature, frame: pd.DataFrame | np.ndarray) -> dict[str, np.ndarray]:
    """Feed built from a whole DataFrame (or 2-D array), for parity checks and batch scoring.

    Unlike :class:`FeedBuilder` it does not refuse NaN (scoring data as given is the point), but it
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
            return {spec.name: values.astype(spec.np_dtype)}
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
                    f"column {spec.name!r} holds {kind_of(column[bad[0]])} at row {bad[0]}; "
                    "ONNX string inputs cannot carry missing or non-string values",
                    field=spec.name,
                    hint="fill missing categories (e.g. with 'missing') in the feature transform",
                )
        elif column.dtype.kind == "M" or str(data[spec.name].dtype).startswith("datetime64"):
            column = to_epoch_seconds(data[spec.name])
        else:
            try:
                cast = column.astype(spec.np_dtype)
            except (TypeError, ValueError) as exc:
                raise InvalidFeedError(
                    f"column {spec.name!r} cannot be read as {spec.dtype}: {exc}",
                    field=spec.name,
                ) from exc
            if cast.dtype.kind in "iu" and column.dtype.kind == "f":
                # astype truncates 1.5 to 1 without a word: refuse what is not whole.
                lost = np.flatnonzero(cast != column)
                if len(lost):
                    raise InvalidFeedError(
                        f"column {spec.name!r} holds {column[lost[0]].item()!r} at row {lost[0]}; "
                        f"expected whole numbers ({spec.dtype})",
                        field=spec.name,
                    )
            column = cast
        feed[spec.name] = column.reshape(-1, *spec.shape[1:])
    return feed


def as_pandas(frame: Any) -> Any:
    """A polars (or pyarrow) table as a pandas DataFrame; anything else unchanged."""
    module = type(frame).__module__
    if module.startswith("polars") and hasattr(frame, "to_pandas"):
        return frame.to_pandas()
    if module.startswith("pyarrow") and hasattr(frame, "to_pandas"):
        return frame.to_pandas()
    return frame
