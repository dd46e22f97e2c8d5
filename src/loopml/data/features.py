"""Declarative feature transforms compiled into one scikit-learn ``ColumnTransformer``.

One :class:`FeatureSpec` per input column::

    features:
      - {column: age, transform: standardize}
      - {column: income, transform: log1p}
      - {column: city, transform: onehot, handle_unknown: ignore}
      - {column: size, transform: ordinal, categories: [S, M, L]}
      - {column: score, transform: bucketize, bins: [0, 50, 80]}
      - {column: signup, transform: date_parts, parts: [year, month, dayofweek]}
      - {column: note, transform: drop}

:func:`build_column_transformer` returns an unfitted ``ColumnTransformer`` that the training
stage puts first in the model pipeline, so the same transform runs at serving time; every kind
exports to ONNX (see :mod:`loopml.data.features_onnx` for the input types it expects).

The transforms in :data:`NUMERIC_TRANSFORMS` read their column as a continuous number, so the
model must take any number there, not only the integers the training data happened to hold:
:func:`model_frame` is the model's view of a dataset, with every integer column such a
transform reads widened to float64. Training fits on that view and packaging exports from it,
so the served model's input is ``float64`` (``x = 1.5`` is a valid request) while the stored
dataset keeps its integer column. Integer columns read as categories (``onehot``,
``ordinal``) keep their type: category ``1.5`` does not exist and is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loopml.data.spec_errors import describe_validation_error
from loopml.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.compose import ColumnTransformer

__all__ = [
    "NUMERIC_TRANSFORMS",
    "TRANSFORMS",
    "FeatureSpec",
    "build_column_transformer",
    "load_features",
    "model_frame",
]

TRANSFORMS = (
    "standardize",
    "minmax",
    "log1p",
    "onehot",
    "ordinal",
    "bucketize",
    "date_parts",
    "passthrough",
    "drop",
)

#: Transforms that read their column as a continuous number (the others read categories,
#: dates, or nothing).
NUMERIC_TRANSFORMS = frozenset({"standardize", "minmax", "log1p", "bucketize", "passthrough"})


class FeatureSpec(BaseModel):
    """How one column becomes model input."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str = Field(min_length=1)
    transform: Literal[
        "standardize",
        "minmax",
        "log1p",
        "onehot",
        "ordinal",
        "bucketize",
        "date_parts",
        "passthrough",
        "drop",
    ] = "passthrough"
    categories: list[Any] | None = Field(
        default=None, description="onehot/ordinal: the known categories (learned if omitted)"
    )
    handle_unknown: Literal["ignore", "error", "encode"] = Field(
        default="ignore",
        description="onehot: ignore → all zeros; ordinal: ignore/encode → unknown_value",
    )
    unknown_value: float = -1
    bins: int | list[float] | None = Field(
        default=None, description="bucketize: edges, or a count of quantile bins"
    )
    strategy: Literal["quantile", "uniform"] = "quantile"
    parts: list[str] = Field(default_factory=lambda: ["year", "month", "day", "dayofweek"])

    @model_validator(mode="after")
    def _options_fit_transform(self) -> FeatureSpec:
        if self.transform == "bucketize":
            if self.bins is None:
                raise ValueError(f"column {self.column!r}: bucketize needs bins (edges or count)")
            if isinstance(self.bins, int) and self.bins < 2:
                raise ValueError(f"column {self.column!r}: bins must be at least 2")
        if self.transform == "date_parts":
            from loopml.data.transformers import DATE_PARTS

            unknown = sorted(set(self.parts) - set(DATE_PARTS))
            if unknown or not self.parts:
                raise ValueError(
                    f"column {self.column!r}: unknown date parts {unknown}; "
                    f"valid: {list(DATE_PARTS)}"
                )
        return self

    @property
    def step_name(self) -> str:
        return f"{self.transform}_{self.column}"

    @property
    def is_numeric(self) -> bool:
        """Whether the transform reads the column as a continuous number."""
        return self.transform in NUMERIC_TRANSFORMS


