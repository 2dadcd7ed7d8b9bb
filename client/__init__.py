"""Parley's Python SDK: an async (trio) client with typed methods and reconnection."""

from client.errors import ClientClosed, ConnectionLost, ParleyError
from client.events import Disconnected, Reconnected
from client.friends import FriendListCopy
from client.groups import GroupMembersCopy, JoinedGroupsCopy
from client.session import ParleyClient, open_client
from client.tracker import MessageTracker
from protocol.errors import CloseCode, ErrorCode
from protocol.platforms import Platform

__all__ = [
    "ClientClosed",
    "CloseCode",
    "ConnectionLost",
    "Disconnected",
    "ErrorCode",
    "FriendListCopy",
    "GroupMembersCopy",
    "JoinedGroupsCopy",
    "MessageTracker",
    "ParleyClient",
    "ParleyError",
    "Platform",
    "Reconnected",
    "open_client",
]
