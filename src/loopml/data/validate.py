"""Checking data against a contract, vectorized: every rule becomes one polars expression and
all violation counts are computed in a single parallel pass over the data.

The same expressions mark rows for quarantine during cleaning (:func:`violation_masks`), so
what validation reports and what cleaning removes can never disagree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.data.contract import NUMERIC, Contract, Rule, as_polars, column_type

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "RuleResult",
    "SchemaIssue",
    "ValidationReport",
    "schema_issues",
    "validate",
    "violation_masks",
]

EXAMPLES = 5


@dataclass
class RuleResult:
    rule: str
    kind: str
    column: str | None
    violations: int
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.violations == 0


@dataclass
class SchemaIssue:
    """``missing``/``extra``/``retyped`` column, against the contract."""

    kind: str
    column: str
    expected: str | None = None
    actual: str | None = None

    def describe(self) -> str:
        if self.kind == "missing":
            return f"column {self.column!r} is missing"
        if self.kind == "extra":
            return f"column {self.column!r} is new (not in the contract)"
        return f"column {self.column!r} is {self.actual}, the contract says {self.expected}"


@dataclass
class ValidationReport:
    """Per-rule results: count of violating rows and a few examples (row number + value)."""

    rows: int
    results: list[RuleResult]
    schema: list[SchemaIssue] = field(default_factory=list)
    contract: str | None = None

    @property
    def passed(self) -> bool:
        return not self.schema and all(r.passed for r in self.results)

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rows": self.rows,
            "contract": self.contract,
            "rules": len(self.results),
            "failed": len(self.failed),
            "schema": [asdict(s) for s in self.schema],
            "results": [{**asdict(r), "passed": r.passed} for r in self.results],
        }

    def summary(self) -> str:
        if self.passed:
            return f"all {len(self.results)} rules pass on {self.rows} rows"
        parts = [s.describe() for s in self.schema]
        parts += [f"{r.rule}: {r.violations} rows" for r in self.failed[:5]]
        more = len(self.failed) - 5
        return "; ".join(parts) + (f"; and {more} more rules" if more > 0 else "")


def schema_issues(contract: Contract, schema: pl.Schema | dict[str, Any]) -> list[SchemaIssue]:
    """Columns missing from the data, new in it, or of a type the contract cannot accept.

    Text where the contract says a number is not an issue here: values that do not parse are
    counted by the ``<column>.type`` rule (and cleaning may coerce them).
    """
    issues = [SchemaIssue("missing", c) for c in contract.columns if c not in schema]
    if not contract.allow_extra_columns:
        issues += [
            SchemaIssue("extra", c, actual=_type_name(t))
            for c, t in schema.items()
            if c not in contract.columns and not c.startswith("_")
        ]
    for c, spec in contract.columns.items():
        if c not in schema:
            continue
        actual = column_type(schema[c])
        if (
            actual == spec.type
            or actual == "string"
            or (actual == "integer" and spec.type == "float")
        ):
            continue
        if actual in NUMERIC and spec.type in NUMERIC:
            continue  # floats holding whole numbers can be integers; the type rule counts the rest
        issues.append(SchemaIssue("retyped", c, expected=spec.type, actual=actual or "nested"))
    return issues


def typed(column: str, kind: str, dtype: pl.DataType) -> pl.Expr:
    """The column cast to its contract type; values that do not fit become null."""
    import polars as pl

    col = pl.col(column)
    target = _POLARS_TYPES[kind]()
    if column_type(dtype) == kind:
        return col
    if kind == "integer" and column_type(dtype) == "float":
        return pl.when(col == col.round(0)).then(col).otherwise(None).cast(pl.Int64, strict=False)
    if column_type(dtype) == "string":
        text = col.cast(pl.String).str.strip_chars()
        if kind == "boolean":
            lowered = text.str.to_lowercase()
            return (
                pl.when(lowered.is_in(["true", "1", "yes", "y", "t"]))
                .then(True)
                .when(lowered.is_in(["false", "0", "no", "n", "f"]))
                .then(False)
                .otherwise(None)
            )
        if kind == "date":
            return text.str.to_date(strict=False)
        if kind == "datetime":
            return text.str.to_datetime(strict=False)
        return text.cast(target, strict=False)
    return col.cast(target, strict=False)


def violation_masks(contract: Contract, schema: pl.Schema | dict[str, Any]) -> dict[str, pl.Expr]:
    """Rule id → boolean expression, True on rows that break the rule (row-level rules only)."""

    masks: dict[str, pl.Expr] = {}
    for rule in contract.rules():
        if rule.column is not None and rule.column not in schema:
            continue
        mask = _mask(rule, contract, schema)
        if mask is not None:
            masks[rule.id] = mask.fill_null(False)
    if contract.key and not all(c in schema for c in contract.key):
        masks.pop("key.unique", None)
    return {k: v for k, v in masks.items() if v is not None} if masks else {}


def _mask(rule: Rule, contract: Contract, schema: Any) -> pl.Expr | None:
    import polars as pl

    if rule.kind == "row_count":
        return None
    if rule.kind == "unique" and rule.column is None:
        key = rule.params["columns"]
        expr = (
            pl.struct(key).is_first_distinct()
            if len(key) > 1
            else pl.col(key[0]).is_first_distinct()
        )
        return ~expr
    assert rule.column is not None
    spec = contract.columns[rule.column]
    dtype = schema[rule.column]
    col = pl.col(rule.column)
    value = typed(rule.column, spec.type, dtype)
    if rule.kind == "type":
        if column_type(dtype) == spec.type:
            return None
        return col.is_not_null() & value.is_null()
    if rule.kind == "not_null":
        if dtype.is_float():
            return col.is_null() | col.is_nan()
        return col.is_null()
    if rule.kind == "range":
        low, high = rule.params["min"], rule.params["max"]
        if spec.type == "float":
            value = value.fill_nan(None)  # NaN is a missing value, not an out-of-range one
        parts = []
        if low is not None:
            parts.append(value < low)
        if high is not None:
            parts.append(value > high)
        return pl.any_horizontal(parts) if len(parts) > 1 else parts[0]
    if rule.kind == "allowed":
        allowed = rule.params["values"]
        if spec.type == "string":
            return col.is_not_null() & ~col.cast(pl.String).is_in([str(v) for v in allowed])
        return value.is_not_null() & ~value.is_in(allowed)
    if rule.kind == "unique":
        return col.is_not_null() & ~col.is_first_distinct()
    return None  # pragma: no cover


def validate(data: Any, contract: Contract, *, examples: int = EXAMPLES) -> ValidationReport:
    """Check ``data`` (polars, pandas or Arrow) against ``contract``; never raises on failures."""
    import polars as pl

    frame = as_polars(data)
    issues = schema_issues(contract, frame.schema)
    masks = violation_masks(contract, frame.schema)
    counts: dict[str, int] = {}
    if masks and frame.height:
        # Duplicates are counted as rows minus distinct values: a hash count is ~5x faster
        # than the per-row mask, which is only built for the examples of a failing rule.
        exprs = []
        for rule in contract.rules():
            if rule.id not in masks:
                continue
            if rule.kind == "unique" and rule.column is None:
                key = rule.params["columns"]
                distinct = pl.struct(key).n_unique() if len(key) > 1 else pl.col(key[0]).n_unique()
                exprs.append((pl.len() - distinct).alias(rule.id))
            elif rule.kind == "unique":
                assert rule.column is not None
                col = pl.col(rule.column)
                exprs.append((col.count() - col.drop_nulls().n_unique()).alias(rule.id))
            else:
                exprs.append(masks[rule.id].sum().alias(rule.id))
        counts = {k: int(v or 0) for k, v in frame.select(exprs).row(0, named=True).items()}
    results: list[RuleResult] = []
    for rule in contract.rules():
        if rule.kind == "row_count":
            low, high = rule.params["min"], rule.params["max"]
            bad = (low is not None and frame.height < low) or (
                high is not None and frame.height > high
            )
            results.append(
                RuleResult(
                    rule.id,
                    rule.kind,
                    None,
                    int(bad),
                    [{"rows": frame.height, "min": low, "max": high}] if bad else [],
                )
            )
            continue
        if rule.column is not None and rule.column not in frame.schema:
            results.append(
                RuleResult(rule.id, rule.kind, rule.column, frame.height, [{"missing": True}])
            )
            continue
        violations = counts.get(rule.id, 0)
        found: list[dict[str, Any]] = []
        if violations and examples:
            shown = rule.params.get("columns") or [rule.column]
            sample = (
                frame.with_row_index("_row")
                .filter(masks[rule.id])
                .select(["_row", *shown])
                .head(examples)
            )
            found = [_plain(r) for r in sample.iter_rows(named=True)]
        results.append(RuleResult(rule.id, rule.kind, rule.column, violations, found))
    return ValidationReport(frame.height, results, issues, contract.name)


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        out["row" if k == "_row" else k] = (
            v if isinstance(v, int | float | str | bool | None) else str(v)
        )
    return out


def _type_name(dtype: Any) -> str:
    return column_type(dtype) or str(dtype)


def _polars_types() -> dict[str, Any]:
    import polars as pl

    return {
        "integer": lambda: pl.Int64,
        "float": lambda: pl.Float64,
        "string": lambda: pl.String,
        "boolean": lambda: pl.Boolean,
        "date": lambda: pl.Date,
        "datetime": lambda: pl.Datetime("us"),
    }


class _LazyTypes(dict[str, Any]):
    def __missing__(self, key: str) -> Any:
        self.update(_polars_types())
        return self[key]


_POLARS_TYPES: dict[str, Any] = _LazyTypes()
