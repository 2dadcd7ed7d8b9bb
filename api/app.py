"""The HTTP app: the server API under ``/api/v1``, ``/metrics``, ``/health`` and
``/ready``, and the web client's files at ``/``."""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api import health, metrics
from api.context import ApiContext
from api.errors import error_response
from api.openapi import openapi_endpoint
from api.routes import TABLE
from api.routing import PREFIX, starlette_routes
from protocol.errors import ErrorCode

log = logging.getLogger(__name__)

DEFAULT_WEB_ROOT = Path(__file__).resolve().parent.parent / "webclient"
"""The ``webclient`` folder next to server.py."""


def web_root(setting: str) -> Path | None:
    """The folder served at ``/`` (``http.web_root``, else ``webclient`` next to
    server.py), or None when there is none."""
    root = Path(setting) if setting else DEFAULT_WEB_ROOT
    if root.is_dir():
        return root
    if setting:
        log.warning("http.web_root %s is not a folder; no files are served at /", root)
    return None


_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


async def _no_such_route(request: Request) -> Response:
    return error_response(
        ErrorCode.UNKNOWN_COMMAND, f"no route {request.method} {request.url.path}"
    )


def build_app(context: ApiContext) -> Starlette:
    routes: list[BaseRoute] = [
        Route("/health", health.health, methods=["GET"]),
        Route("/ready", health.ready, methods=["GET"]),
        Route("/metrics", metrics.metrics, methods=["GET"]),
        Route(f"{PREFIX}/openapi.json", openapi_endpoint(TABLE), methods=["GET"]),
        *starlette_routes(TABLE, context),
        # Anything else under the API prefix: a typed error, not the web client's 404.
        Route(PREFIX + "/{rest:path}", _no_such_route, methods=_METHODS),
    ]
    root = web_root(context.settings.web_root)
    if root is not None:
        routes.append(Mount("/", StaticFiles(directory=root, html=True), name="webclient"))
    app = Starlette(routes=routes)
    app.state.context = context
    return app
