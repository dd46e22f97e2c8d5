"""A server's deployment record: what it serves and its traffic, in the store's ``deployments``.

A server that serves registry models under a deployment name (``loopml serve`` uses
``host:port``, or ``serving.name`` from ``loopml.yaml``) writes one row per registered model
when it starts (``running``) and when it shuts down gracefully (``stopped``). A traffic change
made through the admin API is written there, audited, and every worker of the server applies
it within one reload interval, because the reload poller reads the rows
(:meth:`DeploymentTraffic.read_if_changed`).

Models served from files (``--model-file``) are not in the registry, so their policies stay
in the process (:class:`loopml.serve.routing.TrafficStore`); so does everything when the
server has no deployment name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loopml.errors import LoopMLError
from loopml.serve.routing import TrafficPolicy, TrafficStore

if TYPE_CHECKING:
    from loopml.registry import Deployments
    from loopml.serve.settings import ServeSettings
    from loopml.serve.source import ModelSource
    from loopml.serve.state import ServerState

__all__ = ["DeploymentTraffic", "close_deployment", "open_deployment", "traffic_store"]

logger = logging.getLogger("loopml.serve.deployment")


class DeploymentTraffic(TrafficStore):
    """Traffic policies of the registry models of one deployment, kept in the store."""

    shared = True

    def __init__(
        self,
        deployments: Deployments,
        name: str,
        models: Collection[str],
        *,
        launched_at: int,
    ) -> None:
        self.deployments = deployments
        self.name = name
        self.models = frozenset(models)
        self.launched_at = launched_at
        self._seen: dict[str, dict[str, Any] | None] = {}

    def start(
        self, served: Mapping[str, Sequence[str]], policies: Mapping[str, TrafficPolicy]
    ) -> None:
        mine = {name: list(refs) for name, refs in served.items() if name in self.models}
        self.deployments.start(
            self.name,
            mine,
            {name: policy.to_dict() for name, policy in policies.items() if name in mine},
            launched_at=self.launched_at,
        )

    def write(self, name: str, policy: TrafficPolicy, *, actor: str | None = None) -> None:
        if name not in self.models:
            return  # a model file: its policy lives in this process only
        stored = self.deployments.set_traffic(self.name, name, policy.to_dict(), actor=actor)
        self._seen[name] = stored.traffic

    def read_if_changed(self) -> dict[str, TrafficPolicy] | None:
        stored = {
            name: traffic
            for name, traffic in self.deployments.traffic(self.name).items()
            if name in self.models
        }
        changed = {
            name: traffic
            for name, traffic in stored.items()
            if traffic is not None and self._seen.get(name, _UNSEEN) != traffic
        }
        self._seen = stored
        policies = {}
        for name, traffic in changed.items():
            try:
                policies[name] = TrafficPolicy.parse(traffic)
            except LoopMLError as exc:  # a hand-edited row must not stop the other models
                logger.warning("stored traffic of %s in %s is not valid: %s", name, self.name, exc)
        return policies or None

    def stop(self) -> None:
        self.deployments.stop(self.name)


_UNSEEN: Any = object()


def traffic_store(settings: ServeSettings, source: ModelSource) -> TrafficStore:
    """The store for this server's policies: its deployment rows when it has a name and a
    registry, else the process (a constructor: no I/O happens here)."""
    registry = getattr(source, "registry", None)
    if settings.deployment is None or registry is None:
        return TrafficStore()
    from loopml.registry import Deployments
    from loopml.registry.refs import parse_ref
    from loopml.tracking.store import now_ms

    models = {parse_ref(ref).name for ref in settings.models} - set(settings.model_files)
    return DeploymentTraffic(
        Deployments(registry.db),
        settings.deployment,
        models,
        launched_at=settings.launched_at_ms or now_ms(),
    )


async def open_deployment(state: ServerState) -> None:
    """At start-up: record the deployment, then apply the policies the store holds now.

    A worker that starts after another worker of the same server has changed the traffic
    finds the change here and applies it before it answers its first request.
    """
    if not state.traffic.shared:
        return
    table = state.table
    served = {name: [t.ref for t in table.targets(name).values()] for name in table.names()}
    policies = {name: TrafficPolicy.parse(spec) for name, spec in state.settings.traffic.items()}
    await asyncio.to_thread(state.traffic.start, served, policies)
    await sync_traffic(state)


async def sync_traffic(state: ServerState) -> None:
    """Apply the policies other workers changed (a no-op for an in-process store)."""
    store = state.traffic
    if not store.shared:
        return
    try:
        policies = await asyncio.to_thread(store.read_if_changed)
    except Exception as exc:  # the store may be down for a while: keep serving as is
        logger.warning("traffic policies could not be read: %s", exc)
        return
    for name, policy in (policies or {}).items():
        try:
            state.router.set_policy(name, policy)
        except LoopMLError as exc:
            logger.warning("traffic policy for %s not applied: %s", name, exc)


async def close_deployment(state: ServerState) -> None:
    """On graceful shutdown: mark the deployment stopped (never blocks the shutdown)."""
    if not state.traffic.shared:
        return
    try:
        await asyncio.to_thread(state.traffic.stop)
    except Exception as exc:
        logger.warning("deployment could not be marked stopped: %s", exc)
