"""The model registry: versions with lineage, aliases such as champion/challenger, audit log."""

from loopml.registry.entities import AuditEvent, ModelVersion, RegisteredModel
from loopml.registry.refs import ModelRef, parse_ref
from loopml.registry.registry import ModelRegistry

__all__ = [
    "AuditEvent",
    "ModelRef",
    "ModelRegistry",
    "ModelVersion",
    "RegisteredModel",
    "parse_ref",
]
