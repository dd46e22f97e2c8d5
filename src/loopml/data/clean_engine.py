"""The cleaning engine: one batch in, kept rows + quarantined row numbers + change log out.

Stages run in a fixed order, and a row removed by one stage is not seen by the next, so each
quarantined row carries exactly one reason (the first that applied)::

    unparsed lines → coercion → duplicates → missing values → contract rules → outliers

Reason codes: ``unparsed_line``, ``<col>.type`` (a value that cannot become the contract's
type), ``duplicate``, ``duplicate_key``, ``missing:<col>``, any contract rule id
(``<col>.range``, ``<col>.allowed``, ``<col>.not_null``, ``key.unique``...), ``outlier:<col>``.

Statistics for imputation and outlier bounds come from the first batch (all of the data when
it fits in one batch, by default up to 500,000 rows), so that bigger inputs stream in one
pass; the row count they came from is recorded in the cleaning summary.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.data.cleaning_spec import CleaningSpec
from loopml.data.contract import NUMERIC, Contract, column_type
from loopml.data.errors import ContractViolationError
from loopml.data.sources.logs import UNPARSED
from loopml.data.validate import typed, violation_masks
from loopml.errors import InvalidInputError

if TYPE_CHECKING:
    import polars as pl

__all__ = ["ROW", "BatchResult", "Cleaner"]

ROW = "_row"  # source row number (0-based, over the whole ingestion)
REASON = "_reason"


@dataclass
class BatchResult:
    kept: pl.DataFrame  # cleaned rows, still with the ROW column
    quarantined: pl.DataFrame  # ROW, REASON
    changes: pl.DataFrame  # row, key, column, old, new, reason


@dataclass
class Cleaner:
    """Applies a :class:`CleaningSpec` and/or a contract batch after batch.

    Without a spec, only the contract's types are enforced and any rule violation raises
    :class:`ContractViolationError` (cleaning is what allows rows to be quarantined).
    """

    spec: CleaningSpec | None
    contract: Contract | None
    source: str = "data"
    stats: dict[str, dict[str, Any]] | None = None
    stats_rows: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    changed: Counter[str] = field(default_factory=Counter)
    _seen: list[pl.Series] = field(default_factory=list)
    _batches: int = 0

    def apply(self, batch: pl.DataFrame) -> BatchResult:
        import polars as pl

        self._batches += 1
        work = _Work(batch)
        changes: list[pl.DataFrame] = []

        if UNPARSED in work.frame.columns:
            work.drop(pl.col(UNPARSED).is_not_null(), "unparsed_line")
            work.frame = work.frame.drop(UNPARSED)

        work.frame, coerce_changes = self._coerce(work.frame)
        changes += coerce_changes
        if "_type_reason" in work.frame.columns:
            bad = pl.col("_type_reason")
            if self.spec is None or self.spec.contract == "error":
                self._refuse(work.frame.filter(bad.is_not_null()).select(bad.alias("_why")))
            work.drop(bad.is_not_null(), bad)
            work.frame = work.frame.drop("_type_reason")

        if self.spec is not None:
            self._duplicates(work)
        if self.stats is None:
            self.stats = self._compute_stats(work.frame)
            self.stats_rows = work.frame.height
        if self.spec is not None:
            changes += self._missing(work)
        self._contract_rules(work)
        if self.spec is not None:
            changes += self._outliers(work)

        kept = work.frame
        quarantined = (
            pl.concat(work.gone)
            if work.gone
            else pl.DataFrame(schema={ROW: pl.Int64, REASON: pl.String})
        )
        for reason, count in quarantined.group_by(REASON).len().iter_rows():
            self.reasons[reason] += count
        change_frame = pl.concat(changes) if changes else _empty_changes()
        if quarantined.height and change_frame.height:
            # A value fixed in a row that a later stage removed is not a change to kept data.
            change_frame = change_frame.filter(~pl.col("row").is_in(quarantined[ROW].implode()))
        for reason, count in change_frame.group_by("reason").len().iter_rows():
            self.changed[reason] += count
        return BatchResult(kept, quarantined, change_frame)

    # -- stages ----------------------------------------------------------------------------

    def _coerce(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
        """Text where the contract wants numbers: normalize ("3,5", " 12 ") when coercion is
        on, log each value that only parsed after normalizing, flag what cannot parse."""
        import polars as pl

        if self.contract is None:
            return frame, []
        coerce = self.spec is not None and self.spec.coerce
        changes: list[pl.DataFrame] = []
        bad: list[pl.Expr] = []
        updates: list[pl.Expr] = []
        for name, col in self.contract.columns.items():
            if name not in frame.columns:
                continue
            dtype = frame.schema[name]
            if column_type(dtype) == col.type:
                continue
            plain = typed(name, col.type, dtype)
            value = plain
            if coerce and col.type in NUMERIC and column_type(dtype) == "string":
                value = _numeric_text(name).cast(
                    pl.Int64 if col.type == "integer" else pl.Float64, strict=False
                )
                if col.type == "integer":
                    value = pl.coalesce(
                        value,
                        _numeric_text(name)
                        .cast(pl.Float64, strict=False)
                        .pipe(lambda e: pl.when(e == e.round(0)).then(e).otherwise(None))
                        .cast(pl.Int64, strict=False),
                    )
                fixed = frame.filter(plain.is_null() & value.is_not_null())
                if fixed.height:
                    changes.append(self._change_rows(fixed, name, pl.col(name), value, "coerced"))
            bad.append(
                pl.when(pl.col(name).is_not_null() & value.is_null()).then(pl.lit(f"{name}.type"))
            )
            updates.append(value.alias(name))
        if not updates:
            return self._cast(frame), changes
        frame = frame.with_columns(*updates, pl.coalesce(bad).alias("_type_reason"))
        return self._cast(frame), changes

    def _cast(self, frame: pl.DataFrame) -> pl.DataFrame:
        import polars as pl

        from loopml.data.validate import _POLARS_TYPES

        assert self.contract is not None
        casts = []
        for name, col in self.contract.columns.items():
            if name in frame.columns and column_type(frame.schema[name]) != col.type:
                casts.append(pl.col(name).cast(_POLARS_TYPES[col.type](), strict=False))
            elif name in frame.columns and col.type == "integer" and frame.schema[name] != pl.Int64:
                casts.append(pl.col(name).cast(pl.Int64))
            elif name in frame.columns and col.type == "float" and frame.schema[name] != pl.Float64:
                casts.append(pl.col(name).cast(pl.Float64))
        return frame.with_columns(casts) if casts else frame

    def _duplicates(self, work: _Work) -> None:
        import polars as pl

        frame = work.frame
        assert self.spec is not None
        dup = self.spec.duplicates
        if dup.mode == "none":
            return
        columns = [c for c in frame.columns if c != ROW] if dup.mode == "exact" else dup.key
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InvalidInputError(
                f"{self.source}: duplicate key column(s) {missing} are not in the data",
                hint="fix clean.duplicates.key to name existing columns",
            )
        if dup.keep == "last" and self._batches > 1:
            raise InvalidInputError(
                f"{self.source} spans several batches, so duplicates cannot keep the last copy",
                hint="use keep: first, or raise the batch size",
            )
        hashes = frame.select(pl.struct(columns).hash(seed=7).alias("h"))["h"]
        first = (
            hashes.is_first_distinct()
            if dup.keep == "first"
            else hashes.reverse().is_first_distinct().reverse()
        )
        seen_before = (
            hashes.is_in(pl.concat(self._seen).implode())
            if self._seen
            else pl.Series("_s", [False] * len(hashes), dtype=pl.Boolean)
        )
        mask = ~first | seen_before
        self._seen.append(hashes.filter(first))
        work.drop(pl.Series("_m", mask), "duplicate" if dup.mode == "exact" else "duplicate_key")

    def _missing(self, work: _Work) -> list[pl.DataFrame]:
        import polars as pl

        assert self.spec is not None
        assert self.stats is not None
        changes: list[pl.DataFrame] = []
        for name in [c for c in work.frame.columns if c != ROW]:
            frame = work.frame
            rule = self.spec.missing.rule_for(name)
            if rule.strategy == "keep":
                continue
            col = pl.col(name)
            is_missing = (
                col.is_null() | col.is_nan() if frame.schema[name].is_float() else col.is_null()
            )
            if rule.strategy == "drop":
                work.drop(is_missing, f"missing:{name}")
                continue
            fill = (
                rule.value
                if rule.strategy == "constant"
                else self.stats.get(name, {}).get(rule.strategy)
            )
            if fill is None:
                if rule.strategy in ("median", "mean", "mode") and (
                    frame.schema[name].is_numeric() or rule.strategy == "mode"
                ):
                    continue  # no value to learn from (all null so far): nulls stay
                if self.spec.missing.columns.get(name) is None:
                    continue  # a default of median/mean applies to numeric columns only
                raise InvalidInputError(
                    f"{self.source}: cannot impute column {name!r} by {rule.strategy} "
                    f"(it is {frame.schema[name]}, not numeric)",
                    hint="use strategy mode or constant for this column",
                )
            holes = frame.filter(is_missing)
            if not holes.height:
                continue
            new = pl.lit(fill).cast(frame.schema[name], strict=False)
            changes.append(self._change_rows(holes, name, col, new, f"imputed:{rule.strategy}"))
            work.frame = frame.with_columns(
                pl.when(is_missing).then(new).otherwise(col).alias(name)
            )
        return changes

    def _contract_rules(self, work: _Work) -> None:
        import polars as pl

        frame = work.frame
        if self.contract is None:
            return
        masks = {
            k: v
            for k, v in violation_masks(self.contract, frame.schema).items()
            if not k.endswith(".type")
        }
        if not masks:
            return
        reason = pl.coalesce([pl.when(m).then(pl.lit(rule)) for rule, m in masks.items()])
        if self.spec is None or self.spec.contract == "error":
            flagged = frame.select(reason.alias("_why")).filter(pl.col("_why").is_not_null())
            if flagged.height:
                self._refuse(flagged)
            return
        work.drop(reason.is_not_null(), reason)

    def _refuse(self, flagged: pl.DataFrame) -> None:
        counts = flagged.group_by("_why").len().sort("len", descending=True)
        detail = ", ".join(f"{r} ({n} rows)" for r, n in counts.head(5).iter_rows())
        raise ContractViolationError(
            f"{self.source} breaks the contract: {detail}",
            hint="ingest with --clean to quarantine violating rows, or edit the contract",
        )

    def _outliers(self, work: _Work) -> list[pl.DataFrame]:
        import polars as pl

        assert self.spec is not None
        assert self.stats is not None
        changes: list[pl.DataFrame] = []
        for name, rule in self.spec.outliers.items():
            frame = work.frame
            if name not in frame.columns:
                raise InvalidInputError(
                    f"{self.source}: outlier rule for column {name!r}, which is not in the data",
                    hint="fix clean.outliers to name existing numeric columns",
                )
            stats = self.stats.get(name, {})
            if not frame.schema[name].is_numeric():
                raise InvalidInputError(
                    f"{self.source}: outlier rule for column {name!r}, which is not numeric",
                    hint="outlier rules apply to numeric columns only",
                )
            if stats.get("q1") is None:
                continue  # no values to learn bounds from
            if rule.method == "iqr":
                spread = stats["q3"] - stats["q1"]
                low, high = stats["q1"] - rule.limit * spread, stats["q3"] + rule.limit * spread
            else:
                low = stats["mean"] - rule.limit * (stats["std"] or 0.0)
                high = stats["mean"] + rule.limit * (stats["std"] or 0.0)
            col = pl.col(name)
            outside = (col < low) | (col > high)
            if rule.action == "quarantine":
                work.drop(outside.fill_null(False), f"outlier:{name}")
                continue
            hit = frame.filter(outside.fill_null(False))
            if hit.height:
                clipped = col.clip(low, high).cast(frame.schema[name], strict=False)
                changes.append(self._change_rows(hit, name, col, clipped, f"clipped:{rule.method}"))
                work.frame = frame.with_columns(clipped.alias(name))
        return changes

    # -- helpers ---------------------------------------------------------------------------

    def _compute_stats(self, frame: pl.DataFrame) -> dict[str, dict[str, Any]]:
        """Median/mean/std/quartiles (numeric) and mode, only for columns the recipe uses."""
        import numpy as np
        import polars as pl

        if self.spec is None:
            return {}
        wanted: dict[str, set[str]] = {}
        for name in frame.columns:
            if name == ROW:
                continue
            rule = self.spec.missing.rule_for(name)
            if rule.strategy in ("median", "mean", "mode"):
                wanted.setdefault(name, set()).add(rule.strategy)
        for name in self.spec.outliers:
            wanted.setdefault(name, set()).add("spread")
        stats: dict[str, dict[str, Any]] = {}
        for name, needs in wanted.items():
            if name not in frame.columns:
                continue
            series = frame.get_column(name)
            out: dict[str, Any] = {}
            if series.dtype.is_numeric():
                values = series.cast(pl.Float64).drop_nulls().to_numpy()
                values = values[~np.isnan(values)]
                if values.size:
                    q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
                    out.update(
                        median=float(median),
                        q1=float(q1),
                        q3=float(q3),
                        mean=float(values.mean()),
                        std=float(values.std(ddof=1)) if values.size > 1 else 0.0,
                    )
                    if series.dtype.is_integer() and "median" in needs:
                        out["median"] = float(np.round(median))
            if "mode" in needs:
                modes = series.drop_nulls().mode().sort()
                if len(modes):
                    out["mode"] = modes[0]
            stats[name] = out
        return stats

    def _change_rows(
        self, rows: pl.DataFrame, name: str, old: pl.Expr, new: pl.Expr, reason: str
    ) -> pl.DataFrame:
        import polars as pl

        key = self.contract.key if self.contract else []
        key_expr = (
            pl.concat_str([pl.col(k).cast(pl.String) for k in key], separator="|")
            if key and all(k in rows.columns for k in key)
            else pl.lit(None, pl.String)
        )
        return rows.select(
            pl.col(ROW).cast(pl.Int64).alias("row"),
            key_expr.alias("key"),
            pl.lit(name).alias("column"),
            old.cast(pl.String).alias("old"),
            new.cast(pl.String).alias("new"),
            pl.lit(reason).alias("reason"),
        )


class _Work:
    """One batch on its way through the stages: the rows still kept, and those removed."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame
        self.gone: list[pl.DataFrame] = []

    def drop(self, mask: pl.Expr | pl.Series, reason: pl.Expr | str) -> None:
        """Move rows where ``mask`` holds to quarantine with ``reason`` (text or expression)."""
        import polars as pl

        hit = mask if isinstance(mask, pl.Series) else self.frame.select(mask.alias("_m"))["_m"]
        hit = hit.fill_null(False)
        if not hit.any():
            return
        why = pl.lit(reason) if isinstance(reason, str) else reason
        self.gone.append(self.frame.filter(hit).select(ROW, why.cast(pl.String).alias(REASON)))
        self.frame = self.frame.filter(~hit)


def _numeric_text(name: str) -> pl.Expr:
    """Normalize numeric text: trim; "3,5" → "3.5"; "1,234.5" and "1.234,5" lose separators."""
    import polars as pl

    text = pl.col(name).cast(pl.String).str.strip_chars().str.replace_all(r"[\s_']", "")
    has_dot = text.str.contains(".", literal=True)
    commas = text.str.count_matches(",", literal=True)
    dot_then_comma = text.str.contains(r"\.\d{3},\d*$")
    return (
        pl.when(dot_then_comma)  # 1.234,5 (European thousands)
        .then(text.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True))
        .when(has_dot | (commas > 1))  # 1,234.5 or 1,234,567
        .then(text.str.replace_all(",", "", literal=True))
        .when(commas == 1)  # 3,5
        .then(text.str.replace(",", ".", literal=True))
        .otherwise(text)
    )


def _empty_changes() -> pl.DataFrame:
    import polars as pl

    return pl.DataFrame(
        schema={
            "row": pl.Int64,
            "key": pl.String,
            "column": pl.String,
            "old": pl.String,
            "new": pl.String,
            "reason": pl.String,
        }
    )
