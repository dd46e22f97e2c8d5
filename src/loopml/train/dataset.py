"""Check a dataset against the project before training, and choose default features.

Problems that would otherwise surface as a stack trace deep inside a trial — a missing target,
a text target for regression, three classes for a binary task, missing values no transform
can take — are found here, once, with a message that says what to change in ``loopml.yaml``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import ConfigError, InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from loopml.data.features import FeatureSpec
    from loopml.train.project import ProjectSpec

__all__ = ["TrainingData", "default_features", "prepare"]


class TrainingData:
    """The frame to train on (features + target), its feature specs and class labels.

    ``frame`` is the model's view of the dataset (:func:`loopml.data.features.model_frame`):
    integer columns read by numeric transforms are float64 in it, so the packaged model takes
    any number there. Every stage after :func:`prepare` reads this frame, never the stored one.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        features: list[FeatureSpec],
        target: str,
        classes: list[Any] | None,
    ) -> None:
        self.frame = frame
        self.features = features
        self.target = target
        self.classes = classes

    @property
    def X(self) -> pd.DataFrame:
        return self.frame.drop(columns=[self.target])

    @property
    def y(self) -> np.ndarray:
        return self.frame[self.target].to_numpy()

    @property
    def input_columns(self) -> list[str]:
        return [f.column for f in self.features if f.transform != "drop"]


def default_features(frame: pd.DataFrame, *, exclude: set[str]) -> list[FeatureSpec]:
    """Numbers standardized, dates split into parts, anything else one-hot encoded.

    Columns in ``exclude`` (the target, the time column of a time split) are left out, and so
    are identifier columns — named ``id`` or ``*_id`` with a distinct value on every row —
    since a row's identity predicts nothing about new rows.
    """
    import pandas as pd

    from loopml.data.features import FeatureSpec

    specs: list[FeatureSpec] = []
    for column in frame.columns:
        name = str(column)
        if name in exclude or _is_identifier(frame[column], name):
            continue
        series = frame[column]
        if pd.api.types.is_bool_dtype(series):
            specs.append(FeatureSpec(column=name, transform="onehot"))
        elif pd.api.types.is_numeric_dtype(series):
            specs.append(FeatureSpec(column=name, transform="standardize"))
        elif pd.api.types.is_datetime64_any_dtype(series):
            specs.append(FeatureSpec(column=name, transform="date_parts"))
        else:
            specs.append(FeatureSpec(column=name, transform="onehot"))
    return specs


def _is_identifier(series: pd.Series, name: str) -> bool:
    lowered = name.lower()
    if not (lowered == "id" or lowered.endswith("_id")):
        return False
    return bool(series.is_unique) and len(series) > 1


def prepare(spec: ProjectSpec, frame: pd.DataFrame) -> TrainingData:
    """Validate ``frame`` for ``spec`` and return what the trainer needs.

    ``frame`` (the stored dataset) is left as it is; the returned frame is the model's view
    of it (see :class:`TrainingData`).
    """
    from loopml.data.features import load_features, model_frame

    target = spec.target
    if target not in frame.columns:
        raise ConfigError(
            f"target column {target!r} is not in the dataset",
            hint=f"columns: {', '.join(map(str, frame.columns))}",
        )
    if len(frame) < 2:
        raise InvalidInputError(
            f"the dataset has {len(frame)} row(s); training needs at least 2",
            hint="check the source and the quarantine report of the ingestion",
        )
    missing_target = int(frame[target].isna().sum())
    if missing_target:
        raise InvalidInputError(
            f"target column {target!r} has {missing_target} missing value(s)",
            hint="add data.clean.missing: {columns: {" + target + ": drop}} to loopml.yaml",
        )
    exclude = {target}
    if spec.split.time_column:
        exclude.add(spec.split.time_column)
    if spec.features is not None:
        features = load_features(list(spec.features))
        absent = [f.column for f in features if f.column not in frame.columns]
        if absent:
            raise ConfigError(
                f"feature column(s) {absent} are not in the dataset",
                hint=f"columns: {', '.join(map(str, frame.columns))}",
            )
    else:
        features = default_features(frame, exclude=exclude)
        if not features:
            raise ConfigError(
                "the dataset has no column to use as a feature besides the target",
                hint="list features in loopml.yaml",
            )
    used = [f.column for f in features if f.transform != "drop"]
    keep = list(dict.fromkeys([*used, target, *(c for c in exclude if c != target)]))
    frame = frame[keep].reset_index(drop=True)
    _check_missing(frame, features)
    # The one place the model's input dtypes are decided: search, refit, evaluation and the
    # ONNX export (whose input types follow these dtypes) all read this frame.
    frame = model_frame(features, frame)
    classes = _classes(spec, frame[target])
    return TrainingData(frame, features, target, classes)


def _check_missing(frame: pd.DataFrame, features: list[FeatureSpec]) -> None:
    for feature in features:
        if feature.transform in ("drop", "onehot", "ordinal"):
            continue  # encoders take missing values as a category of their own
        count = int(frame[feature.column].isna().sum())
        if count:
            raise InvalidInputError(
                f"feature column {feature.column!r} has {count} missing value(s), which "
                f"transform {feature.transform!r} cannot take",
                hint="impute them in data.clean (e.g. missing: median) in loopml.yaml",
            )


def _classes(spec: ProjectSpec, target: pd.Series) -> list[Any] | None:
    import pandas as pd

    if spec.task == "regression":
        if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
            raise ConfigError(
                f"task is regression but target {spec.target!r} has type {target.dtype}",
                hint="use task: binary or multiclass for labels, or a numeric target",
            )
        return None
    values = np.unique(target.to_numpy())
    classes = [v.item() if hasattr(v, "item") else v for v in values]
    if spec.task == "binary" and len(classes) != 2:
        raise ConfigError(
            f"task is binary but target {spec.target!r} has {len(classes)} class(es): "
            f"{classes[:10]}",
            hint="use task: multiclass, or map the target to two labels",
        )
    if spec.task == "multiclass" and len(classes) < 2:
        raise ConfigError(
            f"target {spec.target!r} has a single class {classes}; nothing to classify",
            hint="check the data source",
        )
    return classes
