"""Chat messages, content types, delivery, read state, revoke, and conversations.

Conversation ids are formed as OpenIM forms them: ``si_<a>_<b>`` for single
chat (the two user ids sorted) and ``sg_<group id>`` for group chat; they are
built and read by ``protocol.conversation_ids`` alone. Every stored message has
a per-conversation ``seq`` (1, 2, 3, ... with no gaps).
"""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from protocol.base import Ex, GroupId, Limit, Push, Reply, Request, Url, UserId
from protocol.conversation_ids import ConversationId

ClientMsgId = Annotated[str, Meta(min_length=1, max_length=64)]
Seq = Annotated[int, Meta(ge=0, le=2**53)]
Text = Annotated[str, Meta(max_length=10_000)]
Name = Annotated[str, Meta(max_length=256)]
Size = Annotated[int, Meta(ge=0, le=2**53)]
Pixels = Annotated[int, Meta(ge=0, le=100_000)]
Seconds = Annotated[int, Meta(ge=0, le=86_400)]

SINGLE_CHAT = 1
GROUP_CHAT = 3


class ContentType(enum.IntEnum):
    """OpenIM's numbers."""

    TEXT = 101
    PICTURE = 102
    VOICE = 103
    VIDEO = 104
    FILE = 105
    MENTION = 106
    CARD = 108
    LOCATION = 109
    CUSTOM = 110
    REVOKED = 111
    TYPING = 113
    QUOTE = 114


# Content: what a message says, tagged by its content type number in ``type``.


