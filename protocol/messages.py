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
    GroupId,
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
from protocol.conversation_ids import (
    ConversationId,
    GroupChat,
    SingleChat,
    group_conversation_id,
    parse_conversation_id,
    single_conversation_id,
)
from protocol.groups import (
    ApplyJoinGroup,
    CreateGroup,
    DismissGroup,
    GetGroupApplications,
    GetGroupMemberIds,
    GetGroupMembers,
    GetGroupMembersById,
    GetGroupsInfo,
    GetJoinedGroupIds,
    GetJoinedGroups,
    GetMyGroupApplications,
    GroupApplication,
    GroupApplications,
    GroupInfo,
    GroupMember,
    GroupMemberChanges,
    GroupMemberIds,
    GroupMembers,
    GroupMemberSync,
    GroupMemberSyncs,
    Groups,
    GroupVersion,
    InviteResult,
    InviteToGroup,
    JoinedGroup,
    JoinedGroupIds,
    JoinedGroups,
    JoinedGroupSync,
    JoinGroupResult,
    JoinPolicy,
    KickGroupMembers,
    MuteGroup,
    MuteGroupMember,
    QuitGroup,
    RespondGroupApplication,
    SetGroupInfo,
    SetGroupMemberInfo,
    SetGroupMemberRole,
    SyncGroupMembers,
    SyncGroupMembersBatch,
    SyncJoinedGroups,
    TransferGroupOwner,
    UnmuteGroup,
    UnmuteGroupMember,
)
from protocol.messaging import (
    GROUP_CHAT,
    SINGLE_CHAT,
    CardContent,
    ChatMessage,
    ClearConversation,
    Content,
    ContentType,
    ConversationChanged,
    ConversationInfo,
    Conversations,
    ConversationSeqs,
    ConversationSync,
    ConversationView,
    CustomContent,
    DeleteMessages,
    FileContent,
    GetConversations,
    GetHistory,
    GetMaxSeqs,
    HideConversation,
    LocationContent,
    MarkRead,
    MaxSeqs,
    MentionContent,
    MessageContent,
    Messages,
    MessageSent,
    NewMessage,
    PictureContent,
    PullMessages,
    QuoteContent,
    ReadReceipt,
    ReadStateChanged,
    RevokedContent,
    RevokeMessage,
    SendMessage,
    SetConversations,
    SyncConversations,
    TextContent,
    Typing,
    TypingContent,
    VideoContent,
    VoiceContent,
)
from protocol.notifications import (
    BlackDeletedDetail,
    BlackDetail,
    Detail,
    FriendApplicationDetail,
    FriendDeletedDetail,
    FriendDetail,
    GroupApplicationDetail,
    GroupDetail,
    GroupMembersDetail,
    GroupOwnerDetail,
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
    | SendMessage
    | GetMaxSeqs
    | PullMessages
    | GetHistory
    | MarkRead
    | RevokeMessage
    | DeleteMessages
    | ClearConversation
    | GetConversations
    | SetConversations
    | HideConversation
    | SyncConversations
    | CreateGroup
    | SetGroupInfo
    | DismissGroup
    | ApplyJoinGroup
    | RespondGroupApplication
    | InviteToGroup
    | KickGroupMembers
    | QuitGroup
    | TransferGroupOwner
    | SetGroupMemberRole
    | SetGroupMemberInfo
    | MuteGroupMember
    | UnmuteGroupMember
    | MuteGroup
    | UnmuteGroup
    | GetGroupMembers
    | GetGroupMembersById
    | SyncGroupMembers
    | GetGroupMemberIds
    | GetGroupsInfo
    | GetJoinedGroups
    | SyncJoinedGroups
    | GetJoinedGroupIds
    | SyncGroupMembersBatch
    | GetMyGroupApplications
    | GetGroupApplications
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
    | MessageSent
    | MaxSeqs
    | Messages
    | Conversations
    | ConversationSync
    | NewMessage
    | Typing
    | ReadReceipt
    | ReadStateChanged
    | ConversationChanged
    | Groups
    | JoinGroupResult
    | InviteResult
    | GroupMembers
    | GroupMemberSync
    | GroupMemberSyncs
    | GroupMemberIds
    | JoinedGroups
    | JoinedGroupSync
    | JoinedGroupIds
    | GroupApplications
)

