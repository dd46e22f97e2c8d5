"""Export a fitted scikit-learn model — feature transform included — to ONNX.

:func:`export_onnx` turns a pipeline such as ``Pipeline([("features", ColumnTransformer(...)),
("model", estimator)])`` into one ONNX graph with one input per data-frame column:

============================  ===================  =========================================
column dtype                  ONNX input           inside the graph
============================  ===================  =========================================
float                         ``double [N, 1]``    double, as scikit-learn computes
integer                       ``int64 [N, 1]``     cast to double
bool                          ``bool [N, 1]``      cast to double
string / object / category    ``string [N, 1]``    strings
category of integers          ``int64 [N, 1]``     cast to double
datetime                      ``int64 [N, 1]``     epoch seconds (for loopml's ``date_parts``)
============================  ===================  =========================================

The data layer decides that table (:func:`loopml.data.features_onnx.column_wire_type`), and
converts loopml's own feature transformers, in the input's precision. The input types follow
the dtypes the model was trained on: ``loopml run`` trains on the data layer's view of the
dataset (:func:`loopml.data.features.model_frame`), in which integer columns read by numeric
transforms are already float, so they become ``double`` inputs and integer categories
``int64`` ones.

Numbers stay in double precision through the feature transform, so scalers, encoders and
linear models match scikit-learn to the last bits. HistGradientBoosting compares in double
too (ai.onnx.ml ``TreeEnsemble``, opset 5). Decision trees and random forests, whose
onnxruntime kernels are float32, get a float32 cast just before the estimator — which is what
scikit-learn's own trees do; so do estimators whose converter has no double version (SVR).

Outputs are ``variable [N, 1]`` (double) for regressors, and ``label [N]`` plus
``probabilities [N, K]`` (double, no ZipMap) for classifiers; classifiers without
``predict_proba`` output ``scores [N, K]`` (``decision_function``).

A step that cannot be converted raises :class:`PackagingError` naming its pipeline path
before any conversion is attempted.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from loopml._version import __version__
from loopml.errors import InvalidInputError
from loopml.package.errors import PackagingError
from loopml.package.signature import METADATA_KEY, TASKS, Signature, TensorSpec

if TYPE_CHECKING:
    import onnx
    import onnxruntime
    import pandas as pd

    from loopml.package.steps import Step

__all__ = ["DEFAULT_ML_OPSET", "DEFAULT_OPSET", "OnnxExport", "export_onnx"]

#: Main ONNX opset used unless ``target_opset`` says otherwise: recent enough for every
#: converter, old enough for any onnxruntime since 1.14.
DEFAULT_OPSET = 18
#: ``ai.onnx.ml`` opset (tree ensembles, encoders).
DEFAULT_ML_OPSET = 3

# ONNX element types
_FLOAT, _INT64, _STRING, _BOOL, _DOUBLE = 1, 7, 8, 9, 11


@dataclass(frozen=True)
class OnnxExport:
    """An exported model: the bytes of ``model.onnx`` and what they take and return."""

    onnx_bytes: bytes = field(repr=False)
    signature: Signature
    opset: dict[str, int]
    converter: str  # e.g. "skl2onnx 1.20.0" or "torch 2.13.0"

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.onnx_bytes).hexdigest()


def export_onnx(
    model: Any,
    X_sample: pd.DataFrame | np.ndarray,
    *,
    task: str,
    target_opset: int | None = None,
) -> OnnxExport:
    """Export a fitted scikit-learn estimator or pipeline (or a ``torch.nn.Module``) to ONNX.

    ``X_sample`` is a few rows of the data the model was trained on (a DataFrame for models
    fitted on named columns, a 2-D array otherwise): its dtypes decide the ONNX inputs, and
    its rows are used to test which inputs tolerate missing values (``nullable``).
    ``task`` is ``"regression"``, ``"binary"`` or ``"multiclass"``.

    Raises :class:`PackagingError` when a step cannot be converted (naming it) or the
    converted graph does not load in onnxruntime.
    """
    from loopml.package.parity import _is_torch_module

    if task not in TASKS:
        raise InvalidInputError(
            f"task {task!r} is not one of {', '.join(TASKS)}",
            hint="use the task the model was trained for",
        )
    from loopml.package.feed import as_pandas

    X_sample = as_pandas(X_sample)
    if _is_torch_module(model):
        from loopml.package.torch_export import export_torch_onnx

        return export_torch_onnx(model, X_sample, task=task, target_opset=target_opset)
    opset = _check_opset(target_opset)
    _check_fitted(model)
    classes = _check_task(model, task)
    columns = _columns(model, X_sample)

    from loopml.package.converters import register_converters
    from loopml.package.steps import preflight

    register_converters()
    steps = preflight(model)
    if columns is None:
        wire: dict[str, tuple[str, int]] = {}
        width = np.asarray(X_sample).shape[1]
        initial_types = [("input", _skl2onnx_type(_DOUBLE, [None, width]))]
    else:
        frame = cast("pd.DataFrame", X_sample)
        wire = {name: _wire_type(frame[name], name) for name in columns}
        initial_types = [
            (name, _skl2onnx_type(_STRING if elem == _STRING else _DOUBLE, [None, 1]))
            for name, (_dtype, elem) in wire.items()
        ]
    has_proba = task != "regression" and _has_method(model, "predict_proba")
    to_convert = _joined_inputs(model) if len(initial_types) > 1 else model

    proto, session = _convert_and_load(to_convert, initial_types, steps, task, has_proba, opset)
    if wire:
        from loopml.package.graph import cast_inputs

        cast_inputs(proto, {name: elem for name, (_d, elem) in wire.items()})
        session = _load(proto)
    signature = _signature(proto, wire, task, classes, X_sample if columns is None else None)
    if columns is not None:
        signature = _with_nullable(signature, model, cast("pd.DataFrame", X_sample), session)
    from loopml.package.graph import opsets_of, set_metadata

    set_metadata(proto, {METADATA_KEY: signature.to_json(), "loopml.version": __version__})
    proto.producer_name = "loopml"
    proto.producer_version = __version__
    import skl2onnx

    return OnnxExport(
        onnx_bytes=proto.SerializeToString(),
        signature=signature,
        opset=opsets_of(proto),
        converter=f"skl2onnx {skl2onnx.__version__}",
    )


# --- checks ---------------------------------------------------------------------------------------


def _check_opset(target_opset: int | None) -> int:
    if target_opset is None:
        return DEFAULT_OPSET
    if not isinstance(target_opset, int) or not 13 <= target_opset <= 21:
        raise InvalidInputError(
            f"target_opset {target_opset!r} is not supported; use an int from 13 to 21",
            hint=f"leave it unset for opset {DEFAULT_OPSET}",
        )
    return target_opset


def _check_fitted(model: Any) -> None:
    from sklearn.exceptions import NotFittedError as SklearnNotFitted
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except SklearnNotFitted as exc:
        raise PackagingError(
            f"the {type(model).__name__} is not fitted, so there is nothing to export",
            hint="call fit() first",
        ) from exc
    except TypeError as exc:
        raise PackagingError(
            f"{type(model).__name__} is not a scikit-learn estimator",
            hint="pass a fitted scikit-learn estimator or pipeline, or a torch.nn.Module",
        ) from exc


def _check_task(model: Any, task: str) -> list[Any] | None:
    from sklearn.base import is_classifier

    classifier = is_classifier(model) or (
        _has_method(model, "predict_proba") and hasattr(model, "classes_")
    )
    if task == "regression":
        if classifier:
            raise InvalidInputError(
                f"task is 'regression' but the {type(model).__name__} is a classifier",
                hint="pass task='binary' or task='multiclass'",
            )
        return None
    if not classifier or not hasattr(model, "classes_"):
        raise InvalidInputError(
            f"task is {task!r} but the {type(model).__name__} is not a classifier",
            hint="pass task='regression'",
        )
    classes = np.asarray(model.classes_).tolist()
    if task == "binary" and len(classes) != 2:
        raise InvalidInputError(
            f"task is 'binary' but the model has {len(classes)} classes: {classes[:10]}",
            hint="pass task='multiclass'",
        )
    return list(classes)


def _has_method(model: Any, name: str) -> bool:
    try:
        return callable(getattr(model, name))
    except AttributeError:  # scikit-learn's available_if raises on access
        return False


def _columns(model: Any, X_sample: Any) -> list[str] | None:
    """The data-frame columns the model reads, in order; None for a plain 2-D array."""
    if not hasattr(X_sample, "columns"):
        array = np.asarray(X_sample)
        if array.ndim != 2 or array.shape[0] == 0:
            raise InvalidInputError(
                f"X_sample must be a non-empty DataFrame or 2-D array, got shape "
                f"{list(array.shape)}",
                hint="pass a few rows of the training data",
            )
        if array.dtype.kind not in "fiub":
            raise InvalidInputError(
                f"a 2-D array X_sample must be numeric, got dtype {array.dtype}",
                hint="pass a DataFrame when the model reads string columns",
            )
        return None
    if len(X_sample) == 0:
        raise InvalidInputError("X_sample is empty", hint="pass a few rows of the training data")
    fitted_on = getattr(model, "feature_names_in_", None)
    names = [str(c) for c in (fitted_on if fitted_on is not None else X_sample.columns)]
    if any(not isinstance(c, str) for c in X_sample.columns):
        raise InvalidInputError(
            "X_sample's column names must be strings to become ONNX input names",
            hint="rename the columns, e.g. df.columns = df.columns.astype(str)",
        )
    missing = [c for c in names if c not in X_sample.columns]
    if missing:
        raise InvalidInputError(
            f"X_sample lacks the column(s) {missing} the model was fitted on",
            hint="pass rows of the training data with every feature column",
        )
    used = _used_columns(model)
    return [c for c in names if used is None or c in used]


def _used_columns(model: Any) -> set[str] | None:
    """Columns a leading ColumnTransformer actually reads (others need not be sent)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    first = model.steps[0][1] if isinstance(model, Pipeline) else model
    if not isinstance(first, ColumnTransformer):
        return None
    used: set[str] = set()
    for _name, transformer, columns in first.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        selected = np.atleast_1d(np.asarray(columns, dtype=object)).tolist()
        if not all(isinstance(c, str) for c in selected):
            return None  # positional or boolean selection: keep every column
        used.update(selected)
    return used


