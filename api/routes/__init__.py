"""The server API's routes, one module per resource; ``TABLE`` is every route, the one
source of both the endpoints and the OpenAPI document."""

from __future__ import annotations

from api.routes import groups, messages, sessions, tokens, users
from api.routing import ApiRoute

TABLE: tuple[ApiRoute, ...] = (
    *users.ROUTES,
    *tokens.ROUTES,
    *sessions.ROUTES,
    *messages.ROUTES,
    *groups.ROUTES,
)
