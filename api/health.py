"""Probes for load balancers and Kubernetes: ``/health`` (the process answers) and
``/ready`` (this node can serve: Redis answers, the node is registered in the cluster,
and it is not shutting down)."""

from __future__ import annotations

import logging

import msgspec
import redis
import trio
from starlette.requests import Request
from starlette.responses import Response

from api.context import ApiContext

log = logging.getLogger(__name__)

READY_CHECK_TIMEOUT_S = 2.0
"""A Redis that has not answered the probe's reads within this long counts as down."""


class Health(msgspec.Struct, frozen=True):
    status: str
    """``ok``, or ``unavailable`` (``/ready`` only)."""
    node_id: str
    checks: dict[str, bool] = {}
    """``/ready``: each condition (``redis``, ``registered``, ``running``)."""


def _json(body: Health, status: int) -> Response:
    return Response(msgspec.json.encode(body), status, media_type="application/json")


async def health(request: Request) -> Response:
    context: ApiContext = request.app.state.context
    return _json(Health("ok", context.services.node_id), 200)


async def ready(request: Request) -> Response:
    context: ApiContext = request.app.state.context
    services = context.services
    checks = {"redis": False, "registered": False, "running": not context.stopping.is_set()}
    with trio.move_on_after(READY_CHECK_TIMEOUT_S):
        try:
            await services.storage.ping()
            checks["redis"] = True
            live = await services.storage.presence.live_nodes()
            checks["registered"] = services.node_id in live
        except redis.RedisError as exc:
            log.info("readiness probe: storage unavailable (%s)", exc)
    ok = all(checks.values())
    return _json(
        Health("ok" if ok else "unavailable", services.node_id, checks), 200 if ok else 503
    )