#: signature dtype and ONNX element type of each wire type the data layer names
_WIRE = {
    "bool": ("bool", _BOOL),
    "int64": ("int64", _INT64),
    "float64": ("float64", _DOUBLE),
    "string": ("string", _STRING),
    "datetime": ("int64", _INT64),  # epoch seconds, what loopml's date_parts takes
}


def _wire_type(series: pd.Series, name: str) -> tuple[str, int]:
    """(signature dtype, ONNX element type) a column travels as: the data layer decides
    (:func:`loopml.data.features_onnx.column_wire_type`), so feature graphs and exported
    models take a column the same way."""
    from loopml.data.features_onnx import column_wire_type

    wire = column_wire_type(series)
    if wire is None:
        raise PackagingError(
            f"column {name!r} has dtype {series.dtype}, which an ONNX input cannot carry",
            hint="use numbers, booleans, strings or datetimes for feature columns",
        )
    return _WIRE[wire]


def _skl2onnx_type(elem: int, shape: list[int | None]) -> Any:
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    return StringTensorType(shape) if elem == _STRING else DoubleTensorType(shape)


# --- conversion ---------------------------------------------------------------------------------


def _convert_and_load(
    model: Any,
    initial_types: list[tuple[str, Any]],
    steps: list[Step],
    task: str,
    has_proba: bool,
    opset: int,
) -> tuple[onnx.ModelProto, onnxruntime.InferenceSession]:
    """Convert in double precision; if the estimator's converter or onnxruntime has no double
    version, convert again with a float32 cast in front of the estimator (tree ensembles
    always go that way: it is what scikit-learn's own trees do)."""
    if _has_tree_ensemble(model):
        # onnxruntime's tree kernels compare in float32 (the thresholds are stored as floats),
        # and skl2onnx adjusts the thresholds for float32 inputs only: feed them float32, as
        # scikit-learn's own trees do. A double input loads but can send a row down the
        # wrong branch.
        float_model = _with_float32_estimator(model)
        proto = _convert(float_model, initial_types, steps, task, has_proba, opset)
        if has_proba:
            from loopml.package.graph import label_from_probabilities

            label_from_probabilities(proto, np.asarray(model.classes_).tolist())
        return proto, _load(proto)
    try:
        proto = _convert(model, initial_types, steps, task, has_proba, opset)
        return proto, _load(proto)
    except PackagingError as first:
        float_model = _with_float32_estimator(model)
        if float_model is None:
            raise
        proto = _convert(float_model, initial_types, steps, task, has_proba, opset)
        try:
            return proto, _load(proto)
        except PackagingError:
            raise first from None


