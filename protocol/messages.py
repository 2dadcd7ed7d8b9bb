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
from protocol.notifications import (
    BlackDeletedDetail,
    BlackDetail,
    Detail,
    FriendApplicationDetail,
    FriendDeletedDetail,
    FriendDetail,
    Notification,
    NotificationDetail,
    Notifications,
    NotificationType,
    PullNotifications,
    UserInfoDetail,
)
from protocol.relations import (
    AddBlack,
    ApplyFriend,
    BlackInfo,
    Blacks,
    CheckFriend,
    Count,
    CountUnhandledFriendApplications,
    DeleteFriend,
    FriendApplication,
    FriendApplications,
    FriendIds,
    FriendInfo,
    Friends,
    FriendStatus,
    FriendSync,
    GetBlacks,
    GetFriendApplications,
    GetFriendIds,
    GetFriends,
    GetFriendsById,
    RemoveBlack,
    RespondFriendApplication,
    SyncFriends,
    UpdateFriend,
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
    | ApplyFriend
    | RespondFriendApplication
    | GetFriendApplications
    | CountUnhandledFriendApplications
    | DeleteFriend
    | UpdateFriend
    | GetFriends
    | GetFriendsById
    | CheckFriend
    | SyncFriends
    | GetFriendIds
    | AddBlack
    | RemoveBlack
    | GetBlacks
    | PullNotifications
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
    | FriendApplications
    | Count
    | Friends
    | FriendStatus
    | FriendSync
    | FriendIds
    | Blacks
    | Notifications
    | Notification
)

__all__ = [
    "MAX_BATCH",
    "MAX_PAGE",
    "PROTOCOL_VERSION",
    "SUPPORTED_SUBPROTOCOLS",
    "UNAUTHENTICATED_COMMANDS",
    "AddBlack",
    "ApplyFriend",
    "BlackDeletedDetail",
    "BlackDetail",
    "BlackInfo",
    "Blacks",
    "ChangePassword",
    "CheckFriend",
    "ClientMessage",
    "Count",
    "CountUnhandledFriendApplications",
    "DeleteFriend",
    "Detail",
    "Error",
    "Ex",
    "FriendApplication",
    "FriendApplicationDetail",
    "FriendApplications",
    "FriendDeletedDetail",
    "FriendDetail",
    "FriendIds",
    "FriendInfo",
    "FriendStatus",
    "FriendSync",
    "Friends",
    "GetBlacks",
    "GetFriendApplications",
    "GetFriendIds",
    "GetFriends",
    "GetFriendsById",
    "GetOnlineStatus",
    "GetSelf",
    "GetUsers",
    "Kicked",
    "Limit",
    "Login",
    "LoginOk",
    "Logout",
    "Nickname",
    "Notification",
    "NotificationDetail",
    "NotificationType",
    "Notifications",
    "Offset",
    "Ok",
    "OnlineStatus",
    "Password",
    "Ping",
    "PlatformId",
    "Pong",
    "Profile",
    "PublicUser",
    "PullNotifications",
    "Push",
    "Register",
    "Registered",
    "RemoveBlack",
    "Reply",
    "Request",
    "RequestId",
    "RespondFriendApplication",
    "SelfUpdated",
    "ServerMessage",
    "SetProfile",
    "SyncFriends",
    "Token",
    "TokenIssued",
    "TokenLogin",
    "UpdateFriend",
    "Url",
    "UserId",
    "UserIdBatch",
    "UserInfoDetail",
    "UserOnline",
    "UserProfile",
    "Users",
]
