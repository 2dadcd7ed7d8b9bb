"""Errors of the HTTP API: the wire protocol's error codes (``protocol.errors``) in a
JSON body ``{"code", "name", "message"}``, with the HTTP status that fits each."""

from __future__ import annotations

import msgspec
from starlette.responses import Response

from protocol.errors import ErrorCode, ProtocolError

E = ErrorCode
STATUS: dict[ErrorCode, int] = {
    E.BAD_FRAME: 400,
    E.UNKNOWN_COMMAND: 404,
    E.INVALID_FIELD: 422,
    E.TOO_MANY_PENDING: 429,
    E.NOT_AUTHENTICATED: 401,
    E.ALREADY_AUTHENTICATED: 409,
    E.USER_EXISTS: 409,
    E.BAD_CREDENTIALS: 401,
    E.TOKEN_INVALID: 401,
    E.TOKEN_EXPIRED: 401,
    E.TOKEN_REVOKED: 401,
    E.RATE_LIMITED: 429,
    E.USER_NOT_FOUND: 404,
    E.NO_SUCH_APPLICATION: 404,
    E.GROUP_NOT_FOUND: 404,
    E.GROUP_DISMISSED: 410,
    E.NOT_GROUP_MEMBER: 403,
    E.PERMISSION_DENIED: 403,
    E.BLOCKED_BY_PEER: 403,
    E.PEER_BLOCKED: 403,
    E.NOT_FRIENDS: 403,
    E.MEMBER_MUTED: 403,
    E.GROUP_MUTED: 403,
    E.JOIN_BY_INVITE_ONLY: 403,
    E.GROUP_APPLICATION_NOT_FOUND: 404,
    E.NO_SUCH_CONVERSATION: 404,
    E.NO_SUCH_MESSAGE: 404,
    E.CONTENT_TOO_LARGE: 413,
    E.CONTENT_NOT_ALLOWED: 422,
    E.BAD_RECIPIENT: 422,
    E.INTERNAL: 500,
    E.UNAVAILABLE: 503,
}
"""HTTP status of each error code; the others (conflicts with the current state:
``ALREADY_MEMBER``, ``GROUP_FULL``, ...) are 409."""


class ApiError(msgspec.Struct, frozen=True):
    """The body of every error answer. Nothing was changed."""

    code: int
    """The wire protocol's error code (docs/PROTOCOL.md), e.g. 2006."""
    name: str
    """Its name, e.g. ``USER_NOT_FOUND``."""
    message: str
    """What was wrong, for people."""


def status_of(code: ErrorCode) -> int:
    return STATUS.get(code, 409)


def error_response(
    code: ErrorCode, message: str, headers: dict[str, str] | None = None
) -> Response:
    body = msgspec.json.encode(ApiError(int(code), code.name, message))
    return Response(body, status_of(code), headers, media_type="application/json")


def refusal(exc: ProtocolError) -> Response:
    return error_response(exc.code, exc.message)
