"""Field types and base classes shared by every message of the wire protocol.

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
"""Maximum number of ids in one batch request."""
MAX_PAGE = 100
"""Maximum page size of a paginated list."""

RequestId = Annotated[int, Meta(ge=1, le=2**53)]
USER_ID_CHARS = "A-Za-z0-9.@-"
"""The characters a user id may have (a regex class body): ASCII letters and
digits, ``.``, ``@`` and ``-``. Not ``_``: it separates the two user ids of a
single-chat conversation id (``protocol.conversation_ids``), so that no two
pairs of users can have the same id."""
GROUP_ID_CHARS = "A-Za-z0-9_.@-"
"""The characters a group id may have: those of a user id, and ``_``."""
ID_MAX_LENGTH = 64
"""Longest user id or group id."""
UserId = Annotated[
    str, Meta(min_length=1, max_length=ID_MAX_LENGTH, pattern=rf"^[{USER_ID_CHARS}]+\Z")
]
GroupId = Annotated[
    str, Meta(min_length=1, max_length=ID_MAX_LENGTH, pattern=rf"^[{GROUP_ID_CHARS}]+\Z")
]
Password = Annotated[str, Meta(min_length=6, max_length=128)]
Nickname = Annotated[str, Meta(max_length=64)]
Url = Annotated[str, Meta(max_length=1024)]
Ex = Annotated[str, Meta(max_length=4096)]
Token = Annotated[str, Meta(min_length=1, max_length=2048)]
PlatformId = Literal[1, 2, 3, 4, 5, 6, 7, 8, 9, 11]
UserIdBatch = Annotated[list[UserId], Meta(min_length=1, max_length=MAX_BATCH)]
Offset = Annotated[int, Meta(ge=0, le=2**31)]
Limit = Annotated[int, Meta(ge=1, le=MAX_PAGE)]


# Client to server: every request has a rid.


class Request(msgspec.Struct, frozen=True, kw_only=True, tag_field="t"):
    rid: RequestId


class Ping(Request, frozen=True, tag="ping"):
    """Application-level keep-alive; answered with ``pong``. Allowed before login."""


# Server to client: replies carry the rid of their request.


class Reply(msgspec.Struct, frozen=True, kw_only=True, tag_field="t"):
    rid: int


class Error(Reply, frozen=True, tag="error", omit_defaults=True):
    """The request failed and changed nothing. ``rid`` is 0 when it could not be read."""

    code: int
    name: str
    message: str
    app_code: int = 0
    """``REFUSED_BY_APP``: the app server's own code for the refusal (0 otherwise)."""
    app_message: str = ""
    """``REFUSED_BY_APP``: the app server's message for the user ("" otherwise)."""
    retry_after_ms: int | None = None
    """With ``RATE_LIMITED``: milliseconds to wait before the same request may pass
    (left out of other errors)."""


class Ok(Reply, frozen=True, tag="ok"):
    """The request succeeded and has nothing else to report."""


class Pong(Reply, frozen=True, tag="pong"):
    server_time: int
    """Server clock, milliseconds since the Unix epoch."""


# Server to client: pushes carry no rid.


class Push(msgspec.Struct, frozen=True, kw_only=True, tag_field="t"):
    """A message the server sends on its own initiative."""