def _convert(
    model: Any,
    initial_types: list[tuple[str, Any]],
    steps: list[Step],
    task: str,
    has_proba: bool,
    opset: int,
) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn

    from loopml.package.graph import finalize_outputs
    from loopml.package.steps import guess_step, naming_steps, reset_naming

    options = _classifier_options(model)
    token = naming_steps(steps)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skl2onnx's own deprecation chatter
            proto = convert_sklearn(
                model,
                initial_types=initial_types,
                target_opset={"": opset, "ai.onnx.ml": DEFAULT_ML_OPSET},
                options=options,
            )
    except PackagingError:
        raise
    except Exception as exc:  # skl2onnx raises bare RuntimeError, NotImplementedError...
        text = str(exc).strip()
        first_line = text.splitlines()[0] if text else type(exc).__name__
        step = guess_step(steps, text)
        where = f"step {step.describe()}" if step else f"the {type(model).__name__}"
        raise PackagingError(
            f"{where} cannot be exported to ONNX: {first_line[:300]}",
            hint="replace the step with one skl2onnx supports, or register a converter",
            step=step.path if step else None,
        ) from exc
    finally:
        reset_naming(token)
    from loopml.package.hist_gradient_boosting import raise_ml_opset

    raise_ml_opset(proto)
    from loopml.package.graph import rename_inputs

    rename_inputs(proto, [name for name, _type in initial_types])
    names = [value.name for value in proto.graph.output]
    if task == "regression":
        wanted: dict[str, tuple[str, int | None]] = {"variable": ("variable", _DOUBLE)}
    else:
        wanted = {
            "label": ("label", None),
            "probabilities": ("probabilities" if has_proba else "scores", _DOUBLE),
        }
    if not set(wanted) <= set(names):
        raise PackagingError(
            f"the converted {type(model).__name__} has outputs {names}, expected "
            f"{sorted(wanted)} for task {task!r}",
            hint="export a regressor for 'regression' and a classifier otherwise",
        )
    finalize_outputs(proto, wanted)
    return proto


