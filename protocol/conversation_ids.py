"""Conversation ids: how they are formed, and what they name.

The one place that builds and reads conversation ids, for the server and the
client SDK alike (sans-IO: nothing here does I/O). The forms are OpenIM's:

- single chat of users A and B: ``si_<low>_<high>``, the two user ids sorted
  by code point (byte order: user ids are ASCII), e.g. ``si_alice_bob``; a
  user writing to themselves has ``si_alice_alice``;
- group chat: ``sg_<group id>``, e.g. ``sg_team``.

The id names its members without guessing, and no two pairs of users share
an id, because a user id cannot contain ``_`` (``protocol.base.USER_ID_CHARS``):
the ``_`` after ``si`` and the one between the two user ids are the only ones
in a single-chat id, so it splits one way only. A group id may contain ``_``;
``sg_`` ids are told from ``si_`` ids by their prefix, and everything after it
is the group id.

Only the canonical id of a pair (lower user id first) is a conversation: the
wire type :data:`ConversationId` accepts ``si_bob_alice``, but
:func:`parse_conversation_id` does not, so a request naming it finds no
conversation. Parsing says what an id names; whether a user may use it is for
the server to decide against what it has stored (the two accounts, the
group's members).
"""

from __future__ import annotations

import re
from typing import Annotated, NamedTuple

from msgspec import Meta

from protocol.base import GROUP_ID_CHARS, ID_MAX_LENGTH, USER_ID_CHARS

SINGLE_PREFIX = "si_"
GROUP_PREFIX = "sg_"
SEPARATOR = "_"
"""Between the two user ids of a single-chat id; no user id contains it."""

_USER = rf"[{USER_ID_CHARS}]{{1,{ID_MAX_LENGTH}}}"
_GROUP = rf"[{GROUP_ID_CHARS}]{{1,{ID_MAX_LENGTH}}}"
_USER_ID = re.compile(rf"{_USER}\Z")
_GROUP_ID = re.compile(rf"{_GROUP}\Z")
_SINGLE_ID = re.compile(rf"si_({_USER})_({_USER})\Z")

CONVERSATION_ID_PATTERN = rf"^(?:si_{_USER}_{_USER}|sg_{_GROUP})\Z"
"""What a conversation id in a request must match: two user ids after ``si_``, or
a group id after ``sg_``."""
MAX_LENGTH = len(SINGLE_PREFIX) + 2 * ID_MAX_LENGTH + len(SEPARATOR)
"""Longest conversation id (132): a single chat of two 64-character user ids."""

ConversationId = Annotated[
    str, Meta(min_length=4, max_length=MAX_LENGTH, pattern=CONVERSATION_ID_PATTERN)
]


class SingleChat(NamedTuple):
    """The two users of a single-chat conversation, ``low <= high``."""

    low: str
    high: str

    @property
    def conversation_id(self) -> str:
        return f"{SINGLE_PREFIX}{self.low}{SEPARATOR}{self.high}"

    def peer_of(self, user_id: str) -> str | None:
        """The other user, when ``user_id`` is one of the two (themselves in a chat
        with oneself); None when ``user_id`` is not in this conversation."""
        if user_id == self.low:
            return self.high
        if user_id == self.high:
            return self.low
        return None


class GroupChat(NamedTuple):
    """The group of a group-chat conversation."""

    group_id: str

    @property
    def conversation_id(self) -> str:
        return f"{GROUP_PREFIX}{self.group_id}"


def is_user_id(value: str) -> bool:
    """Whether ``value`` is a valid user id (the rules of ``protocol.base.UserId``)."""
    return _USER_ID.match(value) is not None


def single_chat(a: str, b: str) -> SingleChat:
    """The single chat of users ``a`` and ``b`` (in either order).

    Raises ValueError when either is not a valid user id: such an id could make
    a conversation id that names another pair."""
    for user_id in (a, b):
        if not is_user_id(user_id):
            raise ValueError(f"not a user id: {user_id!r}")
    return SingleChat(a, b) if a <= b else SingleChat(b, a)


def single_conversation_id(a: str, b: str) -> str:
    """``si_<low>_<high>``: the id of the single chat of ``a`` and ``b``, either order."""
    return single_chat(a, b).conversation_id


def group_conversation_id(group_id: str) -> str:
    """``sg_<group id>``; raises ValueError when ``group_id`` is not a valid group id."""
    if _GROUP_ID.match(group_id) is None:
        raise ValueError(f"not a group id: {group_id!r}")
    return GroupChat(group_id).conversation_id


def parse_conversation_id(conversation_id: str) -> SingleChat | GroupChat | None:
    """What a conversation id names, or None when it is not the canonical id of a
    single chat or of a group chat.

    For every result ``r``, ``r.conversation_id == conversation_id``."""
    if conversation_id.startswith(SINGLE_PREFIX):
        found = _SINGLE_ID.match(conversation_id)
        if found is None:
            return None
        low, high = found.group(1), found.group(2)
        return SingleChat(low, high) if low <= high else None
    if conversation_id.startswith(GROUP_PREFIX):
        group_id = conversation_id[len(GROUP_PREFIX) :]
        return GroupChat(group_id) if _GROUP_ID.match(group_id) else None
    return None


def peer_in(conversation_id: str, user_id: str) -> str | None:
    """The other user of ``user_id``'s single chat with this id; None when the id is
    not the canonical id of a single chat that has ``user_id`` in it."""
    chat = parse_conversation_id(conversation_id)
    return chat.peer_of(user_id) if isinstance(chat, SingleChat) else None
