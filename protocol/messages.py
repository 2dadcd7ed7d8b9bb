"""Every message of the Parley wire protocol, and the tagged union per direction.

The messages are defined by topic (``protocol.base``, ``protocol.accounts``,
...) and all re-exported here, so ``from protocol import messages as m`` gives
access to every one of them.
"""

from __future__ import annotations

from protocol.accounts import (
    ChangePassword,
    GetOnlineStatus,
    GetSelf,
    GetUsers,
    Kicked,
    Login,
    LoginOk,
    Logout,
    OnlineStatus,
    Profile,
    PublicUser,
    Register,
    Registered,
    SelfUpdated,
    SetProfile,
    TokenIssued,
    TokenLogin,
    UserOnline,
    UserProfile,
    Users,
)
from protocol.base import (
    MAX_BATCH,
    MAX_PAGE,
    PROTOCOL_VERSION,
    SUPPORTED_SUBPROTOCOLS,
    Error,
    Ex,
    Limit,
    Nickname,
    Offset,
    Ok,
    Password,
    Ping,
    PlatformId,
    Pong,
    Push,
    Reply,
    Request,
    RequestId,
    Token,
    Url,
    UserId,
    UserIdBatch,
)

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

__all__ = [
    "MAX_BATCH",
    "MAX_PAGE",
    "PROTOCOL_VERSION",
    "SUPPORTED_SUBPROTOCOLS",
    "UNAUTHENTICATED_COMMANDS",
    "ChangePassword",
    "ClientMessage",
    "Error",
    "Ex",
    "GetOnlineStatus",
    "GetSelf",
    "GetUsers",
    "Kicked",
    "Limit",
    "Login",
    "LoginOk",
    "Logout",
    "Nickname",
    "Offset",
    "Ok",
    "OnlineStatus",
    "Password",
    "Ping",
    "PlatformId",
    "Pong",
    "Profile",
    "PublicUser",
    "Push",
    "Register",
    "Registered",
    "Reply",
    "Request",
    "RequestId",
    "SelfUpdated",
    "ServerMessage",
    "SetProfile",
    "Token",
    "TokenIssued",
    "TokenLogin",
    "Url",
    "UserId",
    "UserIdBatch",
    "UserOnline",
    "UserProfile",
    "Users",
]
