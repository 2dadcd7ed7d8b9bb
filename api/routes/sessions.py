"""``/users/{user_id}/sessions``: a user's live sessions, on every node."""

from __future__ import annotations

from api.context import ApiContext
from api.routes.users import USER
from api.routing import ApiRoute
from api.schemas import SessionInfo, Sessions
from protocol.errors import ErrorCode, ProtocolError


async def list_sessions(context: ApiContext, body: None, path: dict[str, str]) -> Sessions:
    """The user's signed-in sessions on live nodes: platform, node, and since when."""
    user_id = path["user_id"]
    storage = context.services.storage
    if not await storage.accounts.exists(user_id):
        raise ProtocolError(ErrorCode.USER_NOT_FOUND, f"no user {user_id!r}")
    live = set(await storage.presence.live_nodes())
    entries = await storage.presence.sessions(user_id)
    return Sessions(
        user_id=user_id,
        sessions=[
            SessionInfo(
                session_id=e.session_id, platform=e.platform, node_id=e.node_id, since=e.since_ms
            )
            for e in sorted(entries, key=lambda e: (e.since_ms, e.session_id))
            if e.node_id in live
        ],
    )


ROUTES = (
    ApiRoute(
        "GET", "/users/{user_id}/sessions", list_sessions, "List a user's sessions", Sessions,
        params=USER, errors=(ErrorCode.USER_NOT_FOUND,), tag="sessions",
    ),
)  # fmt: skip
