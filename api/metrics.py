"""``/metrics``: the node's registry in Prometheus' text format. Each part of the node
defines its own metrics in that registry (docs/OPERATIONS.md lists them); most are
plain counters read by collectors only here, at scrape time."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from api.context import ApiContext


async def metrics(request: Request) -> Response:
    context: ApiContext = request.app.state.context
    body = generate_latest(context.services.registry)
    return Response(body, 200, media_type=CONTENT_TYPE_LATEST)
