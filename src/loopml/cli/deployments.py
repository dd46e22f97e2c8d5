"""``loopml serve list``: the deployments in the store, what they serve and their traffic.

``--json`` prints the documents scripts rely on::

    [{"name": "127.0.0.1:8000", "model_name": "churn",
      "targets": ["churn@champion", "churn@challenger"],
      "traffic": {"weights": {"champion": 90.0, "challenger": 10.0}, "shadow": []},
      "status": "running", "created_at": ..., "updated_at": ...}]
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from loopml.cli.output import JSON_OPTION_HELP, format_ms, print_json, print_table
from loopml.errors import InvalidInputError

__all__ = ["list_deployments", "traffic_text"]

_STATUSES = ("running", "stopped")


def list_deployments(
    name: Annotated[
        str | None, typer.Argument(help="Only this deployment (e.g. 127.0.0.1:8000).")
    ] = None,
    status: Annotated[str | None, typer.Option(help="Only running or stopped ones.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help=JSON_OPTION_HELP)] = False,
) -> None:
    """Deployments (servers) with the models they serve, their traffic and status."""
    from loopml.registry import Deployments

    if status is not None and status not in _STATUSES:
        raise InvalidInputError(
            f"--status has value {status!r}; valid options: {', '.join(_STATUSES)}"
        )
    store = Deployments.from_settings()
    try:
        found = store.list_deployments(name, status=status)
    finally:
        store.db.dispose()
    if json_output:
        print_json([d.to_dict() for d in found])
        return
    print_table(
        [
            {
                "deployment": d.name,
                "model": d.model_name,
                "targets": ", ".join(d.targets),
                "traffic": traffic_text(d.traffic, d.targets),
                "status": d.status,
                "updated": format_ms(d.updated_at),
            }
            for d in found
        ],
        ["deployment", "model", "targets", "traffic", "status", "updated"],
        title="deployments",
    )


def traffic_text(traffic: dict[str, Any] | None, targets: tuple[str, ...] = ()) -> str:
    """``champion=90% challenger=10% candidate=shadow``; no policy: all to the first target."""
    if not traffic:
        return f"{_selector(targets[0])}=100%" if targets else ""
    parts = [f"{k}={float(v):g}%" for k, v in (traffic.get("weights") or {}).items()]
    parts += [f"{s}=shadow" for s in traffic.get("shadow") or []]
    return " ".join(parts)


def _selector(ref: str) -> str:
    """The part of a reference a policy names: ``champion`` of ``churn@champion``."""
    from loopml.registry.refs import parse_ref

    try:
        parsed = parse_ref(ref)
    except InvalidInputError:
        return ref
    if parsed.version is not None:
        return str(parsed.version)
    return parsed.alias or "latest"
