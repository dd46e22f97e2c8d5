"""Where served models come from: the one seam between the server and the model registry.

A :class:`ModelSource` answers two questions: which version does a reference point at now
(cheap; the hot-reload poller asks it every few seconds), and what are that version's bytes
(ONNX model, signature, model card). :class:`RegistrySource` reads the loopml registry;
:class:`FileSource` serves ONNX files directly (tests, ``loopml serve --model-file``).

Pickles: loading one executes code, so a source hands out a version's ``model.pkl`` only
when that version carries its project's opt-in (the registry tag ``loopml.allow_pickle=true``,
written by ``loopml run`` when ``model.allow_pickle: true`` is set in ``loopml.yaml``) and has
no ONNX file. The opt-in travels with the version; no server flag can grant it. Files given
to :class:`FileSource` are ONNX only.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from loopml.errors import InvalidInputError, LoopMLError, NotFoundError

if TYPE_CHECKING:
    from loopml.registry import ModelRegistry

__all__ = ["FileSource", "ModelPackage", "ModelSource", "RegistrySource", "Resolved"]


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a reference points at right now."""

    name: str
    version: str


@dataclass(frozen=True)
class ModelPackage:
    """Everything needed to load one model version."""

    name: str
    version: str
    onnx: bytes | None
    signature: dict[str, Any] | None = None
    card: dict[str, Any] = field(default_factory=dict)
    sha256: str | None = None
    pickle: bytes | None = None
    #: the version carries its project's opt-in to serving its pickle (when it has no ONNX)
    allow_pickle: bool = False


@runtime_checkable
class ModelSource(Protocol):
    """Resolve references and fetch model versions."""

    def resolve(self, ref: str) -> Resolved:
        """The version ``ref`` (``NAME@ALIAS``, ``NAME:VERSION``, ``NAME``) points at now."""
        ...

    def fetch(self, name: str, version: str) -> ModelPackage:
        """The artifacts of one version; its pickle only when the version opted in to it."""
        ...


class FileSource:
    """Models from local ONNX files, with aliases kept in memory.

    >>> source = FileSource()
    >>> source.add("quickstart", "1", "model.onnx", aliases=("champion",))  # doctest: +SKIP
    """

    def __init__(self, files: dict[str, str | Path] | None = None) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, dict[str, tuple[Path, dict[str, Any] | None]]] = {}
        self._aliases: dict[str, dict[str, str]] = {}
        for name, path in (files or {}).items():
            self.add(name, "1", path)

    def add(
        self,
        name: str,
        version: str,
        path: str | Path,
        *,
        signature: dict[str, Any] | None = None,
        aliases: tuple[str, ...] = (),
    ) -> None:
        """Make ``path`` available as ``name:version`` (and under ``aliases``)."""
        with self._lock:
            self._versions.setdefault(name, {})[str(version)] = (Path(path), signature)
        for alias in aliases:
            self.set_alias(name, alias, version)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``name@alias`` at ``version`` (what the registry does on promotion)."""
        with self._lock:
            if str(version) not in self._versions.get(name, {}):
                raise NotFoundError(f"model {name!r} has no version {version!r}")
            self._aliases.setdefault(name, {})[alias] = str(version)

    def resolve(self, ref: str) -> Resolved:
        name, version, alias = _split_ref(ref)
        with self._lock:
            versions = self._versions.get(name)
            if not versions:
                raise NotFoundError(
                    f"model {name!r} is not known to this file source",
                    hint=f"known models: {sorted(self._versions)}",
                )
            if alias is not None:
                if alias not in self._aliases.get(name, {}):
                    raise NotFoundError(f"model {name!r} has no alias {alias!r}")
                return Resolved(name, self._aliases[name][alias])
            if version is None:
                return Resolved(name, list(versions)[-1])
            if version not in versions:
                raise NotFoundError(f"model {name!r} has no version {version!r}")
            return Resolved(name, version)

    def fetch(self, name: str, version: str) -> ModelPackage:
        with self._lock:
            try:
                path, signature = self._versions[name][version]
            except KeyError:
                raise NotFoundError(f"model {name!r} has no version {version!r}") from None
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise NotFoundError(
                f"ONNX file {str(path)!r} for model {name!r} cannot be read: {exc.strerror}"
            ) from None
        if data[:1] == _PICKLE_MAGIC or path.suffix.lower() in _PICKLE_SUFFIXES:
            raise InvalidInputError(
                f"{str(path)!r} (model {name!r}) is a pickle; model files are served as ONNX only",
                hint="export it to ONNX, or register it from a project with "
                "model.allow_pickle: true in loopml.yaml and serve NAME@ALIAS from the registry",
            )
        sha = hashlib.sha256(data).hexdigest()
        return ModelPackage(name, version, data, signature=signature, sha256=sha)


class RegistrySource:
    """Models from the loopml registry: ``model/model.onnx`` and ``model/model_card.json``."""

    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry

    @property
    def registry(self) -> ModelRegistry:
        """The registry models come from (its store also holds the server's deployment)."""
        return self._registry

    def resolve(self, ref: str) -> Resolved:
        record = self._registry.resolve(ref)
        return Resolved(record.name, str(record.version))

    def fetch(self, name: str, version: str) -> ModelPackage:
        import orjson

        from loopml.package.bundle import ALLOW_PICKLE_TAG

        record = self._registry.get_version(name, int(version))
        onnx = self._read(name, version, "model.onnx")
        card_bytes = self._read(name, version, "model_card.json")
        card: dict[str, Any] = {}
        if card_bytes is not None:
            try:
                card = orjson.loads(card_bytes)
            except orjson.JSONDecodeError as exc:
                raise InvalidInputError(
                    f"model card of {name}:{version} is not valid JSON: {exc}"
                ) from None
        signature = record.signature or card.get("signature")
        allow_pickle = record.tags.get(ALLOW_PICKLE_TAG, "").strip().lower() == "true"
        pickle = None
        if onnx is None and allow_pickle:  # never even read a pickle nobody consented to
            pickle = self._read(name, version, "model.pkl")
        return ModelPackage(
            name,
            version,
            onnx,
            signature=signature,
            card=card,
            sha256=record.sha256,
            pickle=pickle,
            allow_pickle=allow_pickle,
        )

    def _read(self, name: str, version: str, filename: str) -> bytes | None:
        """One file of the version's ``model/`` folder, or ``None`` when it does not exist."""
        try:
            data: bytes = self._registry.read_artifact(name, int(version), filename)
        except NotFoundError:
            return None
        except LoopMLError:
            raise
        return data


# Every pickle protocol >= 2 starts with the PROTO opcode; ONNX files (protobuf) never do.
_PICKLE_MAGIC = b"\x80"
_PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib"})


def _split_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``(name, version, alias)`` of a reference, checked by the registry's parser."""
    from loopml.registry.refs import parse_ref

    parsed = parse_ref(ref)
    version = None if parsed.version is None else str(parsed.version)
    return parsed.name, version, parsed.alias
