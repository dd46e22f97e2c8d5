"""Hyperparameter distributions, as written in ``loopml.yaml`` and as given to Optuna.

Three kinds, told apart by ``type``::

    alpha: {type: float, low: 1e-4, high: 100, log: true}
    max_depth: {type: int, low: 2, high: 12}
    weights: [uniform, distance]          # shorthand for {type: categorical, choices: [...]}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    import optuna

__all__ = ["CategoricalParam", "FloatParam", "IntParam", "ParamSpace", "suggest"]


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntParam(_Param):
    """An integer in ``[low, high]``, optionally sampled on a log scale."""

    type: Literal["int"] = "int"
    low: int
    high: int
    log: bool = False
    step: int = 1

    @model_validator(mode="after")
    def _ordered(self) -> IntParam:
        _check_range(self.low, self.high, self.log)
        return self


class FloatParam(_Param):
    """A float in ``[low, high]``, optionally sampled on a log scale."""

    type: Literal["float"] = "float"
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> FloatParam:
        _check_range(self.low, self.high, self.log)
        return self


class CategoricalParam(_Param):
    """One of a fixed list of values (strings, numbers, booleans or null)."""

    type: Literal["categorical"] = "categorical"
    choices: list[str | int | float | bool | None] = Field(min_length=1)


def _check_range(low: float, high: float, log: bool) -> None:
    if low > high:
        raise ValueError(f"low ({low}) must not exceed high ({high})")
    if log and low <= 0:
        raise ValueError(f"a log-scale range needs low > 0, got {low}")


def _shorthand(value: Any) -> Any:
    if isinstance(value, list):
        return {"type": "categorical", "choices": value}
    return value


ParamSpace = Annotated[
    IntParam | FloatParam | CategoricalParam,
    Field(discriminator="type"),
    BeforeValidator(_shorthand),
]
"""One hyperparameter's distribution (a discriminated union on ``type``)."""


def suggest(trial: optuna.Trial, name: str, param: IntParam | FloatParam | CategoricalParam) -> Any:
    """Draw ``param`` from ``trial`` under ``name`` (Optuna's define-by-run API)."""
    if isinstance(param, IntParam):
        return trial.suggest_int(name, param.low, param.high, step=param.step, log=param.log)
    if isinstance(param, FloatParam):
        return trial.suggest_float(name, param.low, param.high, log=param.log)
    return trial.suggest_categorical(name, param.choices)
