"""What cleaning should do, as declared in ``loopml.yaml`` (``data.clean``) or in Python.

Shorthands keep the YAML small; each expands to the full model::

    clean:
      duplicates: exact                 # or {key: [order_id], keep: last}, or none
      missing: median                   # default for every column; or the full form:
      # missing: {default: drop, columns: {city: {strategy: constant, value: unknown}}}
      outliers: {amount: {method: iqr, threshold: 1.5, action: clip}}
      coerce: true                      # "3,5" / " 12 " -> numbers where the contract says so
      contract: quarantine              # rows that break the contract: quarantine | error
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["CleaningSpec", "DuplicatesSpec", "MissingRule", "MissingSpec", "OutlierRule"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DuplicatesSpec(_Model):
    """``exact``: rows equal in every column; ``key``: rows equal in the ``key`` columns."""

    mode: Literal["none", "exact", "key"] = "none"
    key: list[str] = Field(default_factory=list)
    keep: Literal["first", "last"] = "first"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value is None or value is False:
            return {"mode": "none"}
        if value is True:
            return {"mode": "exact"}
        if isinstance(value, str):
            return {"mode": value}
        if isinstance(value, list):
            return {"mode": "key", "key": value}
        if isinstance(value, dict) and "key" in value and "mode" not in value:
            key = value["key"]
            return {**value, "mode": "key", "key": [key] if isinstance(key, str) else key}
        return value

    @model_validator(mode="after")
    def _key_given(self) -> DuplicatesSpec:
        if self.mode == "key" and not self.key:
            raise ValueError("duplicates by key needs key: [column, ...]")
        return self


class MissingRule(_Model):
    """What to do with a null: keep it, drop the row (to quarantine) or impute a value."""

    strategy: Literal["keep", "drop", "median", "mean", "mode", "constant"] = "keep"
    value: Any = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"strategy": value}
        return value

    @model_validator(mode="after")
    def _constant_has_value(self) -> MissingRule:
        if self.strategy == "constant" and self.value is None:
            raise ValueError("strategy constant needs value:")
        return self


class MissingSpec(_Model):
    default: MissingRule = Field(default_factory=MissingRule)
    columns: dict[str, MissingRule] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, str):
            return {"default": {"strategy": value}}
        return value

    def rule_for(self, column: str) -> MissingRule:
        return self.columns.get(column, self.default)


class OutlierRule(_Model):
    """IQR: outside [Q1 - t·IQR, Q3 + t·IQR] (t defaults to 1.5); z-score: |z| > t (3)."""

    method: Literal["iqr", "zscore"] = "iqr"
    threshold: float | None = Field(default=None, gt=0)
    action: Literal["quarantine", "clip"] = "quarantine"

    @property
    def limit(self) -> float:
        if self.threshold is not None:
            return self.threshold
        return 1.5 if self.method == "iqr" else 3.0


class CleaningSpec(_Model):
    """The whole cleaning recipe. Every removed row is quarantined with a reason; every value
    changed in a kept row is written to the change log."""

    duplicates: DuplicatesSpec = Field(default_factory=DuplicatesSpec)
    missing: MissingSpec = Field(default_factory=MissingSpec)
    outliers: dict[str, OutlierRule] = Field(default_factory=dict)
    coerce: bool = True
    contract: Literal["quarantine", "error"] = "quarantine"

    @field_validator("outliers", mode="before")
    @classmethod
    def _outlier_shorthand(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, list):  # [{column: x, method: iqr, ...}, ...]
            return {
                item["column"]: {k: v for k, v in item.items() if k != "column"} for item in value
            }
        if isinstance(value, dict):
            return {k: ({"method": v} if isinstance(v, str) else v) for k, v in value.items()}
        return value

    @classmethod
    def default(cls) -> CleaningSpec:
        """What ``--clean`` means with no recipe: exact duplicates out, contract enforced."""
        return cls(duplicates=DuplicatesSpec(mode="exact"))

    @classmethod
    def load(cls, value: CleaningSpec | dict[str, Any] | str | None) -> CleaningSpec | None:
        """From a spec, a mapping, a YAML file path, or None (no cleaning)."""
        from loopml.data.spec_errors import describe_validation_error
        from loopml.errors import ConfigError

        if value is None or isinstance(value, CleaningSpec):
            return value
        if isinstance(value, str):
            import yaml

            try:
                with open(value, encoding="utf-8") as fh:
                    value = yaml.safe_load(fh) or {}
            except OSError as exc:
                raise ConfigError(
                    f"cleaning recipe {value!r} cannot be read: {exc.strerror}",
                    hint="check the path of the YAML file",
                ) from None
            if isinstance(value, dict) and "clean" in value:
                value = value["clean"]
        try:
            return cls.model_validate(value)
        except ValueError as exc:
            raise ConfigError(
                f"cleaning recipe is invalid: {describe_validation_error(exc)}",
                hint="see loopml.data.cleaning.CleaningSpec for the fields",
            ) from None
