"""The model registry: versions with lineage, aliases such as champion/challenger, audit log,
and the deployments that serve them."""

from loopml.registry.deployments import Deployments
from loopml.registry.entities import AuditEvent, Deployment, ModelVersion, RegisteredModel
from loopml.registry.refs import ModelRef, parse_ref
from loopml.registry.registry import ModelRegistry

__all__ = [
    "AuditEvent",
    "Deployment",
    "Deployments",
    "ModelRef",
    "ModelRegistry",
    "ModelVersion",
    "RegisteredModel",
    "parse_ref",
]
