"""Package a fitted model: ONNX + parity check + model card, and log it with its run.

A packaged model is up to three files, logged under ``model/`` in the run's artifacts:

- ``model.onnx`` — what servers load (framework-free, no code executed on load);
- ``model_card.json`` — signature, metrics, lineage, versions, parity report, checksums;
- ``model.pkl`` — only with ``allow_pickle=True``: loading a pickle executes code, so a
  project has to opt in before anything may serve one.

The opt-in travels with the registered version as the tag :data:`ALLOW_PICKLE_TAG`
(``loopml.allow_pickle=true``, set by ``loopml run`` when ``model.allow_pickle`` is true in
``loopml.yaml``); a server loads a version's pickle only when that tag says so and the
version has no ONNX file.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml._version import __version__
from loopml.errors import IntegrityError, NotFoundError
from loopml.package.card import ModelCard
from loopml.package.errors import PackagingError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from loopml.package.parity import ParityReport
    from loopml.package.signature import Signature
    from loopml.tracking.client import Client

__all__ = [
    "ALLOW_PICKLE_TAG",
    "ARTIFACT_PATH",
    "CARD_FILE",
    "ONNX_FILE",
    "PICKLE_FILE",
    "LoggedModel",
    "PackagedModel",
    "load_packaged_model",
    "log_packaged_model",
    "package_model",
]

ARTIFACT_PATH = "model"
ONNX_FILE = "model.onnx"
CARD_FILE = "model_card.json"
PICKLE_FILE = "model.pkl"
#: Version tag that lets servers load the version's pickle (value ``"true"``).
ALLOW_PICKLE_TAG = "loopml.allow_pickle"


@dataclass(frozen=True)
class PackagedModel:
    """The bytes of a packaged model and its card."""

    onnx_bytes: bytes = field(repr=False)
    card: ModelCard
    pickle_bytes: bytes | None = field(default=None, repr=False)
    #: set when the files were logged to a run (``package_model(..., client=...)``)
    logged: LoggedModel | None = None

    @property
    def artifact_path(self) -> str:
        """The run artifact folder holding the files (``model``)."""
        return self.logged.artifact_path if self.logged is not None else ARTIFACT_PATH

    @property
    def signature(self) -> Signature:
        return self.card.signature

    @property
    def parity(self) -> ParityReport | None:
        return self.card.parity

    @property
    def onnx_sha256(self) -> str:
        return self.card.onnx_sha256

    def files(self) -> dict[str, bytes]:
        """``{file name: bytes}`` in the order they are written."""
        files = {ONNX_FILE: self.onnx_bytes, CARD_FILE: self.card.to_json().encode("utf-8")}
        if self.pickle_bytes is not None:
            files[PICKLE_FILE] = self.pickle_bytes
        return files

    def write(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write the files into ``directory`` (created if needed); returns their paths."""
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        written = {}
        for name, data in self.files().items():
            path = root / name
            path.write_bytes(data)
            written[name] = path
        return written


@dataclass(frozen=True)
class LoggedModel:
    """Where :func:`log_packaged_model` put the files."""

    run_id: str
    artifact_path: str  # the folder, "model"
    artifact_paths: tuple[str, ...]  # "model/model.onnx", "model/model_card.json", ...
    onnx_sha256: str


