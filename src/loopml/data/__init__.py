"""Data management: sources, contracts, cleaning with quarantine, features, versioned datasets.

Importing this package is cheap; the heavy pieces load on first use of a name::

    from loopml.data import DatasetStore, CleaningSpec, FeatureSpec, build_column_transformer

``DatasetStore`` keeps immutable dataset versions as Delta Lake tables under the artifact root
and records them (row count, schema, hash, source, contract, cleaning summary, profile,
lineage) in the metadata store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._lazy import lazy_exports

if TYPE_CHECKING:
    from loopml.data.cleaning import CleaningSpec
    from loopml.data.contract import Contract, infer_contract
    from loopml.data.features import FeatureSpec, build_column_transformer
    from loopml.data.ingest import IngestResult
    from loopml.data.sources import SourceSpec, iter_batches, read_source
    from loopml.data.validate import ValidationReport, validate
    from loopml.data.versions import DatasetStore, DatasetVersionInfo, from_settings

__all__ = [
    "CleaningSpec",
    "Contract",
    "DatasetStore",
    "DatasetVersionInfo",
    "FeatureSpec",
    "IngestResult",
    "SourceSpec",
    "ValidationReport",
    "build_column_transformer",
    "from_settings",
    "infer_contract",
    "iter_batches",
    "read_source",
    "validate",
]

_HOMES = {
    "CleaningSpec": "loopml.data.cleaning",
    "Contract": "loopml.data.contract",
    "infer_contract": "loopml.data.contract",
    "FeatureSpec": "loopml.data.features",
    "build_column_transformer": "loopml.data.features",
    "IngestResult": "loopml.data.ingest",
    "SourceSpec": "loopml.data.sources",
    "iter_batches": "loopml.data.sources",
    "read_source": "loopml.data.sources",
    "ValidationReport": "loopml.data.validate",
    "validate": "loopml.data.validate",
    "DatasetStore": "loopml.data.versions",
    "DatasetVersionInfo": "loopml.data.versions",
    "from_settings": "loopml.data.versions",
}

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
