"""The JSON bodies of the server API, as msgspec Structs: the bodies it accepts are
decoded and validated against them (unknown fields are refused, so a misspelt field
is an error rather than ignored), and the OpenAPI document's schemas are generated
from them. Records shared with the wire protocol (profiles, group info, message
content) are the protocol's own Structs."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from protocol import messages as m
from protocol.base import Ex, GroupId, Nickname, Password, PlatformId, Url, UserId
from protocol.groups import GroupName, GroupText, JoinPolicy, UserIdList
from protocol.messaging import ClientMsgId
from protocol.relations import RequestMessage

MAX_IMPORT = 1000
"""Most users created by one import, and most recipients of one batch send."""
Recipients = Annotated[list[UserId], Meta(min_length=1, max_length=MAX_IMPORT)]


class Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A request body."""


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    """A response body."""


class ItemFailure(Answer, frozen=True):
    """One item of a batch that was refused (the others went ahead)."""

    id: str
    """The user id the item was about."""
    code: int
    name: str
    message: str


# -- users -----------------------------------------------------------------------


class NewUser(Body, frozen=True):
    user_id: UserId
    password: Password | None = None
    """Without one the user signs in only with tokens issued by the API."""
    nickname: Nickname = ""
    face_url: Url = ""
    ex: Ex = ""


class UserImport(Body, frozen=True):
    users: Annotated[list[NewUser], Meta(min_length=1, max_length=MAX_IMPORT)]


class ImportResult(Answer, frozen=True):
    created: list[str]
    failed: list[ItemFailure]


class ProfileChange(Body, frozen=True):
    """Fields left out keep their value."""

    nickname: Nickname | None = None
    face_url: Url | None = None
    ex: Ex | None = None


class UserIds(Body, frozen=True):
    user_ids: m.UserIdBatch


class OnlineStatuses(Answer, frozen=True):
    statuses: list[m.UserOnline]
    """Per user, the platforms with a live session (empty: offline)."""


# -- tokens and sessions ------------------------------------------------------------


class TokenRequest(Body, frozen=True):
    platform: PlatformId


class Token(Answer, frozen=True):
    user_id: str
    platform: int
    token: str
    """For ``token_login`` on the WebSocket (docs/PROTOCOL.md)."""
    expires_at: int
    """Milliseconds since the Unix epoch."""


class LogoutRequest(Body, frozen=True):
    platform: PlatformId | None = None
    """Only the sessions on this platform; every session if left out."""


class SessionsClosed(Answer, frozen=True):
    sessions_closed: int


class SessionInfo(Answer, frozen=True):
    session_id: str
    platform: int
    node_id: str
    """The node that holds the session."""
    since: int
    """When it signed in, milliseconds since the Unix epoch."""


class Sessions(Answer, frozen=True):
    user_id: str
    sessions: list[SessionInfo]


# -- messages ------------------------------------------------------------------------


class OutgoingMessage(Body, frozen=True):
    """Exactly one of ``to_user_id`` and ``group_id``."""

    send_id: UserId
    """The sender: any user, e.g. a system or notification account made for the app."""
    content: m.MessageContent
    to_user_id: UserId | None = None
    group_id: GroupId | None = None
    client_msg_id: ClientMsgId | None = None
    """Give one to make a retry safe: a send with the same id in the same conversation
    returns the first result and stores nothing new. Left out, the server makes one."""
    ex: Ex = ""


class Sent(Answer, frozen=True):
    conversation_id: str
    seq: int
    server_msg_id: str
    client_msg_id: str
    send_time: int


class BatchMessage(Body, frozen=True):
    """One message to each of many users (a single chat with each)."""

    send_id: UserId
    to_user_ids: Recipients
    content: m.MessageContent
    client_msg_id: ClientMsgId | None = None
    """The same id for every recipient (each is its own conversation)."""
    ex: Ex = ""


class BatchSent(Answer, frozen=True):
    to_user_id: str
    conversation_id: str
    seq: int
    server_msg_id: str


class BatchResult(Answer, frozen=True):
    client_msg_id: str
    sent: list[BatchSent]
    failed: list[ItemFailure]


# -- groups --------------------------------------------------------------------------


class NewGroup(Body, frozen=True):
    owner_user_id: UserId
    name: GroupName
    group_id: GroupId | None = None
    """Left out, the server makes one."""
    face_url: Url = ""
    intro: GroupText = ""
    notification: GroupText = ""
    ex: Ex = ""
    join_policy: JoinPolicy = "approval"
    member_user_ids: UserIdList = []
    admin_user_ids: UserIdList = []


class MembersToAdd(Body, frozen=True):
    user_ids: m.UserIdBatch


class MembersToRemove(Body, frozen=True):
    user_ids: m.UserIdBatch
    reason: RequestMessage = ""


class MembersAdded(Answer, frozen=True):
    group_id: str
    joined: list[str]


class Done(Answer, frozen=True):
    ok: bool = True