__all__ = [
    "GROUP_CHAT",
    "MAX_BATCH",
    "MAX_PAGE",
    "PROTOCOL_VERSION",
    "SINGLE_CHAT",
    "SUPPORTED_SUBPROTOCOLS",
    "UNAUTHENTICATED_COMMANDS",
    "AddBlack",
    "ApplyFriend",
    "ApplyJoinGroup",
    "BlackDeletedDetail",
    "BlackDetail",
    "BlackInfo",
    "Blacks",
    "CardContent",
    "ChangePassword",
    "ChatMessage",
    "CheckFriend",
    "ClearConversation",
    "ClientMessage",
    "Content",
    "ContentType",
    "ConversationChanged",
    "ConversationId",
    "ConversationInfo",
    "ConversationSeqs",
    "ConversationSync",
    "ConversationView",
    "Conversations",
    "Count",
    "CountUnhandledFriendApplications",
    "CreateGroup",
    "CustomContent",
    "DeleteFriend",
    "DeleteMessages",
    "Detail",
    "DismissGroup",
    "Error",
    "Ex",
    "FileContent",
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
    "GetConversations",
    "GetFriendApplications",
    "GetFriendIds",
    "GetFriends",
    "GetFriendsById",
    "GetGroupApplications",
    "GetGroupMemberIds",
    "GetGroupMembers",
    "GetGroupMembersById",
    "GetGroupsInfo",
    "GetHistory",
    "GetJoinedGroupIds",
    "GetJoinedGroups",
    "GetMaxSeqs",
    "GetMyGroupApplications",
    "GetOnlineStatus",
    "GetSelf",
    "GetUsers",
    "GroupApplication",
    "GroupApplicationDetail",
    "GroupApplications",
    "GroupChat",
    "GroupDetail",
    "GroupId",
    "GroupInfo",
    "GroupMember",
    "GroupMemberChanges",
    "GroupMemberIds",
    "GroupMemberSync",
    "GroupMemberSyncs",
    "GroupMembers",
    "GroupMembersDetail",
    "GroupOwnerDetail",
    "GroupVersion",
    "Groups",
    "HideConversation",
    "InviteResult",
    "InviteToGroup",
    "JoinGroupResult",
    "JoinPolicy",
    "JoinedGroup",
    "JoinedGroupIds",
    "JoinedGroupSync",
    "JoinedGroups",
    "KickGroupMembers",
    "Kicked",
    "Limit",
    "LocationContent",
    "Login",
    "LoginOk",
    "Logout",
    "MarkRead",
    "MaxSeqs",
    "MentionContent",
    "MessageContent",
    "MessageSent",
    "Messages",
    "MuteGroup",
    "MuteGroupMember",
    "NewMessage",
    "Nickname",
    "Notification",
    "NotificationDetail",
    "NotificationType",
    "Notifications",
    "Offset",
    "Ok",
    "OnlineStatus",
    "Password",
    "PictureContent",
    "Ping",
    "PlatformId",
    "Pong",
    "Profile",
    "PublicUser",
    "PullMessages",
    "PullNotifications",
    "Push",
    "QuitGroup",
    "QuoteContent",
    "ReadReceipt",
    "ReadStateChanged",
    "Register",
    "Registered",
    "RemoveBlack",
    "Reply",
    "Request",
    "RequestId",
    "RespondFriendApplication",
    "RespondGroupApplication",
    "RevokeMessage",
    "RevokedContent",
    "SelfUpdated",
    "SendMessage",
    "ServerMessage",
    "SetConversations",
    "SetGroupInfo",
    "SetGroupMemberInfo",
    "SetGroupMemberRole",
    "SetProfile",
    "SingleChat",
    "SyncConversations",
    "SyncFriends",
    "SyncGroupMembers",
    "SyncGroupMembersBatch",
    "SyncJoinedGroups",
    "TextContent",
    "Token",
    "TokenIssued",
    "TokenLogin",
    "TransferGroupOwner",
    "Typing",
    "TypingContent",
    "UnmuteGroup",
    "UnmuteGroupMember",
    "UpdateFriend",
    "Url",
    "UserId",
    "UserIdBatch",
    "UserInfoDetail",
    "UserOnline",
    "UserProfile",
    "Users",
    "VideoContent",
    "VoiceContent",
    "group_conversation_id",
    "parse_conversation_id",
    "single_conversation_id",
]
