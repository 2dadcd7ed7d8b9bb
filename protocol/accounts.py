"""Accounts, sign-in, tokens, profiles and online status."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from protocol.base import (
    Ex,
    Nickname,
    Password,
    PlatformId,
    Push,
    Reply,
    Request,
    Token,
    Url,
    UserId,
    UserIdBatch,
)

# Records


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


# Requests


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


# Replies


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


# Pushes


class Kicked(Push, frozen=True, tag="kicked"):
    """The session is about to be closed by the server; ``close_code`` follows."""

    close_code: int
    reason: str


class SelfUpdated(Push, frozen=True, tag="self_updated"):
    """The user's profile changed on another of their sessions."""

    profile: UserProfile
