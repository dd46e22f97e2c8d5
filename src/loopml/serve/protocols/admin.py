"""The admin API: which versions are served, and the traffic policy between them.

``GET /admin/models`` lists every target and the version it serves; ``GET /admin/traffic``
the policies; ``PUT /admin/traffic/{name}`` with ``{"weights": {"champion": 90,
"challenger": 10}, "shadow": ["candidate"]}`` (or ``{"spec": "champion=90,challenger=10"}``)
changes one model's policy at once in this process, and within one reload interval in every
worker: the change is written to the server's deployment in the store (audited, with the
``X-Loopml-Actor`` header as the actor) before it is applied, so a store that refuses it
leaves the policy as it was. When the server has an admin token, every admin request needs
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from loopml.errors import InvalidInputError, LoopMLError
from loopml.serve.protocols.body import check_json, json_reply, load_json
from loopml.serve.routing import TrafficPolicy
from loopml.serve.state import Call, Reply, ServerState

__all__ = ["FAST_ROUTES", "UnauthorizedError", "routes", "set_traffic"]


class UnauthorizedError(LoopMLError):
    """The admin API needs a token this request did not present (HTTP 401)."""

    code = "UNAUTHORIZED"


def check_token(state: ServerState, authorization: bytes | None) -> None:
    token = state.settings.admin_token
    if not token:
        return
    given = (authorization or b"").decode("latin-1")
    if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:], token):
        raise UnauthorizedError(
            "the admin API needs the server's admin token",
            hint="send the header Authorization: Bearer <token> (loopml serve traffic --token)",
        )


async def set_traffic(call: Call, state: ServerState) -> Reply:
    """``PUT /admin/traffic/{name}``: validate, apply here, publish to the other workers."""
    check_token(state, call.header(b"authorization"))
    check_json(call)
    document = load_json(call.body)
    if (
        isinstance(document, dict)
        and set(document) == {"spec"}
        and isinstance(document["spec"], str)
    ):
        policy = TrafficPolicy.parse(document["spec"])
    elif isinstance(document, dict):
        policy = TrafficPolicy.parse(document)
    else:
        raise InvalidInputError(
            'traffic policy must be an object like {"weights": {"champion": 90, "challenger": 10}}'
        )
    name = call.params["name"]
    call.model = name
    state.router.check(name, policy)
    if state.traffic.shared:
        actor = (call.header(b"x-loopml-actor") or b"admin-api").decode("latin-1")[:128]
        await asyncio.to_thread(state.traffic.write, name, policy, actor=actor)
    state.router.set_policy(name, policy)
    return json_reply({"model": name, "traffic": policy.to_dict(), "spec": str(policy)})


def describe_models(state: ServerState) -> list[dict[str, Any]]:
    rows = []
    for target in state.table.all_targets():
        model = target.model
        rows.append(
            {
                "model": target.name,
                "target": target.selector,
                "ref": target.ref,
                "version": model.version,
                "pinned": target.pinned,
                "sha256": model.sha256,
                "load_seconds": round(model.load_seconds, 4),
                "loaded_at": model.loaded_at,
                "inputs": [spec.to_dict() for spec in model.schema.inputs],
                "layout": model.schema.input_layout,
                "columns": list(model.schema.columns),
            }
        )
    return rows


def routes(state: ServerState) -> list[Any]:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    def respond(document: Any) -> Response:
        return Response(json_reply(document).body, 200, media_type="application/json")

    async def models(request: Request) -> Response:
        check_token(state, request.headers.get("authorization", "").encode("latin-1"))
        return respond({"default": state.default_model, "models": describe_models(state)})

    async def traffic(request: Request) -> Response:
        check_token(state, request.headers.get("authorization", "").encode("latin-1"))
        return respond({name: p.to_dict() for name, p in state.router.policies().items()})

    return [
        Route("/admin/models", models, methods=["GET"]),
        Route("/admin/traffic", traffic, methods=["GET"]),
    ]


FAST_ROUTES = [("/admin/traffic/{name}", set_traffic)]
