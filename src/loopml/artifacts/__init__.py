"""Artifact storage: content-addressed blobs in a local folder or any fsspec URL (``s3://``).

>>> from loopml.artifacts import ArtifactStore
>>> store = ArtifactStore("./artifacts")            # or "s3://bucket/prefix"   # doctest: +SKIP
>>> blob = store.put_file("model.onnx")             # Blob(sha256=..., size=...) # doctest: +SKIP
>>> store.download(blob.sha256, "/tmp/model.onnx")  # verified, atomic          # doctest: +SKIP

Two layers: :class:`ArtifactStore` (hashing, dedup, verification, layout) over the byte-level
:class:`ArtifactStorage` seam that each backend implements. Importing this package loads no
backend library; fsspec and s3fs are imported on first use of a non-local root.
"""

from loopml.artifacts.paths import check_artifact_path
from loopml.artifacts.storage import ArtifactStorage, storage_for_uri
from loopml.artifacts.store import ArtifactStore, Blob

__all__ = ["ArtifactStorage", "ArtifactStore", "Blob", "check_artifact_path", "storage_for_uri"]
