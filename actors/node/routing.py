"""Which actor owns each command a signed-in session sends.

By default a command goes to the sender's own user actor. Commands about
another entity (a group, ...) are listed in ``ROUTES`` with the actor kind that
owns them and how to find the entity id in the request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.group import actor as group
from actors.user import actor as user
from actors.user.chat import conversation_owner
from protocol import messages as m
from protocol.conversation_ids import GroupChat, SingleChat, parse_conversation_id

Route = tuple[str, str]
"""(actor kind, entity id)"""

ROUTES: dict[type[Any], tuple[str, Callable[[Any], str]]] = {
    **dict.fromkeys(group.ROUTED, (group.KIND, group.group_id_of)),
}
"""Request type -> (actor kind, entity id of the request)."""


def _send_message(request: m.SendMessage, user_id: str) -> Route:
    if request.group_id is not None:
        return "group", request.group_id
    # Single chat, and a request without a recipient (refused by the handler).
    return user.KIND, conversation_owner(user_id, request.to_user_id or user_id)


def _revoke_message(request: m.RevokeMessage, user_id: str) -> Route:
    chat = parse_conversation_id(request.conversation_id)
    if isinstance(chat, GroupChat):
        return "group", chat.group_id
    # Not a conversation of the sender: their own actor refuses it.
    peer = chat.peer_of(user_id) if isinstance(chat, SingleChat) else None
    return user.KIND, conversation_owner(user_id, peer or user_id)


ROUTES_BY_SENDER: dict[type[Any], Callable[[Any, str], Route]] = {
    m.SendMessage: _send_message,
    m.RevokeMessage: _revoke_message,
}
"""Request type -> the route, from the request and the sender's user id."""


def route(request: Any, user_id: str) -> Route:
    """The actor that must handle ``request`` sent by ``user_id``."""
    by_sender = ROUTES_BY_SENDER.get(type(request))
    if by_sender is not None:
        return by_sender(request, user_id)
    found = ROUTES.get(type(request))
    if found is None:
        return user.KIND, user_id
    kind, entity = found
    return kind, entity(request)