class Content(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    pass


class TextContent(Content, frozen=True, tag=101):
    text: Annotated[str, Meta(min_length=1, max_length=10_000)]


class PictureContent(Content, frozen=True, tag=102):
    url: Url
    width: Pixels
    height: Pixels
    size: Size
    thumbnail_url: Url = ""


class VoiceContent(Content, frozen=True, tag=103):
    url: Url
    duration: Seconds
    size: Size


class VideoContent(Content, frozen=True, tag=104):
    url: Url
    duration: Seconds
    width: Pixels
    height: Pixels
    size: Size
    snapshot_url: Url = ""


class FileContent(Content, frozen=True, tag=105):
    url: Url
    name: Annotated[str, Meta(min_length=1, max_length=256)]
    size: Size


class MentionContent(Content, frozen=True, tag=106):
    """@-mention text. ``at_all`` (everyone in the group) is for group owners and admins."""

    text: Annotated[str, Meta(min_length=1, max_length=10_000)]
    user_ids: Annotated[list[UserId], Meta(max_length=100)] = []
    at_all: bool = False


class CardContent(Content, frozen=True, tag=108):
    """A contact card: another user's id, with what to show for them."""

    user_id: UserId
    nickname: Annotated[str, Meta(max_length=64)] = ""
    face_url: Url = ""


class LocationContent(Content, frozen=True, tag=109):
    latitude: Annotated[float, Meta(ge=-90, le=90)]
    longitude: Annotated[float, Meta(ge=-180, le=180)]
    description: Name = ""


class CustomContent(Content, frozen=True, tag=110):
    """An opaque payload for the application."""

    data: Annotated[bytes, Meta(max_length=65_536)]
    description: Name = ""


class RevokedContent(Content, frozen=True, tag=111):
    """Only the server writes this. It replaces a revoked message's content, and a
    message of this type is appended to announce the revoke (OpenIM 2101)."""

    revoked_seq: int
    revoker_user_id: str
    revoke_time: int
    original_content_type: int


class TypingContent(Content, frozen=True, tag=113):
    """Pushed to online devices only; never stored and gets no seq."""

    text: Name = ""


class QuoteContent(Content, frozen=True, tag=114):
    """A reply to an earlier message of the same conversation."""

    text: Annotated[str, Meta(min_length=1, max_length=10_000)]
    quoted_seq: Annotated[int, Meta(ge=1, le=2**53)]


MessageContent = (
    TextContent
    | PictureContent
    | VoiceContent
    | VideoContent
    | FileContent
    | MentionContent
    | CardContent
    | LocationContent
    | CustomContent
    | RevokedContent
    | TypingContent
    | QuoteContent
)


class ChatMessage(msgspec.Struct, frozen=True, kw_only=True):
    conversation_id: str
    session_type: int
    """1 single chat, 3 group chat."""
    seq: int
    server_msg_id: str
    client_msg_id: str
    send_id: str
    recv_id: str
    """The peer user id (single chat) or the group id (group chat)."""
    send_time: int
    content: MessageContent
    ex: str = ""


class ConversationInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A conversation's per-user settings: what the conversation list syncs."""

    conversation_id: str
    session_type: int
    peer_user_id: str = ""
    group_id: str = ""
    pinned: bool = False
    recv_opt: int = 0
    """0 receive and notify; 1 do not receive: others' new messages, revoke notices and
    typing are not pushed to this user (still stored and pulled by max seq); 2 receive
    without notifying: pushed as 0, the client shows no notification."""
    draft_text: str = ""
    draft_time: int = 0
    ex: str = ""
    hidden: bool = False
    """Hidden from the list until a message with a seq above ``hidden_at_seq`` arrives."""
    hidden_at_seq: int = 0


class ConversationView(msgspec.Struct, frozen=True, kw_only=True):
    """A conversation as the conversation list shows it."""

    info: ConversationInfo
    max_seq: int
    has_read_seq: int
    min_seq: int
    """Messages at or below this seq are cleared from this user's view."""
    unread_count: int
    latest_message: ChatMessage | None = None


class ConversationSeqs(msgspec.Struct, frozen=True, kw_only=True):
    conversation_id: str
    max_seq: int
    has_read_seq: int
    min_seq: int


# Requests


class SendMessage(Request, frozen=True, tag="send_message"):
    """Send to a user (``to_user_id``) or a group (``group_id``): exactly one of them.

    Answered with ``message_sent`` once the message is stored. Sending again with
    the same ``client_msg_id`` returns the first result and stores nothing new."""

    client_msg_id: ClientMsgId
    content: MessageContent
    to_user_id: UserId | None = None
    group_id: GroupId | None = None
    ex: Ex = ""


class GetMaxSeqs(Request, frozen=True, tag="get_max_seqs"):
    """Max, has-read and min seq of every conversation of mine; answered with ``max_seqs``."""


class PullMessages(Request, frozen=True, tag="pull_messages"):
    """Messages with ``from_seq`` <= seq <= ``to_seq`` (0: up to the newest), oldest first
    (``descending`` for newest first), at most ``limit``; answered with ``messages``."""

    conversation_id: ConversationId
    from_seq: Annotated[int, Meta(ge=1, le=2**53)] = 1
    to_seq: Seq = 0
    descending: bool = False
    limit: Limit = 50


class GetHistory(Request, frozen=True, tag="get_history"):
    """Page backwards: messages before ``before_seq`` (0: the newest) or sent before
    ``before_time`` (ms), newest first; answered with ``messages``."""

    conversation_id: ConversationId
    before_seq: Seq = 0
    before_time: Annotated[int, Meta(ge=0)] = 0
    limit: Limit = 50


class MarkRead(Request, frozen=True, tag="mark_read"):
    """Everything up to ``seq`` (0: the newest) is read; answered with ``ok``."""

    conversation_id: ConversationId
    seq: Seq = 0


class RevokeMessage(Request, frozen=True, tag="revoke_message"):
    conversation_id: ConversationId
    seq: Annotated[int, Meta(ge=1, le=2**53)]


class DeleteMessages(Request, frozen=True, tag="delete_messages"):
    """Remove messages from my own view only."""

    conversation_id: ConversationId
    seqs: Annotated[list[Annotated[int, Meta(ge=1, le=2**53)]], Meta(min_length=1, max_length=100)]


class ClearConversation(Request, frozen=True, tag="clear_conversation"):
    """My view of the conversation starts after its current max seq."""

    conversation_id: ConversationId


class GetConversations(Request, frozen=True, tag="get_conversations"):
    """My conversation list: pinned first, then by latest message; answered with
    ``conversations``."""

    offset: Annotated[int, Meta(ge=0, le=2**31)] = 0
    limit: Annotated[int, Meta(ge=1, le=500)] = 100


class SetConversations(Request, frozen=True, tag="set_conversations"):
    """Change settings of one or more conversations; omitted fields keep their value."""

    conversation_ids: Annotated[list[ConversationId], Meta(min_length=1, max_length=100)]
    pinned: bool | None = None
    recv_opt: Literal[0, 1, 2] | None = None
    draft_text: Text | None = None
    ex: Ex | None = None


class HideConversation(Request, frozen=True, tag="hide_conversation"):
    """Remove from my list until a newer message arrives."""

    conversation_id: ConversationId


class SyncConversations(Request, frozen=True, tag="sync_conversations"):
    """Changes to my conversation settings since (version_id, version)."""

    version_id: Annotated[str, Meta(max_length=64)] = ""
    version: Seq = 0


# Replies


class MessageSent(Reply, frozen=True, tag="message_sent"):
    conversation_id: str
    seq: int
    """0 for typing, which is not stored."""
    server_msg_id: str
    client_msg_id: str
    send_time: int


class MaxSeqs(Reply, frozen=True, tag="max_seqs"):
    conversations: list[ConversationSeqs]


class Messages(Reply, frozen=True, tag="messages"):
    items: list[ChatMessage]
    is_end: bool
    """No more messages in the direction asked."""


class Conversations(Reply, frozen=True, tag="conversations"):
    items: list[ConversationView]
    total: int


class ConversationSync(Reply, frozen=True, tag="conversation_sync"):
    """Same rules as ``friend_sync``, keyed by ``conversation_id``."""

    kind: Literal["equal", "incremental", "full"]
    version_id: str
    version: int
    inserts: list[ConversationInfo] = []
    updates: list[ConversationInfo] = []
    deletes: list[str] = []


# Pushes


class NewMessage(Push, frozen=True, tag="message"):
    """A stored message, pushed to every online device of the conversation's members
    (the sending device gets ``message_sent`` instead)."""

    message: ChatMessage


class Typing(Push, frozen=True, tag="typing"):
    conversation_id: str
    from_user_id: str
    text: str


class ReadReceipt(Push, frozen=True, tag="read_receipt"):
    """OpenIM 2200: the peer of a single chat has read up to ``has_read_seq``."""

    conversation_id: str
    reader_user_id: str
    has_read_seq: int


class ReadStateChanged(Push, frozen=True, tag="read_state"):
    """Another of my devices marked a conversation read (or cleared it)."""

    conversation_id: str
    has_read_seq: int
    min_seq: int


class ConversationChanged(Push, frozen=True, tag="conversation_changed"):
    """OpenIM 1300: another of my devices changed these conversations' settings."""

    conversations: list[ConversationInfo]
