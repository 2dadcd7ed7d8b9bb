"""``/users/{user_id}/tokens`` and ``/logout``: tokens for the app's own sign-in, their
revocation, and forced logouts. Each runs in the user's actor (``protocol.admin``)."""

from __future__ import annotations

from actors.user import actor as user
from api.context import ApiContext
from api.routes.users import USER
from api.routing import ApiRoute
from api.schemas import LogoutRequest, SessionsClosed, Token, TokenRequest
from protocol import admin
from protocol import messages as m
from protocol.errors import ErrorCode

E = ErrorCode


async def issue_token(context: ApiContext, body: TokenRequest, path: dict[str, str]) -> Token:
    """A token for the user on a platform, for ``token_login`` on the WebSocket: how an
    app backend with its own user database signs its users in. It is recorded like a
    token from ``login`` (so it can be revoked) and lasts ``auth.token_ttl``."""
    user_id = path["user_id"]
    request = admin.IssueToken(rid=1, platform=body.platform)
    reply = await context.calls.call(user.KIND, user_id, request, user_id)
    assert isinstance(reply, m.TokenIssued)
    return Token(
        user_id=user_id, platform=body.platform, token=reply.token, expires_at=reply.expires_at
    )


async def revoke_tokens(context: ApiContext, body: None, path: dict[str, str]) -> SessionsClosed:
    """Revoke every token of the user; each of its sessions is closed with 4501
    (``TOKEN_REVOKED``) after a ``kicked`` push."""
    user_id = path["user_id"]
    reply = await context.calls.call(user.KIND, user_id, admin.RevokeTokens(rid=1), user_id)
    assert isinstance(reply, m.Count)
    return SessionsClosed(sessions_closed=reply.count)


async def force_logout(
    context: ApiContext, body: LogoutRequest, path: dict[str, str]
) -> SessionsClosed:
    """Log the user out on every platform or on one, on whichever nodes: each session
    gets a ``kicked`` push and is closed with 4504 (``FORCED_LOGOUT``), and its token
    is revoked."""
    user_id = path["user_id"]
    request = admin.ForceLogout(rid=1, platform=body.platform)
    reply = await context.calls.call(user.KIND, user_id, request, user_id)
    assert isinstance(reply, m.Count)
    return SessionsClosed(sessions_closed=reply.count)


ROUTES = (
    ApiRoute(
        "POST", "/users/{user_id}/tokens", issue_token, "Issue a token", Token, TokenRequest,
        params=USER, status=201, errors=(E.USER_NOT_FOUND,), tag="tokens",
    ),
    ApiRoute(
        "DELETE", "/users/{user_id}/tokens", revoke_tokens, "Revoke a user's tokens",
        SessionsClosed, params=USER, errors=(E.USER_NOT_FOUND,), tag="tokens",
    ),
    ApiRoute(
        "POST", "/users/{user_id}/logout", force_logout, "Force a logout", SessionsClosed,
        LogoutRequest, params=USER, errors=(E.USER_NOT_FOUND,), tag="tokens",
    ),
)  # fmt: skip
