"""Parley's Python SDK: an async (trio) client with typed methods and reconnection."""

from client.errors import ClientClosed, ConnectionLost, ParleyError
from client.events import Disconnected, Reconnected
from client.friends import FriendListCopy
from client.groups import GroupMembersCopy, JoinedGroupsCopy
from client.session import ParleyClient, open_client
from client.tracker import MessageTracker
from protocol.conversation_ids import (
    GroupChat,
    SingleChat,
    group_conversation_id,
    parse_conversation_id,
    single_conversation_id,
)
from protocol.errors import CloseCode, ErrorCode
from protocol.platforms import Platform

__all__ = [
    "ClientClosed",
    "CloseCode",
    "ConnectionLost",
    "Disconnected",
    "ErrorCode",
    "FriendListCopy",
    "GroupChat",
    "GroupMembersCopy",
    "JoinedGroupsCopy",
    "MessageTracker",
    "ParleyClient",
    "ParleyError",
    "Platform",
    "Reconnected",
    "SingleChat",
    "group_conversation_id",
    "open_client",
    "parse_conversation_id",
    "single_conversation_id",
]