def load_features(items: list[FeatureSpec | dict[str, Any]]) -> list[FeatureSpec]:
    """Validate a list of feature entries (from YAML), naming the bad entry on error."""
    specs: list[FeatureSpec] = []
    for index, item in enumerate(items):
        try:
            specs.append(
                item if isinstance(item, FeatureSpec) else FeatureSpec.model_validate(item)
            )
        except ValueError as exc:
            raise InvalidInputError(
                f"feature #{index + 1} ({item!r}) is invalid: {describe_validation_error(exc)}",
                hint=f"transform must be one of {', '.join(TRANSFORMS)}",
            ) from None
    seen = set()
    for spec in specs:
        if spec.column in seen:
            raise InvalidInputError(
                f"feature column {spec.column!r} is declared twice",
                hint="give each column one transform",
            )
        seen.add(spec.column)
    return specs


def model_frame(
    features: list[FeatureSpec] | list[dict[str, Any]], frame: pd.DataFrame
) -> pd.DataFrame:
    """The model's view of ``frame``: integer columns read by a numeric transform as float64.

    A column of integers under ``standardize``, ``passthrough``... is a quantity that merely
    happened to be whole in the data; the model must take 1.5 there too. Its dtype is what
    the ONNX export turns into the input type, so the widening happens here, before training,
    and every later stage (search, refit, evaluation, parity check, export) sees the same
    float64 column. Booleans, and integers read as categories (``onehot``, ``ordinal``), keep
    their dtype. ``frame`` is not modified; columns no feature names are returned unchanged.
    """
    import pandas as pd

    widen = [
        spec.column
        for spec in load_features(list(features))
        if spec.is_numeric
        and spec.column in frame.columns
        and pd.api.types.is_integer_dtype(frame[spec.column].dtype)
        and not pd.api.types.is_bool_dtype(frame[spec.column].dtype)
    ]
    if not widen:
        return frame
    # nullable Int64 columns turn pd.NA into NaN on the way
    return frame.astype(dict.fromkeys(widen, "float64"))


def build_column_transformer(
    features: list[FeatureSpec] | list[dict[str, Any]],
) -> ColumnTransformer:
    """An unfitted ``ColumnTransformer`` applying each feature's transform to its column.

    Columns not listed are dropped. The output is a dense float matrix whose columns follow
    the order of ``features`` (``get_feature_names_out`` names them).
    """
    from sklearn.compose import ColumnTransformer

    specs = load_features(list(features))
    steps: list[tuple[str, Any, list[str]]] = []
    for spec in specs:
        if spec.transform == "drop":
            continue
        steps.append((spec.step_name, _transformer(spec), [spec.column]))
    if not steps:
        raise InvalidInputError(
            "every feature is dropped, so the model would get no input",
            hint="give at least one column a transform other than drop",
        )
    return ColumnTransformer(
        steps, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False
    )


def _transformer(spec: FeatureSpec) -> Any:
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, OrdinalEncoder, StandardScaler

    from loopml.data.transformers import Bucketizer, DateParts, Log1p

    categories: Any = [spec.categories] if spec.categories is not None else "auto"
    match spec.transform:
        case "standardize":
            return StandardScaler()
        case "minmax":
            return MinMaxScaler()
        case "log1p":
            return Log1p()
        case "onehot":
            return OneHotEncoder(
                categories=categories,
                handle_unknown="error" if spec.handle_unknown == "error" else "ignore",
                sparse_output=False,
            )
        case "ordinal":
            if spec.handle_unknown == "error":
                return OrdinalEncoder(categories=categories)
            return OrdinalEncoder(
                categories=categories,
                handle_unknown="use_encoded_value",
                unknown_value=spec.unknown_value,
            )
        case "bucketize":
            assert spec.bins is not None
            return Bucketizer(bins=spec.bins, strategy=spec.strategy)
        case "date_parts":
            return DateParts(parts=tuple(spec.parts))
        case _:
            return "passthrough"
