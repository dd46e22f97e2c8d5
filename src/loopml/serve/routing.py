"""Traffic between the versions of one model: weighted split, sticky keys, shadows.

A policy for model ``churn`` reads ``champion=90,challenger=10,candidate=shadow``: requests go
to the ``champion`` target 90% of the time and to ``challenger`` 10%; ``candidate`` receives a
copy of every request, and its answers are logged but never returned. With a request key
(the ``X-Loopml-Key`` header by default) the choice is a hash of the key, so one user always
meets the same version; without one it is random.

Policies live in memory for the hot path. A :class:`TrafficStore` keeps them between the
workers of a server: this module's base class keeps them in the process only (enough for one
process, or for models served from files), :class:`loopml.serve.deployment.DeploymentTraffic`
in the store's ``deployments`` table, which every worker polls (see :mod:`loopml.serve.reload`).
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopml.errors import InvalidInputError
from loopml.serve.models import ModelTable, Target

__all__ = ["Router", "TrafficPolicy", "TrafficStore"]

_SCALE = float(2**64)


@dataclass(frozen=True)
class TrafficPolicy:
    """Weights by target selector (summing to 100 after normalisation) and shadow selectors."""

    weights: tuple[tuple[str, float], ...]
    shadows: tuple[str, ...] = ()

    @classmethod
    def parse(cls, spec: str | Mapping[str, Any]) -> TrafficPolicy:
        """Read ``"a=90,b=10,c=shadow"`` or ``{"weights": {"a": 90, "b": 10}, "shadow": ["c"]}``."""
        weights: dict[str, float] = {}
        shadows: list[str] = []
        if isinstance(spec, str):
            for part in (p.strip() for p in spec.split(",")):
                if not part:
                    continue
                selector, sep, value = part.partition("=")
                if not sep or not selector.strip():
                    raise InvalidInputError(
                        f"traffic entry {part!r} is not SELECTOR=WEIGHT",
                        hint="e.g. champion=90,challenger=10 or candidate=shadow",
                    )
                if value.strip().lower() == "shadow":
                    shadows.append(selector.strip())
                else:
                    weights[selector.strip()] = _weight(selector.strip(), value.strip())
        elif isinstance(spec, Mapping):
            raw_weights = spec.get("weights", {})
            raw_shadows = spec.get("shadow", spec.get("shadows", []))
            if not isinstance(raw_weights, Mapping):
                raise InvalidInputError(
                    f"traffic 'weights' must be an object like {{'champion': 90}}, "
                    f"got {raw_weights!r:.60}"
                )
            if not isinstance(raw_shadows, list) or not all(
                isinstance(s, str) for s in raw_shadows
            ):
                raise InvalidInputError(
                    f"traffic 'shadow' must be a list of selectors, got {raw_shadows!r:.60}"
                )
            unknown = sorted(set(spec) - {"weights", "shadow", "shadows"})
            if unknown:
                raise InvalidInputError(
                    f"traffic policy has unknown field(s) {unknown}",
                    hint="fields: weights (object), shadow (list)",
                )
            weights = {str(k): _weight(str(k), v) for k, v in raw_weights.items()}
            shadows = list(raw_shadows)
        else:
            raise InvalidInputError(f"traffic policy must be text or an object, got {spec!r:.60}")
        total = sum(weights.values())
        if total <= 0:
            raise InvalidInputError(
                "traffic policy sends no traffic anywhere: the weights sum to 0",
                hint="give at least one target a positive weight, e.g. champion=100",
            )
        overlap = sorted(set(shadows) & {k for k, v in weights.items() if v > 0})
        if overlap:
            raise InvalidInputError(
                f"target(s) {overlap} cannot be both weighted and shadow",
                hint="a shadow target gets a copy of the traffic; give it weight 0 or drop it",
            )
        normalised = tuple((k, 100.0 * v / total) for k, v in weights.items())
        return cls(normalised, tuple(dict.fromkeys(shadows)))

    def to_dict(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "shadow": list(self.shadows)}

    def __str__(self) -> str:
        parts = [f"{k}={v:g}" for k, v in self.weights] + [f"{s}=shadow" for s in self.shadows]
        return ",".join(parts)


@dataclass(frozen=True)
class _Plan:
    """A policy resolved to targets, precomputed for the hot path."""

    targets: tuple[Target, ...]
    bounds: tuple[float, ...]  # cumulative weight fractions, last == 1.0
    shadows: tuple[Target, ...]
    policy: TrafficPolicy


class Router:
    """Chooses the target (and shadows) for each request to a model name."""

    def __init__(self, table: ModelTable) -> None:
        self._table = table
        self._plans: dict[str, _Plan] = {}
        self._random = random.random

    def check(self, name: str, policy: TrafficPolicy) -> None:
        """Raise :class:`InvalidInputError` unless ``policy`` names only served targets."""
        self._plan(name, policy)

    def set_policy(self, name: str, policy: TrafficPolicy) -> None:
        """Validate ``policy`` against the served targets of ``name`` and apply it."""
        self._plans[name] = self._plan(name, policy)

    def _plan(self, name: str, policy: TrafficPolicy) -> _Plan:
        targets = self._table.targets(name)
        named = [k for k, _ in policy.weights] + list(policy.shadows)
        unknown = [selector for selector in named if selector not in targets]
        if unknown:
            raise InvalidInputError(
                f"traffic policy for {name!r} names {unknown}, which this server does not serve",
                hint=f"served targets of {name!r}: {', '.join(targets)} "
                f"(start the server with --model {name}@<alias> for each)",
            )
        chosen = [(targets[k], w) for k, w in policy.weights if w > 0]
        total = sum(w for _, w in chosen)
        bounds, running = [], 0.0
        for _, weight in chosen:
            running += weight / total
            bounds.append(running)
        bounds[-1] = 1.0
        return _Plan(
            tuple(t for t, _ in chosen),
            tuple(bounds),
            tuple(targets[s] for s in policy.shadows),
            policy,
        )

    def policy(self, name: str) -> TrafficPolicy:
        """The policy in force for ``name`` (100% to its first target when none was set)."""
        plan = self._plans.get(name)
        if plan is not None:
            return plan.policy
        first = next(iter(self._table.targets(name)))
        return TrafficPolicy(((first, 100.0),))

    def policies(self) -> dict[str, TrafficPolicy]:
        return {name: self.policy(name) for name in self._table.names()}

    def route(self, name: str, key: bytes | None = None) -> tuple[Target, tuple[Target, ...]]:
        """The target that answers, and the shadows that get a copy."""
        plan = self._plans.get(name)
        if plan is None:
            return next(iter(self._table.targets(name).values())), ()
        if len(plan.targets) == 1:
            return plan.targets[0], plan.shadows
        if key is None:
            point = self._random()
        else:
            digest = hashlib.blake2b(key, digest_size=8).digest()
            point = int.from_bytes(digest, "big") / _SCALE
        return plan.targets[bisect.bisect_right(plan.bounds, point)], plan.shadows


class TrafficStore:
    """Where a server keeps its traffic policies between workers; this one, in-process only.

    The app calls :meth:`start` when the server starts, :meth:`write` when the admin API
    changes a policy, :meth:`read_if_changed` from the reload poller (only when
    :attr:`shared`), and :meth:`stop` on graceful shutdown. Calls may block on I/O: the app
    makes them off the event loop.
    """

    #: True when other processes can change the policies (the poller then reads them).
    shared = False

    def start(
        self, served: Mapping[str, Sequence[str]], policies: Mapping[str, TrafficPolicy]
    ) -> None:
        """Record that the server runs ``served`` (model → references) with ``policies``."""

    def write(self, name: str, policy: TrafficPolicy, *, actor: str | None = None) -> None:
        """Publish ``policy`` for model ``name`` to the other workers."""

    def read_if_changed(self) -> dict[str, TrafficPolicy] | None:
        """Policies changed elsewhere since the last read or write (``None``: no change)."""
        return None

    def stop(self) -> None:
        """Record that the server stopped."""


def _weight(selector: str, value: Any) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"traffic weight for {selector!r} is {value!r}; expected a number or 'shadow'"
        ) from None
    if not 0 <= weight < float("inf"):
        raise InvalidInputError(
            f"traffic weight for {selector!r} is {value!r}; it must be between 0 and 100"
        )
    return weight
