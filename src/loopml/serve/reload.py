"""Hot reload: follow alias moves in the registry and swap versions without dropping a request.

Every ``reload_interval`` seconds the poller asks the model source what each alias target
(``churn@champion``) points at. When the answer changes, the new version is fetched and
loaded in a worker thread while the old one keeps serving; then the target is switched in
one assignment (:meth:`ModelTable.swap`). Requests already queued on the old version finish
there. A failed load leaves the old version serving and is counted in
``loopml_reloads_total{outcome="failed"}``. The same loop reads the traffic policies of the
server's deployment (the store's ``deployments`` table), so every worker of a multi-process
server applies an admin change within one interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from loopml.serve.deployment import sync_traffic
from loopml.serve.models import LoadedModel, Target
from loopml.serve.state import ServerState

__all__ = ["Reloader"]

logger = logging.getLogger("loopml.serve.reload")

# How long a swapped-out version stays loaded, so requests queued on it can finish.
_RETIRE_AFTER_S = 30.0


class Reloader:
    """The background task that keeps targets on the versions their aliases point at."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._task: asyncio.Task[None] | None = None
        self.swaps = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loopml-reload")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def check_once(self) -> int:
        """Check every alias target now; returns how many were swapped."""
        swapped = 0
        for target in self._state.table.all_targets():
            if target.pinned:
                continue
            try:
                if await self._check(target):
                    swapped += 1
            except Exception as exc:  # keep serving the old version whatever happened
                self._count(target.name, "failed")
                logger.warning("hot reload of %s failed: %s", target.ref, exc)
        await sync_traffic(self._state)
        return swapped

    async def _run(self) -> None:
        interval = self._state.settings.reload_interval_s
        while True:
            await asyncio.sleep(interval)
            await self.check_once()

    async def _check(self, target: Target) -> bool:
        state = self._state
        resolved = await asyncio.to_thread(state.loader.source.resolve, target.ref)
        if resolved.version == target.model.version:
            return False
        logger.info("%s moved to version %s; loading it", target.ref, resolved.version)
        model = await asyncio.to_thread(state.loader.load, resolved.name, resolved.version)
        old = state.table.swap(target, model)
        self.swaps += 1
        self._count(target.name, "swapped")
        if state.metrics is not None:
            state.metrics.unloaded(old.name, old.version, target.selector)
            state.metrics.loaded(model.name, model.version, target.selector, model.load_seconds)
        asyncio.get_running_loop().call_later(_RETIRE_AFTER_S, _retire, old)
        return True

    def _count(self, name: str, outcome: str) -> None:
        if self._state.metrics is not None:
            self._state.metrics.reloads.labels(name, outcome).inc()


def _retire(model: LoadedModel) -> None:
    model.close()
