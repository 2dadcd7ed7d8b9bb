"""Typed error codes and WebSocket close codes of the Parley protocol.

Error codes travel in :class:`protocol.messages.Error` replies. Their range
tells a client who is at fault and what to do:

==========  ===================================================================
range       meaning
==========  ===================================================================
1000-1999   the request itself is wrong (frame, command, fields, session state)
2000-2999   accounts, authentication and tokens
3000-3999   relations: friends and blacklist
4000-4999   groups
5000-5999   messages and conversations
6000-6999   the app's own rules (its server refused the action, see docs/WEBHOOKS.md)
9000-9999   the server could not serve a valid request; retrying later may work
==========  ===================================================================

Close codes end a session. 1000-1015 are the standard RFC 6455 codes. Parley's
own codes are split so a client can decide mechanically whether to reconnect:
4000-4499 are transient (reconnect with back-off, resume with the token);
4500-4999 are terminal (do not reconnect without the user's action).
"""

from __future__ import annotations

import enum


class ErrorCode(enum.IntEnum):
    """Numeric error codes carried in ``Error.code``."""

    # 1000-1999: the request is wrong.
    BAD_FRAME = 1000
    UNKNOWN_COMMAND = 1001
    INVALID_FIELD = 1002
    TOO_MANY_PENDING = 1003
    NOT_AUTHENTICATED = 1004
    ALREADY_AUTHENTICATED = 1005

    # 2000-2999: accounts and authentication.
    USER_EXISTS = 2000
    BAD_CREDENTIALS = 2001
    TOKEN_INVALID = 2002
    TOKEN_EXPIRED = 2003
    TOKEN_REVOKED = 2004
    RATE_LIMITED = 2005
    USER_NOT_FOUND = 2006

    # 3000-3999: relations.
    CANNOT_ADD_SELF = 3000
    ALREADY_FRIENDS = 3001
    BLOCKED_BY_PEER = 3002
    PEER_BLOCKED = 3003
    NO_SUCH_APPLICATION = 3004
    APPLICATION_HANDLED = 3005
    NOT_FRIENDS = 3006
    ALREADY_BLOCKED = 3007
    NOT_BLOCKED = 3008

    # 4000-4999: groups.
    GROUP_NOT_FOUND = 4000
    GROUP_EXISTS = 4001
    GROUP_DISMISSED = 4002
    NOT_GROUP_MEMBER = 4003
    ALREADY_MEMBER = 4004
    PERMISSION_DENIED = 4005
    GROUP_FULL = 4006
    OWNER_CANNOT_QUIT = 4007
    JOIN_BY_INVITE_ONLY = 4008
    GROUP_APPLICATION_NOT_FOUND = 4009
    GROUP_APPLICATION_HANDLED = 4010
    MEMBER_MUTED = 4011
    GROUP_MUTED = 4012

    # 5000-5999: messages and conversations.
    NO_SUCH_CONVERSATION = 5000
    NO_SUCH_MESSAGE = 5001
    CONTENT_TOO_LARGE = 5002
    CONTENT_NOT_ALLOWED = 5003
    REVOKE_TIME_EXPIRED = 5004
    REVOKE_NOT_ALLOWED = 5005
    ALREADY_REVOKED = 5006
    BAD_RECIPIENT = 5007

    # 6000-6999: the app's rules (webhooks).
    REFUSED_BY_APP = 6000

    # 9000-9999: the server failed.
    INTERNAL = 9000
    UNAVAILABLE = 9001
    CALLBACK_FAILED = 9002

    @property
    def retryable(self) -> bool:
        """Whether sending the same request again later may succeed."""
        return self >= 9000 or self in (ErrorCode.TOO_MANY_PENDING, ErrorCode.RATE_LIMITED)


class CloseCode(enum.IntEnum):
    """WebSocket close codes sent by the server."""

    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011

    # 4000-4499: transient, the client should reconnect.
    AUTH_TIMEOUT = 4000
    HEARTBEAT_TIMEOUT = 4001
    SLOW_CONSUMER = 4002
    FLOODING = 4003

    # 4500-4999: terminal, the client must not reconnect on its own.
    KICKED = 4500
    TOKEN_REVOKED = 4501
    LOGGED_OUT = 4502
    UNSUPPORTED_PROTOCOL = 4503
    """Sent right after accepting an upgrade that offered no protocol version this server
    speaks, so that a browser's page can read why (PROTOCOL.md 1.2)."""
    FORCED_LOGOUT = 4504
    """Ended by the server API (an app backend's force logout)."""

    @property
    def should_reconnect(self) -> bool:
        """Whether a client should reconnect (with back-off) after this close."""
        return self not in _TERMINAL


_TERMINAL = frozenset(
    {
        CloseCode.KICKED,
        CloseCode.TOKEN_REVOKED,
        CloseCode.LOGGED_OUT,
        CloseCode.UNSUPPORTED_PROTOCOL,
        CloseCode.FORCED_LOGOUT,
        CloseCode.UNSUPPORTED_DATA,
    }
)


def should_reconnect(code: int | None) -> bool:
    """Reconnect decision for any close code, including ones this version does not know."""
    if code is None:
        return True
    if 4500 <= code <= 4999:
        return False
    try:
        return CloseCode(code).should_reconnect
    except ValueError:
        return True


class ProtocolError(Exception):
    """A request that cannot be served, with the error code to send back."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        rid: int = 0,
        *,
        app_code: int = 0,
        app_message: str = "",
        retry_after_ms: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.rid = rid
        self.app_code = app_code
        """``REFUSED_BY_APP``: the code the app's server gave with its refusal."""
        self.app_message = app_message
        """``REFUSED_BY_APP``: the message the app's server gave with its refusal."""
        self.retry_after_ms = retry_after_ms
        """For ``RATE_LIMITED``: when the request may pass again (the reply's hint)."""