def package_model(
    model: Any,
    X_holdout: pd.DataFrame | np.ndarray,
    *,
    task: str,
    run_id: str | None = None,
    metrics: Mapping[str, float] | None = None,
    lineage: Mapping[str, Any] | None = None,
    allow_pickle: bool = False,
    name: str | None = None,
    version: str | int | None = None,
    X_sample: pd.DataFrame | np.ndarray | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    target_opset: int | None = None,
    client: Client | None = None,
) -> PackagedModel:
    """Export ``model`` to ONNX, check parity on ``X_holdout``, and write its card.

    ``X_sample`` (default: ``X_holdout``) decides the ONNX input types. ``lineage`` holds
    the provenance the caller knows — ``dataset_version``, ``code_commit``... — and
    ``run_id`` is added to it. Raises :class:`PackagingError` when a step cannot be
    exported and :class:`ParityError` when ONNX and the native model disagree beyond
    ``rtol``/``atol``: in both cases nothing should be registered.

    With ``client`` (and ``run_id``) the files are also logged under the run's ``model/``
    (see :func:`log_packaged_model`); ``.logged`` then says where.
    """
    if client is not None and run_id is None:
        raise PackagingError(
            "package_model(client=...) logs the files to a run, so it needs run_id",
            hint="pass run_id, or call log_packaged_model later",
        )
    from loopml.package.export import export_onnx
    from loopml.package.parity import check_parity

    exported = export_onnx(
        model, X_sample if X_sample is not None else X_holdout, task=task, target_opset=target_opset
    )
    report = check_parity(model, exported.onnx_bytes, X_holdout, task=task, rtol=rtol, atol=atol)
    files = {ONNX_FILE: exported.sha256}
    pickle_bytes = None
    if allow_pickle:
        try:
            pickle_bytes = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # lambdas, open handles...
            raise PackagingError(
                f"the {type(model).__name__} cannot be pickled: {type(exc).__name__}: {exc}",
                hint="set allow_pickle to false: the ONNX file is what gets served",
            ) from exc
        files[PICKLE_FILE] = hashlib.sha256(pickle_bytes).hexdigest()
    full_lineage = dict(lineage or {})
    if run_id is not None:
        full_lineage.setdefault("run_id", run_id)
    card = ModelCard(
        name=name,
        version=str(version) if version is not None else None,
        signature=exported.signature,
        onnx_sha256=exported.sha256,
        onnx_opset=exported.opset,
        converter=exported.converter,
        loopml_version=__version__,
        onnxruntime_version=report.onnxruntime_version,
        parity=report,
        metrics=dict(metrics or {}),
        lineage=full_lineage,
        files=files,
    )
    packaged = PackagedModel(onnx_bytes=exported.onnx_bytes, card=card, pickle_bytes=pickle_bytes)
    if client is not None and run_id is not None:
        logged = log_packaged_model(packaged, run_id, client=client)
        packaged = replace(packaged, logged=logged)
    return packaged


def log_packaged_model(
    packaged: PackagedModel,
    run_id: str,
    *,
    client: Client | None = None,
    artifact_path: str = ARTIFACT_PATH,
) -> LoggedModel:
    """Log the packaged files as artifacts of ``run_id`` under ``artifact_path``.

    Uses ``client.log_artifact(run_id, local_path, artifact_path)`` (a default
    :class:`loopml.Client` when none is given). Returns the artifact paths and the sha256 of
    ``model.onnx`` — what a registry version points at.
    """
    if client is None:
        from loopml.tracking.client import Client

        client = Client()
    logged = []
    with tempfile.TemporaryDirectory(prefix="loopml-package-") as tmp:
        for path in packaged.write(tmp).values():
            logged.append(client.log_artifact(run_id, path, artifact_path))
    return LoggedModel(
        run_id=run_id,
        artifact_path=artifact_path,
        artifact_paths=tuple(logged),
        onnx_sha256=packaged.onnx_sha256,
    )


def load_packaged_model(source: str | os.PathLike[str] | Mapping[str, bytes]) -> PackagedModel:
    """Read a packaged model from a folder (or a ``{file name: bytes}`` mapping).

    ``model.onnx`` is checked against the card's sha256 (:class:`IntegrityError` if it was
    altered). The pickle, if present, is returned as bytes and never unpickled here.
    """
    if isinstance(source, Mapping):
        files = dict(source)
    else:
        root = Path(source)
        files = {
            name: (root / name).read_bytes()
            for name in (ONNX_FILE, CARD_FILE, PICKLE_FILE)
            if (root / name).is_file()
        }
    for required in (ONNX_FILE, CARD_FILE):
        if required not in files:
            raise NotFoundError(
                f"the packaged model has no {required}",
                hint="package it with loopml.package.package_model",
            )
    card = ModelCard.from_json(files[CARD_FILE])
    for name, expected in card.files.items():
        data = files.get(name)
        if data is None:
            if name == PICKLE_FILE:
                continue  # the pickle is optional to carry around
            raise NotFoundError(f"the packaged model lists {name} but it is missing")
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise IntegrityError(
                f"{name} has sha256 {actual[:12]}…, the model card says {expected[:12]}…",
                hint="the file was altered or truncated; re-download or re-package it",
            )
    return PackagedModel(
        onnx_bytes=files[ONNX_FILE], card=card, pickle_bytes=files.get(PICKLE_FILE)
    )
