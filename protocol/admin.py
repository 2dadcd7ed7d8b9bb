"""Commands of the server API (``api/``) for the user actor: never accepted from a
WebSocket client (they are not in ``ClientMessage``), only made by the node's HTTP
listener and forwarded between nodes like any command (``AdminRequest``).

Each is about the user whose actor runs it (the entity id it is routed to), and is
answered with a reply of the wire protocol: ``registered``, ``token_issued`` or
``count``."""

from __future__ import annotations

from protocol.base import Ex, Nickname, Password, PlatformId, Request, Url


class CreateUser(Request, frozen=True, tag="admin_create_user"):
    """Create the account (answered with ``registered``); ``USER_EXISTS`` if taken.
    Without a password the user can sign in only with tokens issued by the API."""

    password: Password | None = None
    nickname: Nickname = ""
    face_url: Url = ""
    ex: Ex = ""


class IssueToken(Request, frozen=True, tag="admin_issue_token"):
    """A token for ``token_login`` on ``platform``, recorded as one from ``login`` is;
    answered with ``token_issued``."""

    platform: PlatformId


class RevokeTokens(Request, frozen=True, tag="admin_revoke_tokens"):
    """Revoke every token of the user and close each of its sessions with
    ``TOKEN_REVOKED`` (4501); answered with ``count`` (sessions closed)."""


class ForceLogout(Request, frozen=True, tag="admin_force_logout"):
    """End the user's sessions on ``platform`` (every platform if omitted) with
    ``FORCED_LOGOUT`` (4503) and revoke their tokens; answered with ``count``."""

    platform: PlatformId | None = None


AdminRequest = CreateUser | IssueToken | RevokeTokens | ForceLogout
