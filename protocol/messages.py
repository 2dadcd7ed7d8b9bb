"""Every message of the Parley wire protocol, as msgspec Structs.

Frames are msgpack maps, one message per binary WebSocket frame. The field
``t`` names the message type (a tagged union per direction). Requests carry a
client-chosen request id ``rid`` (1 .. 2**53) that the server echoes on the one
reply it sends for that request; server pushes carry no ``rid``. Fields a
receiver does not know are ignored, so new optional fields can be added without
a new protocol version.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

PROTOCOL_VERSION = "parley.v1"
SUPPORTED_SUBPROTOCOLS: tuple[str, ...] = (PROTOCOL_VERSION,)

MAX_BATCH = 100
"""Maximum number of ids in one batch request (users, online status)."""

RequestId = Annotated[int, Meta(ge=1, le=2**53)]
UserId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
Password = Annotated[str, Meta(min_length=6, max_length=128)]
Nickname = Annotated[str, Meta(max_length=64)]
Url = Annotated[str, Meta(max_length=1024)]
Ex = Annotated[str, Meta(max_length=4096)]
Token = Annotated[str, Meta(min_length=1, max_length=2048)]
PlatformId = Literal[1, 2, 3, 4, 5, 6, 7, 8, 9, 11]
UserIdBatch = Annotated[list[UserId], Meta(min_length=1, max_length=MAX_BATCH)]


# --------------------------------------------------------------------------
# Shared records
# --------------------------------------------------------------------------


class UserProfile(msgspec.Struct, frozen=True, kw_only=True):
    """A user's own full profile. ``version`` grows on every change."""

    user_id: str
    nickname: str
    face_url: str
    ex: str
    created_at: int
    version: int


class PublicUser(msgspec.Struct, frozen=True, kw_only=True):
    """What any signed-in user may see of another user."""

    user_id: str
    nickname: str
    face_url: str
    ex: str


class UserOnline(msgspec.Struct, frozen=True, kw_only=True):
    """Online platforms of one user; an empty list means offline."""

    user_id: str
    platforms: list[int]


# --------------------------------------------------------------------------
# Client to server: requests
# --------------------------------------------------------------------------


class Request(msgspec.Struct, frozen=True, kw_only=True, tag_field="t"):
    rid: RequestId


class Ping(Request, frozen=True, tag="ping"):
    """Application-level keep-alive; answered with ``pong``. Allowed before login."""


class Register(Request, frozen=True, tag="register"):
    """Create an account. Does not sign the session in; send ``login`` next."""

    user_id: UserId
    password: Password
    nickname: Nickname = ""
    face_url: Url = ""
    ex: Ex = ""


class Login(Request, frozen=True, tag="login"):
    """Sign the session in with a password; answered with ``login_ok``."""

    user_id: UserId
    password: Annotated[str, Meta(max_length=128)]
    platform: PlatformId


class TokenLogin(Request, frozen=True, tag="token_login"):
    """Sign the session in with a token from an earlier ``login_ok``."""

    token: Token


class Logout(Request, frozen=True, tag="logout"):
    """Revoke this session's token and end the session (close code 4502)."""


class ChangePassword(Request, frozen=True, tag="change_password"):
    """Change the password: revokes every token and ends the user's other sessions."""

    old_password: Annotated[str, Meta(max_length=128)]
    new_password: Password


class GetSelf(Request, frozen=True, tag="get_self"):
    """Answered with ``profile``."""


class SetProfile(Request, frozen=True, tag="set_profile"):
    """Change some profile fields; omitted fields keep their value. Answered with ``profile``."""

    nickname: Nickname | None = None
    face_url: Url | None = None
    ex: Ex | None = None


class GetUsers(Request, frozen=True, tag="get_users"):
    """Public profiles of up to 100 users; answered with ``users``."""

    user_ids: UserIdBatch


class GetOnlineStatus(Request, frozen=True, tag="get_online_status"):
    """Online platforms of up to 100 users; answered with ``online_status``."""

    user_ids: UserIdBatch


ClientMessage = (
    Ping
    | Register
    | Login
    | TokenLogin
    | Logout
    | ChangePassword
    | GetSelf
    | SetProfile
    | GetUsers
    | GetOnlineStatus
)

UNAUTHENTICATED_COMMANDS: tuple[type[Request], ...] = (Ping, Register, Login, TokenLogin)
"""Commands a session may send before it has signed in."""


# --------------------------------------------------------------------------
# Server to client: replies (with rid) and pushes (without)
# --------------------------------------------------------------------------


class Reply(msgspec.Struct, frozen=True, kw_only=True, tag_field="t"):
    rid: int


class Error(Reply, frozen=True, tag="error"):
    """The request failed and changed nothing. ``rid`` is 0 when it could not be read."""

    code: int
    name: str
    message: str


class Ok(Reply, frozen=True, tag="ok"):
    """The request succeeded and has nothing else to report."""


class Pong(Reply, frozen=True, tag="pong"):
    server_time: int
    """Server clock, milliseconds since the Unix epoch."""


class Registered(Reply, frozen=True, tag="registered"):
    user_id: str


class LoginOk(Reply, frozen=True, tag="login_ok"):
    user_id: str
    platform: int
    token: str
    expires_at: int
    """Token expiry, milliseconds since the Unix epoch."""
    profile: UserProfile


class TokenIssued(Reply, frozen=True, tag="token_issued"):
    """The new token after a password change; the old ones no longer work."""

    token: str
    expires_at: int


class Profile(Reply, frozen=True, tag="profile"):
    profile: UserProfile


class Users(Reply, frozen=True, tag="users"):
    users: list[PublicUser]
    not_found: list[str]


class OnlineStatus(Reply, frozen=True, tag="online_status"):
    statuses: list[UserOnline]


class Push(msgspec.Struct, frozen=True, kw_only=True, tag_field="t"):
    """A message the server sends on its own initiative."""


class Kicked(Push, frozen=True, tag="kicked"):
    """The session is about to be closed by the server; ``close_code`` follows."""

    close_code: int
    reason: str


class SelfUpdated(Push, frozen=True, tag="self_updated"):
    """The user's profile changed on another of their sessions."""

    profile: UserProfile


ServerMessage = (
    Error
    | Ok
    | Pong
    | Registered
    | LoginOk
    | TokenIssued
    | Profile
    | Users
    | OnlineStatus
    | Kicked
    | SelfUpdated
)
