"""Turning request payloads into onnxruntime feeds, with errors that name the field.

One :class:`FeedBuilder` per loaded model precomputes what the hot path needs (input names,
dtypes, column order), so a request costs one ``np.array`` per input and a few checks. Every
protocol funnels into one of five shapes:

- ``rows``: a list of rows, each a list of values or a ``{column: value}`` record
  (``instances``, ``dataframe_records``, CSV, ``dataframe_split.data``);
- ``columns``: ``{column: [values]}`` (``inputs`` as a dict);
- ``tensor``: a nested list for a single-input model (``inputs`` as a list);
- ``split``: MLflow's ``dataframe_split`` (``columns`` + ``data``);
- ``arrays``: named, already-typed arrays (Open Inference Protocol tensors).

Anything else raises :class:`~loopml.errors.InvalidInputError` naming the field (e.g.
``instances[3][1]``), the bad value and what was expected; the app turns it into a 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from loopml.errors import InvalidInputError
from loopml.serve.coerce import (
    NUMBER_KINDS,
    cast_typed_array,
    cast_values,
    cell_path,
    empty_batch,
    fit_rank,
    kind_of,
    locate_bad_value,
    shape_column,
)
from loopml.serve.runtime import ModelSchema, TensorSpec

__all__ = ["Feed", "FeedBuilder"]


class Feed(NamedTuple):
    """Named input arrays and the number of rows they hold."""

    arrays: dict[str, np.ndarray]
    rows: int


class FeedBuilder:
    """Builds feeds for one model; create once per loaded model, use per request."""

    def __init__(self, schema: ModelSchema, label: str) -> None:
        self.schema = schema
        self.label = label
        self._columns = schema.columns()
        self._column_set = frozenset(self._columns or ())
        self._single = schema.inputs[0] if len(schema.inputs) == 1 else None
        self._by_name = {spec.name: spec for spec in schema.inputs}
        # Columns layout where every input is the same float dtype and none takes NaN: rows
        # can be parsed as one matrix and sliced into columns.
        dtypes = {spec.dtype for spec in schema.inputs}
        self._numeric: tuple[np.dtype[Any], int] | None = None
        if (
            schema.layout == "columns"
            and len(dtypes) == 1
            and next(iter(dtypes)).kind == "f"
            and not schema.nullable
        ):
            self._numeric = (next(iter(dtypes)), len(schema.inputs))

    def column_spec(self, name: str) -> TensorSpec | None:
        """The input spec a column feeds (``None`` for a column the model does not take)."""
        if self.schema.layout == "tensor":
            if self._columns is None or name in self._column_set:
                return self._single
            return None
        return self._by_name.get(name)

    # ---- the five shapes -------------------------------------------------------------

    def rows(self, rows: Any, where: str) -> Feed:
        """A list of rows: lists of values in column order, or ``{column: value}`` records."""
        if not isinstance(rows, list):
            raise InvalidInputError(
                f"{where} must be a list of rows, got {kind_of(rows)}",
                hint=self._row_hint(),
            )
        if not rows:
            raise empty_batch(where)
        if isinstance(rows[0], dict):
            return self._records(rows, where)
        if self.schema.layout == "tensor":
            assert self._single is not None
            return self._tensor_rows(rows, self._single, where)
        if self._numeric is not None:
            fast = self._numeric_rows(rows)
            if fast is not None:
                return fast
        return self._transpose(rows, where)

    def _numeric_rows(self, rows: list[Any]) -> Feed | None:
        """Rows for a model whose columns are all of one float dtype: one ``np.array`` call.

        Returns ``None`` whenever anything is unusual, so the careful path (which names the
        bad cell) takes over.
        """
        try:
            array = np.array(rows)
        except (ValueError, TypeError):
            return None
        assert self._numeric is not None
        dtype, width = self._numeric
        if array.ndim != 2 or array.shape[1] != width or array.dtype.kind not in NUMBER_KINDS:
            return None
        array = array.astype(dtype, copy=False)
        if not np.isfinite(array).all():
            return None
        inputs = self.schema.inputs
        return Feed(
            {
                spec.name: shape_column(np.ascontiguousarray(array[:, j]), spec)
                for j, spec in enumerate(inputs)
            },
            int(array.shape[0]),
        )

    def columns(self, mapping: dict[str, Any], where: str) -> Feed:
        """``{column: [values]}``; a scalar value stands for a one-row column."""
        if not mapping:
            raise empty_batch(where)
        single = self._single
        if (
            single is not None
            and set(mapping) == {single.name}
            and single.name not in self._column_set
        ):
            return self.tensor(mapping[single.name], f"{where}.{single.name}")
        self._check_names(mapping.keys(), where)
        assert self._columns is not None
        lengths = {}
        values: dict[str, list[Any]] = {}
        for name in self._columns:
            column = mapping[name]
            if not isinstance(column, list):
                column = [column]
            elif column and all(isinstance(v, list) and len(v) == 1 for v in column):
                column = [v[0] for v in column]  # a [n, 1] column vector
            values[name] = column
            lengths[name] = len(column)
        if len(set(lengths.values())) > 1:
            raise InvalidInputError(
                f"{where} has columns of different lengths: "
                + ", ".join(f"{k}={v}" for k, v in lengths.items()),
                hint="every column needs one value per row",
            )
        n = next(iter(lengths.values()))
        if n == 0:
            raise empty_batch(where)
        return self._from_columns(values, n, where)

    def tensor(self, data: Any, where: str) -> Feed:
        """A nested list for the model's only input (``inputs: [[...], ...]``)."""
        single = self._single
        if single is None:
            if isinstance(data, list) and data and isinstance(data[0], list):
                return self.rows(data, where)
            raise InvalidInputError(
                f"{where} must name the model's inputs, as {{name: values}}",
                hint=f"inputs: {[spec.name for spec in self.schema.inputs]}",
            )
        if not isinstance(data, list):
            raise InvalidInputError(f"{where} must be a list, got {kind_of(data)}")
        if not data:
            raise empty_batch(where)
        if self.schema.layout == "tensor":
            if len(single.shape) == 2 and not isinstance(data[0], list):
                if single.width == 1:
                    data = [[value] for value in data]  # a flat list of one-feature rows
                else:
                    raise InvalidInputError(
                        f"{where} must be a list of rows of {single.width} values, got a flat list",
                        hint=self._row_hint(),
                    )
            return self._tensor_rows(data, single, where)
        if isinstance(data[0], list):
            return self._transpose(data, where)
        array = self._column(data, single, where)
        return Feed({single.name: shape_column(array, single)}, len(data))

    def split(self, columns: Any, data: Any, where: str) -> Feed:
        """MLflow's ``dataframe_split``: ``columns`` names, ``data`` rows in that order."""
        if columns is None:
            return self.rows(data, f"{where}.data")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InvalidInputError(f"{where}.columns must be a list of column names")
        if not isinstance(data, list):
            raise InvalidInputError(f"{where}.data must be a list of rows, got {kind_of(data)}")
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
                raise InvalidInputError(
                    f"{where}.data[{i}] must be a list of {len(columns)} values "
                    f"(one per column), got {kind_of(row)}"
                )
            reordered.append([row[j] for j in order])
        return self.rows(reordered, f"{where}.data")

    def arrays(self, named: dict[str, np.ndarray], where: str) -> Feed:
        """Typed arrays by input name (Open Inference Protocol tensors)."""
        expected = set(self._by_name)
        missing = sorted(expected - set(named))
        extra = sorted(set(named) - expected)
        if missing or extra:
            raise InvalidInputError(
                f"{where} does not match the model's inputs: "
                + "; ".join(
                    part
                    for part in (
                        f"missing {missing}" if missing else "",
                        f"unexpected {extra}" if extra else "",
                    )
                    if part
                ),
                hint="model inputs: "
                + ", ".join(f"{s.name} {s.datatype} {list(s.shape)}" for s in self.schema.inputs),
            )
        feed: dict[str, np.ndarray] = {}
        rows = None
        for name, array in named.items():
            spec = self._by_name[name]
            label = f"{where} {name!r}"
            array = cast_typed_array(array, spec, label)
            array = fit_rank(array, spec, label)
            if array.shape and array.shape[0] == 0:
                raise empty_batch(label)
            if rows is None:
                rows = int(array.shape[0]) if array.shape else 1
            elif array.shape and array.shape[0] != rows:
                raise InvalidInputError(
                    f"{label} has {array.shape[0]} rows but other inputs have {rows}",
                    hint="every input needs the same batch size",
                )
            self._check_finite(array, spec, label)
            feed[name] = array
        return Feed(feed, rows or 0)

    # ---- helpers ---------------------------------------------------------------------

    def _records(self, rows: list[Any], where: str) -> Feed:
        names = self._columns
        if names is None:
            raise InvalidInputError(
                f"{where} holds records with column names, but model {self.label} takes an "
                f"unnamed tensor of {self._width_text()}",
                hint="send each row as a list of values in feature order",
            )
        expected = self._column_set
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InvalidInputError(
                    f"{where}[{i}] must be a record like {rows[0]!r:.60}, got {kind_of(row)}"
                )
            if row.keys() != expected:
                self._check_names(row.keys(), f"{where}[{i}]")
        values = {name: [row[name] for row in rows] for name in names}
        return self._from_columns(values, len(rows), where)

    def _transpose(self, rows: list[Any], where: str) -> Feed:
        names = self._columns or ()
        width = len(names)
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != width:
                raise InvalidInputError(
                    f"{where}[{i}] must be a list of {width} values "
                    f"({', '.join(names)}), got {kind_of(row)}",
                    hint=self._row_hint(),
                )
        values = {name: [row[j] for row in rows] for j, name in enumerate(names)}
        return self._from_columns(values, len(rows), where, positional=True)

    def _from_columns(
        self, values: dict[str, list[Any]], n: int, where: str, *, positional: bool = False
    ) -> Feed:
        if self.schema.layout == "tensor":
            single = self._single
            assert single is not None
            assert self._columns is not None
            columns = [
                self._column(values[name], single, f"{where} column {name!r}")
                for name in self._columns
            ]
            matrix = np.stack(columns, axis=1) if columns else np.empty((n, 0), single.dtype)
            return Feed({single.name: matrix}, n)
        feed = {}
        for j, (name, column) in enumerate(values.items()):
            spec = self._by_name[name]
            if positional:
                cell = cell_path(where, j, name)
                label = f"{where}[*][{j}] (column {name!r})"
            else:
                cell, label = None, f"{where} column {name!r}"
            feed[name] = shape_column(self._column(column, spec, label, cell), spec)
        return Feed(feed, n)

    def _tensor_rows(self, rows: list[Any], spec: TensorSpec, where: str) -> Feed:
        try:
            array = np.array(rows)
        except (ValueError, TypeError):
            array = None
        width = spec.width
        if array is None or array.ndim != len(spec.shape) or array.dtype.kind not in "fiuUSbO":
            self._locate_shape_error(rows, spec, where)
        assert array is not None
        if width is not None and array.shape[1] != width:
            self._locate_shape_error(rows, spec, where)
        array = cast_values(array, spec, where, rows, self._columns)
        self._check_finite(array, spec, where)
        return Feed({spec.name: array}, int(array.shape[0]))

    def _column(
        self,
        values: list[Any],
        spec: TensorSpec,
        where: str,
        cell: Callable[[int], str] | None = None,
    ) -> np.ndarray:
        try:
            array = np.array(values)
        except (ValueError, TypeError):
            array = np.array(values, dtype=object)
        if array.ndim != 1 or (
            array.dtype == object and any(isinstance(v, list | dict) for v in values)
        ):
            i = next((i for i, v in enumerate(values) if isinstance(v, list | dict)), 0)
            raise InvalidInputError(
                f"{cell(i) if cell else f'{where}[{i}]'} is {kind_of(values[i])}; "
                f"expected one scalar ({spec.dtype.name})",
            )
        array = cast_values(array, spec, where, values, None, cell)
        self._check_finite(array, spec, where)
        return array

    def _check_finite(self, array: np.ndarray, spec: TensorSpec, where: str) -> None:
        if (
            array.dtype.kind == "f"
            and spec.name not in self.schema.nullable
            and not np.isfinite(array).all()
        ):
            bad = np.argwhere(~np.isfinite(array))[0].tolist()
            raise InvalidInputError(
                f"{where} has a missing or non-finite value (NaN/null/inf) at index {bad}; "
                f"model {self.label} does not accept missing values",
                hint="impute missing values before sending, or package the model with an imputer",
            )

    def _check_names(self, names: Any, where: str) -> None:
        expected = self._columns
        if expected is None:
            raise InvalidInputError(
                f"{where} names columns, but model {self.label} takes an unnamed tensor "
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
            raise InvalidInputError(
                f"{where}: " + " and ".join(problems),
                hint=f"model {self.label} expects columns {list(expected)}",
            )

    def _locate_shape_error(self, rows: list[Any], spec: TensorSpec, where: str) -> None:
        width = spec.width
        for i, row in enumerate(rows):
            if not isinstance(row, list):
                raise InvalidInputError(
                    f"{where}[{i}] must be a list of {width} values, got {kind_of(row)}",
                    hint=self._row_hint(),
                )
            if width is not None and len(row) != width:
                raise InvalidInputError(
                    f"{where}[{i}] has {len(row)} values; model {self.label} expects "
                    f"{self._width_text()}",
                    hint=self._row_hint(),
                )
            for j, value in enumerate(row):
                if isinstance(value, list | dict):
                    raise InvalidInputError(
                        f"{where}[{i}][{j}] is {kind_of(value)}; expected a scalar "
                        f"({spec.dtype.name})"
                    )
        locate_bad_value(rows, spec, where, self._columns)
        raise InvalidInputError(
            f"{where} must be a {len(spec.shape)}-d tensor of shape {list(spec.shape)} "
            f"({spec.dtype.name})"
        )

    def _width_text(self) -> str:
        single = self._single
        if single is not None and single.width is not None:
            names = f" ({', '.join(self._columns)})" if self._columns else ""
            return f"{single.width} {single.dtype.name} value(s) per row{names}"
        return "a tensor of shape " + (str(list(single.shape)) if single else "?")

    def _row_hint(self) -> str:
        if self._columns:
            return f"each row lists {', '.join(self._columns)} in that order, or is a record"
        return f"each row lists {self._width_text()}"
