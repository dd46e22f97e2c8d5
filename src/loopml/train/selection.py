"""From the search's winner to a registered version: refit, gates, champion comparison, aliases.

The rules, in order:

1. the best trial (by the primary metric; ties by prediction latency, then size — see
   :func:`loopml.train.search.rank_trials`) is refitted on every training row;
2. it is scored on the held-out test split (or out-of-fold when there is none);
3. the current ``champion`` of the same model name, if any, is scored on the *same rows*;
4. the gates (``min``/``max`` per test metric) are checked;
5. it is registered as a new version with its lineage and gets the alias ``challenger``;
   it also becomes ``champion`` when there is no champion yet **and** every gate passes.
   Replacing an existing champion is a promotion decision (canary, then promote) that
   belongs to the loop, not to training; the comparison is recorded to inform it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.train.metrics import METRICS

if TYPE_CHECKING:
    from loopml.registry import ModelRegistry
    from loopml.train.project import GateSpec

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "Comparison",
    "GateResult",
    "Registration",
    "assign_aliases",
    "check_gates",
    "compare",
    "current_champion",
]

CHAMPION = "champion"
CHALLENGER = "challenger"


@dataclass(frozen=True)
class GateResult:
    """One gate: the metric, its rule (``>= 0.9``), the measured value and the verdict."""

    metric: str
    rule: str
    value: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_gates(gates: Mapping[str, GateSpec], metrics: Mapping[str, float]) -> list[GateResult]:
    """Each gate against ``metrics``; a metric that is missing or NaN fails its gate."""
    results = []
    for name, gate in gates.items():
        value = float(metrics.get(name, float("nan")))
        results.append(GateResult(name, gate.describe(), value, gate.check(value)))
    return results


@dataclass(frozen=True)
class Comparison:
    """The challenger against the champion on the same evaluation rows."""

    champion_version: int
    metric: str
    challenger_value: float
    champion_value: float
    challenger_better: bool | None  # None when either value is undefined
    champion_metrics: dict[str, float] = field(default_factory=dict)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sentence(self) -> str:
        """One line for summaries and reports."""
        if self.note:
            return self.note
        if self.challenger_better is None:
            return f"champion v{self.champion_version}: {self.metric} not comparable"
        verdict = "better than" if self.challenger_better else "not better than"
        return (
            f"{verdict} champion v{self.champion_version} on {self.metric} "
            f"({self.challenger_value:.6g} vs {self.champion_value:.6g}, same rows)"
        )


def compare(
    challenger: Mapping[str, float],
    champion: Mapping[str, float],
    *,
    metric: str,
    champion_version: int,
) -> Comparison:
    """Compare two metric sets on ``metric`` (its direction decides what "better" means)."""
    ours = float(challenger.get(metric, float("nan")))
    theirs = float(champion.get(metric, float("nan")))
    better: bool | None = None
    if math.isfinite(ours) and math.isfinite(theirs):
        better = ours > theirs if METRICS[metric].greater_is_better else ours < theirs
    return Comparison(
        champion_version=champion_version,
        metric=metric,
        challenger_value=ours,
        champion_value=theirs,
        challenger_better=better,
        champion_metrics=dict(champion),
    )


def current_champion(registry: ModelRegistry, name: str) -> Any | None:
    """The version holding the ``champion`` alias of ``name``, or None (also if no model)."""
    from loopml.errors import NotFoundError

    try:
        aliases = registry.aliases(name)
    except NotFoundError:
        return None
    if CHAMPION not in aliases:
        return None
    return registry.get_version(name, aliases[CHAMPION])


@dataclass(frozen=True)
class Registration:
    """What registering did: the new version and the aliases it now holds."""

    name: str
    version: int
    aliases: list[str]
    gates_passed: bool
    champion_before: int | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def assign_aliases(
    registry: ModelRegistry,
    name: str,
    version: int,
    *,
    gates_passed: bool,
    champion_before: int | None,
) -> Registration:
    """Move ``challenger`` to ``version``; add ``champion`` when none exists and gates pass."""
    registry.set_alias(name, CHALLENGER, version)
    aliases = [CHALLENGER]
    if champion_before is None and gates_passed:
        registry.set_alias(name, CHAMPION, version)
        aliases.append(CHAMPION)
        reason = "first version to pass the gates: champion and challenger"
    elif champion_before is None:
        reason = "gates failed: challenger only, no champion until a version passes them"
    elif gates_passed:
        reason = (
            f"champion stays v{champion_before}; promote after a canary "
            f"(`loopml models alias {name} champion {version}`)"
        )
    else:
        reason = f"gates failed: challenger only; champion stays v{champion_before}"
    return Registration(name, version, aliases, gates_passed, champion_before, reason)
