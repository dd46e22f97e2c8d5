"""The models a server holds: loaded versions, the targets that point at them, atomic swaps.

A *target* is one ``--model`` reference: ``churn@champion`` (follows the alias) or ``churn:3``
(pinned). Each target holds the :class:`LoadedModel` it currently serves; hot reload replaces
that object in one assignment, so a request sees either the old version or the new one, never
a mix, and requests already running on the old version finish on it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loopml.errors import InvalidInputError, LoopMLError, NotFoundError
from loopml.package.feed import FeedBuilder
from loopml.package.signature import Signature
from loopml.serve.batching import Batcher, BatchObserver, Load
from loopml.serve.runtime import Engine, load_engine
from loopml.serve.settings import ServeSettings
from loopml.serve.source import ModelPackage, ModelSource

__all__ = ["LoadedModel", "ModelLoader", "ModelTable", "Target", "check_servable"]


@dataclass(eq=False)
class LoadedModel:
    """One model version ready to answer: engine, feed builder, batcher."""

    name: str
    version: str
    engine: Engine
    feeds: FeedBuilder
    batcher: Batcher
    load_seconds: float
    sha256: str | None = None
    card: dict[str, Any] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.time)

    @property
    def schema(self) -> Signature:
        return self.engine.schema

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def __post_init__(self) -> None:
        names = [spec.name for spec in self.schema.outputs]
        self._prediction_index = names.index(self.schema.prediction_output)

    @property
    def prediction_index(self) -> int:
        """Position of the ``predictions`` output among the model's outputs."""
        return self._prediction_index

    def predictions(self, outputs: list[Any]) -> Any:
        """The ``predictions`` value: the label output, a ``[n, 1]`` column flattened."""
        return self.flatten(outputs[self._prediction_index])

    @staticmethod
    def flatten(output: Any) -> Any:
        """A ``[n, 1]`` column as ``[n]``; anything else unchanged."""
        if isinstance(output, np.ndarray) and output.ndim == 2 and output.shape[1] == 1:
            return output.reshape(-1)
        return output

    def close(self) -> None:
        self.batcher.close()


@dataclass(eq=False)
class Target:
    """One served reference and the version it currently points at."""

    name: str
    selector: str  # the alias ("champion") or version ("3") as written after @ or :
    ref: str
    pinned: bool
    model: LoadedModel


class ModelTable:
    """All targets, by model name then selector; the first target of a name is its default."""

    def __init__(self) -> None:
        self._targets: dict[str, dict[str, Target]] = {}
        self._versions: dict[tuple[str, str], LoadedModel] = {}
        self._lock = threading.Lock()

    def add(self, target: Target) -> None:
        with self._lock:
            self._targets.setdefault(target.name, {})[target.selector] = target
            self._reindex()

    def swap(self, target: Target, model: LoadedModel) -> LoadedModel:
        """Point ``target`` at ``model``; returns the model it served before."""
        with self._lock:
            old = target.model
            target.model = model
            self._reindex()
        return old

    def names(self) -> list[str]:
        return list(self._targets)

    def targets(self, name: str) -> dict[str, Target]:
        """The targets of ``name``; :class:`NotFoundError` names the served models."""
        try:
            return self._targets[name]
        except KeyError:
            raise NotFoundError(
                f"model {name!r} is not served here",
                hint=f"served models: {', '.join(self._targets) or '(none)'}",
            ) from None

    def version(self, name: str, version: str) -> LoadedModel:
        """The loaded ``name`` at ``version``, or :class:`NotFoundError`."""
        model = self._versions.get((name, version))
        if model is None:
            served = [v for (n, v) in self._versions if n == name]
            self.targets(name)  # unknown name: a clearer message
            raise NotFoundError(
                f"model {name!r} version {version!r} is not loaded in this server",
                hint=f"loaded versions of {name!r}: {', '.join(served)}",
            )
        return model

    def loaded(self) -> Iterator[LoadedModel]:
        """Every distinct loaded version."""
        return iter(list(self._versions.values()))

    def all_targets(self) -> Iterator[Target]:
        return iter([t for by_selector in self._targets.values() for t in by_selector.values()])

    def _reindex(self) -> None:
        versions: dict[tuple[str, str], LoadedModel] = {}
        for by_selector in self._targets.values():
            for target in by_selector.values():
                versions.setdefault((target.name, target.model.version), target.model)
        self._versions = versions  # one assignment: readers never see a half-built index


class ModelLoader:
    """Builds :class:`LoadedModel` objects from a :class:`ModelSource`."""

    def __init__(
        self,
        source: ModelSource,
        settings: ServeSettings,
        load: Load,
        *,
        observer: Callable[[str, str], BatchObserver | None] | None = None,
    ) -> None:
        self.source = source
        self._settings = settings
        self._load = load
        self._observer = observer

    def target(self, ref: str) -> Target:
        """Resolve ``ref`` and load the version it points at."""
        from loopml.registry.refs import parse_ref

        parsed = parse_ref(ref)
        resolved = self.source.resolve(ref)
        if parsed.version is not None:
            selector, pinned = str(parsed.version), True
        else:
            selector, pinned = parsed.alias or "latest", False
        model = self.load(resolved.name, resolved.version)
        return Target(resolved.name, selector, ref, pinned, model)

    def load(self, name: str, version: str) -> LoadedModel:
        """Fetch and load one version (blocking: call it off the event loop when serving)."""
        settings = self._settings
        package = self.source.fetch(name, version)
        label = f"{name}:{version}"
        check_servable(package, label)
        engine, seconds = load_engine(
            package.onnx,
            package.pickle,
            package.signature,
            # The version's own opt-in, never a server-wide switch: see loopml.serve.source.
            allow_pickle=package.allow_pickle,
            threads=settings.ort_threads,
            label=label,
        )
        if not engine.schema.inputs:
            raise InvalidInputError(f"model {label} declares no inputs")
        observe = self._observer(name, version) if self._observer else None
        batcher = Batcher(
            engine.run,
            load=self._load,
            enabled=settings.batching and engine.schema.batchable,
            max_rows=settings.batch_max_rows,
            max_wait_s=settings.batch_max_wait_ms / 1000,
            offload_threshold_s=settings.offload_threshold_ms / 1000,
            observe=observe,
        )
        return LoadedModel(
            name=name,
            version=version,
            engine=engine,
            feeds=FeedBuilder(engine.schema, label),
            batcher=batcher,
            load_seconds=seconds,
            sha256=package.sha256,
            card=package.card,
        )


def check_servable(package: ModelPackage, label: str) -> None:
    """Refuse, with the way out, a version that has no ONNX file and no pickle opt-in.

    Serving loads ONNX. A pickle is loaded only when its version carries the project's opt-in
    (``loopml.allow_pickle=true``), because loading a pickle executes code.
    """
    if package.onnx is not None:
        return
    if not package.allow_pickle:
        raise LoopMLError(
            f"model {label} has no ONNX artifact, and its version does not opt in to "
            "serving its pickle (loading a pickle executes code)",
            hint="set model.allow_pickle: true in loopml.yaml and re-run `loopml run`: the new "
            "version carries the opt-in (tag loopml.allow_pickle=true); or package the model "
            "to ONNX",
        )
    if package.pickle is None:
        raise NotFoundError(
            f"model {label} opts in to serving a pickle, but has neither model.onnx nor model.pkl",
            hint="re-run `loopml run` to package and register the model again",
        )
