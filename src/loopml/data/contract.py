"""Validation contracts: what a dataset promises (types, nulls, ranges, categories, keys, size).

A contract is inferred from data with :func:`infer_contract`, edited by people as YAML, stored
versioned in the metadata store, and checked by :mod:`loopml.data.validate`::

    name: orders
    key: [order_id]
    row_count: {min: 1000}
    columns:
      order_id: {type: integer, nullable: false, unique: true}
      amount:   {type: float, nullable: false, min: 0, max: 10000}
      country:  {type: string, allowed: [DE, FR, NL]}
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loopml.errors import ConfigError

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "ColumnContract",
    "Contract",
    "RowCount",
    "Rule",
    "infer_contract",
    "load_contract",
]

ColumnType = Literal["integer", "float", "string", "boolean", "date", "datetime"]
NUMERIC = ("integer", "float")
# A text column with at most this many distinct values is treated as categorical.
MAX_CATEGORIES = 50


class ColumnContract(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: ColumnType
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    allowed: list[Any] | None = None
    unique: bool = False


class RowCount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


@dataclass(frozen=True)
class Rule:
    """One check: ``id`` is ``<column>.<kind>`` (or ``dataset.row_count``/``key.unique``)."""

    id: str
    kind: str
    column: str | None
    params: dict[str, Any]


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    key: list[str] = Field(default_factory=list)
    row_count: RowCount = Field(default_factory=RowCount)
    allow_extra_columns: bool = False
    columns: dict[str, ColumnContract]

    def rules(self) -> list[Rule]:
        """Every row-level and dataset-level check this contract implies, in a stable order."""
        rules: list[Rule] = []
        for name, col in self.columns.items():
            rules.append(Rule(f"{name}.type", "type", name, {"type": col.type}))
            if not col.nullable:
                rules.append(Rule(f"{name}.not_null", "not_null", name, {}))
            if col.min is not None or col.max is not None:
                rules.append(Rule(f"{name}.range", "range", name, {"min": col.min, "max": col.max}))
            if col.allowed is not None:
                rules.append(Rule(f"{name}.allowed", "allowed", name, {"values": col.allowed}))
            if col.unique and [name] != self.key:
                rules.append(Rule(f"{name}.unique", "unique", name, {}))
        if self.key:
            rules.append(Rule("key.unique", "unique", None, {"columns": list(self.key)}))
        if self.row_count.min is not None or self.row_count.max is not None:
            rules.append(Rule("dataset.row_count", "row_count", None, self.row_count.model_dump()))
        return rules

    def to_yaml(self) -> str:
        import yaml

        body = self.model_dump(exclude_defaults=False)
        body["columns"] = {
            name: {
                k: v
                for k, v in col.model_dump().items()
                if (v is not None and v is not False) or k == "nullable"
            }
            for name, col in self.columns.items()
        }
        body["row_count"] = {k: v for k, v in body["row_count"].items() if v is not None}
        return yaml.safe_dump(body, sort_keys=False, allow_unicode=True)

    @property
    def content_hash(self) -> str:
        """SHA-256 of the canonical YAML (name excluded): equal rules, equal hash."""
        return hashlib.sha256(self.model_copy(update={"name": None}).to_yaml().encode()).hexdigest()

    @classmethod
    def from_yaml(cls, text: str, *, origin: str = "contract") -> Contract:
        import yaml

        try:
            body = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"{origin} is not valid YAML: {str(exc).splitlines()[0]}",
                hint="fix the YAML syntax (indentation, colons)",
            ) from None
        if not isinstance(body, dict) or "columns" not in body:
            raise ConfigError(
                f"{origin} has no 'columns:' mapping",
                hint="infer one with: loopml data infer SOURCE -o contract.yaml",
            )
        try:
            contract = cls.model_validate(body)
        except ValueError as exc:
            from loopml.data.spec_errors import describe_validation_error

            raise ConfigError(
                f"{origin} is invalid: {describe_validation_error(exc)}",
                hint="column types are integer|float|string|boolean|date|datetime",
            ) from None
        for column in contract.key:
            if column not in contract.columns:
                raise ConfigError(
                    f"{origin}: key column {column!r} is not among the columns",
                    hint="list the key column under columns:",
                )
        return contract


def load_contract(value: str | Path | Contract) -> Contract:
    """A contract from an object, a YAML file path, or YAML text."""
    if isinstance(value, Contract):
        return value
    text = str(value)
    if "\n" not in text and (isinstance(value, Path) or text.endswith((".yaml", ".yml"))):
        path = Path(text)
        if not path.exists():
            raise ConfigError(
                f"contract file {text!r} does not exist",
                hint="infer one with: loopml data infer SOURCE -o contract.yaml",
            )
        return Contract.from_yaml(path.read_text(encoding="utf-8"), origin=f"contract {text!r}")
    return Contract.from_yaml(text)


def column_type(dtype: pl.DataType) -> ColumnType | None:
    """The contract type of a polars dtype (None for nested types the contract ignores)."""
    import polars as pl

    if dtype.is_integer():
        return "integer"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        return "string"
    return None


def infer_contract(
    data: Any, *, name: str | None = None, max_categories: int = MAX_CATEGORIES
) -> Contract:
    """Propose a contract from data: observed types, null-ness, ranges, small category sets,
    and uniqueness of id-like columns. Meant to be read and edited before it is enforced."""
    import polars as pl

    frame = as_polars(data)
    if frame.height == 0:
        raise ConfigError(
            "cannot infer a contract from a dataset with no rows",
            hint="infer from a sample that holds data",
        )
    columns: dict[str, ColumnContract] = {}
    stats_exprs: list[pl.Expr] = []
    kinds = {c: column_type(t) for c, t in frame.schema.items()}
    for c, kind in kinds.items():
        col = pl.col(c)
        stats_exprs.append(col.null_count().alias(f"{c}\x00nulls"))
        if kind in NUMERIC:
            clean = col.fill_nan(None) if kind == "float" else col
            stats_exprs += [clean.min().alias(f"{c}\x00min"), clean.max().alias(f"{c}\x00max")]
        if kind in ("integer", "string"):
            stats_exprs.append(col.n_unique().alias(f"{c}\x00distinct"))
    stats = frame.select(stats_exprs).row(0, named=True)
    key: list[str] = []
    for c, kind in kinds.items():
        if kind is None:
            continue
        nulls = stats[f"{c}\x00nulls"]
        spec = ColumnContract(type=kind, nullable=nulls > 0)
        if kind in NUMERIC:
            low, high = stats[f"{c}\x00min"], stats[f"{c}\x00max"]
            spec.min = None if low is None else float(low)
            spec.max = None if high is None else float(high)
        distinct = stats.get(f"{c}\x00distinct")
        if distinct is not None and nulls == 0 and distinct == frame.height and _id_like(c):
            spec.unique = True
            spec.min = spec.max = None  # ids grow; a range would reject the next batch
            if not key:
                key = [c]
        elif kind == "string" and distinct is not None and distinct <= max_categories:
            values = frame.get_column(c).drop_nulls().unique().sort().to_list()
            spec.allowed = values
        columns[c] = spec
    return Contract(name=name, key=key, row_count=RowCount(min=1), columns=columns)


def _id_like(column: str) -> bool:
    lowered = column.lower()
    return (
        lowered == "id"
        or lowered.endswith(("_id", "id_", "uuid", "key"))
        or lowered.startswith("id_")
    )


def as_polars(data: Any) -> pl.DataFrame:
    """Accept polars, pandas or Arrow data (and polars LazyFrames) as a polars DataFrame."""
    import polars as pl

    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    module = type(data).__module__
    if module.startswith("pandas"):
        return pl.from_pandas(data)
    return pl.DataFrame(pl.from_arrow(data))