def _classifier_options(model: Any) -> dict[int, dict[str, Any]] | None:
    """``zipmap: False`` for the final classifier when its converter offers the option."""
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import get_converter
    from sklearn.pipeline import Pipeline

    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    alias = sklearn_operator_name_map.get(type(final))
    if alias is None:
        return None
    allowed = get_converter(alias).get_allowed_options() or {}
    return {id(final): {"zipmap": False}} if "zipmap" in allowed else None


def _joined_inputs(model: Any) -> Any:
    """Put the one-column inputs side by side first, unless a ColumnTransformer picks them.

    skl2onnx hands every graph input to the first step, and most converters take one matrix.
    An identity ``FunctionTransformer`` (whose loopml converter concatenates) does that.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import FunctionTransformer

    first = model.steps[0][1] if isinstance(model, Pipeline) else model
    if isinstance(first, ColumnTransformer | FeatureUnion):
        return model
    join = FunctionTransformer().fit(np.zeros((1, 1)))
    if isinstance(model, Pipeline):
        return Pipeline([("loopml_columns", join), *model.steps])
    return Pipeline([("loopml_columns", join), ("model", model)])


_TREE_MODULES = ("sklearn.tree", "sklearn.ensemble")


def _final_estimators(model: Any) -> list[Any]:
    """The final estimator and the estimators it wraps (calibration, bagging...)."""
    from sklearn.pipeline import Pipeline

    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    found: list[Any] = []
    seen: list[Any] = [final]
    while seen:
        estimator = seen.pop()
        found.append(estimator)
        for attribute in ("estimator", "base_estimator"):
            inner = getattr(estimator, attribute, None)
            if inner is not None and not isinstance(inner, str):
                seen.append(inner)
        for calibrated in getattr(estimator, "calibrated_classifiers_", []) or []:
            seen.append(calibrated.estimator)
    return found


def _is_hist_gradient_boosting(estimator: Any) -> bool:
    return type(estimator).__name__.startswith("HistGradientBoosting")


def _has_tree_ensemble(model: Any) -> bool:
    """Whether the final estimator is (or wraps) a float32-kernel tree model."""
    return any(
        type(estimator).__module__.startswith(_TREE_MODULES)
        and "Voting" not in type(estimator).__name__
        and not _is_hist_gradient_boosting(estimator)
        for estimator in _final_estimators(model)
    )


def _with_float32_estimator(model: Any) -> Any:
    from skl2onnx.sklapi import CastTransformer
    from sklearn.pipeline import Pipeline

    cast = CastTransformer(dtype=np.float32).fit(np.zeros((1, 1)))
    if isinstance(model, Pipeline):
        *head, last = model.steps
        return Pipeline([*head, ("loopml_float32", cast), last])
    return Pipeline([("loopml_float32", cast), ("model", model)])


def _load(proto: onnx.ModelProto) -> onnxruntime.InferenceSession:
    from loopml.package.session import load_onnx_session

    return load_onnx_session(proto.SerializeToString())


# --- signature ----------------------------------------------------------------------------------


def _signature(
    proto: onnx.ModelProto,
    wire: dict[str, tuple[str, int]],
    task: str,
    classes: list[Any] | None,
    X_array: Any,
) -> Signature:
    graph_signature = Signature.from_onnx(proto)
    if wire:
        inputs = tuple(TensorSpec(name, dtype, (-1, 1)) for name, (dtype, _elem) in wire.items())
        layout = "columns"
    else:
        width = np.asarray(X_array).shape[1]
        inputs = (TensorSpec("input", "float64", (-1, width)),)
        layout = "tensor"
    outputs = []
    for spec in graph_signature.outputs:
        shape = spec.shape
        if spec.name == "label":
            shape = (-1,)
        elif spec.name in ("probabilities", "scores") and classes:
            shape = (-1, len(classes))
        elif spec.name == "variable":
            shape = (-1, 1)
        outputs.append(TensorSpec(spec.name, spec.dtype, shape))
    return Signature(
        inputs=inputs,
        outputs=tuple(outputs),
        task=task,
        classes=tuple(classes) if classes is not None else None,
        input_layout=layout,
    )


def _with_nullable(
    signature: Signature,
    model: Any,
    X_sample: pd.DataFrame,
    session: onnxruntime.InferenceSession,
) -> Signature:
    """Mark a float input nullable when a missing value gets the native model's answer.

    Columns with missing values in ``X_sample`` are nullable (the model was fitted on them;
    the parity check verifies the answers). For the others, one probe row per column with
    that value set to NaN is scored both ways: nullable only if both answer, finitely and
    alike — a model that cannot score NaN must not be sent it.
    """
    from dataclasses import replace

    candidates = [spec.name for spec in signature.inputs if spec.dtype == "float64"]
    nullable = {name for name in candidates if X_sample[name].isna().any()}
    to_probe = [name for name in candidates if name not in nullable]
    if to_probe:
        complete = X_sample[list(signature.input_names)].dropna()
        base = (complete if len(complete) else X_sample).iloc[[0] * len(to_probe)]
        probe = base.reset_index(drop=True)
        for row, name in enumerate(to_probe):
            probe.loc[row, name] = np.nan
        nullable.update(
            name
            for name, ok in zip(
                to_probe, _rows_agree(model, session, signature, probe), strict=True
            )
            if ok
        )
    if not nullable:
        return signature
    inputs = tuple(
        replace(spec, nullable=spec.name in nullable) if spec.name in candidates else spec
        for spec in signature.inputs
    )
    return replace(signature, inputs=inputs)


def _rows_agree(
    model: Any,
    session: onnxruntime.InferenceSession,
    signature: Signature,
    probe: pd.DataFrame,
) -> list[bool]:
    """Per probe row: do the native model and ONNX both give the same finite answer?"""
    from loopml.package.feed import frame_to_feed
    from loopml.package.parity import native_outputs

    produced = dict(
        zip(signature.output_names, session.run(None, frame_to_feed(signature, probe)), strict=True)
    )
    try:
        native = native_outputs(model, probe, signature)
    except PackagingError:
        # the model refuses NaN somewhere: ask row by row (one refusal must not hide the rest)
        if len(probe) == 1:
            return [False]
        return [
            _rows_agree(model, session, signature, probe.iloc[[row]])[0]
            for row in range(len(probe))
        ]
    agree = np.ones(len(probe), dtype=bool)
    for name, (_method, expected) in native.items():
        actual = produced[name]
        if name == "label":
            agree &= np.asarray(expected).reshape(-1) == np.asarray(actual).reshape(-1)
            continue
        expected = np.asarray(expected, dtype=np.float64).reshape(len(probe), -1)
        actual = np.asarray(actual, dtype=np.float64).reshape(len(probe), -1)
        if expected.shape != actual.shape:
            expected = expected[:, -1:]  # binary decision_function against [N, 2] scores
            actual = actual[:, -1:]
        finite = np.isfinite(expected) & np.isfinite(actual)
        close = np.abs(actual - expected) <= 1e-5 + 1e-4 * np.abs(expected)
        agree &= (finite & close).all(axis=1)
    return agree.tolist()
