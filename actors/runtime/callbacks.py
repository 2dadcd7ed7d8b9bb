"""The webhook calls of commands named after their request (``before_<t>``,
``after_<t>``, see ``webhooks.catalog``): their bodies, built the same way for every
such command; and the session events (``after_user_online`` and the like). Message
sends and revokes have their own bodies (``actors.delivery.messaging``). Callers test
``services.webhooks.on`` first, so a node without webhooks pays one attribute test per
command."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from actors.runtime.messages import Command
from actors.runtime.services import NodeServices
from protocol import messages as m
from protocol.notifications import NotificationType
from webhooks import catalog


def action_of(request: m.Request) -> str:
    return str(type(request).__struct_config__.tag)


def request_fields(request: m.Request) -> dict[str, Any]:
    """The request as the app sees it: every field but ``rid`` (password fields are
    removed from every body when it is encoded, ``webhooks.signing``)."""
    fields: dict[str, Any] = msgspec.to_builtins(request)
    fields.pop("rid", None)
    return fields


def notes_body(notes: Sequence[tuple[NotificationType, m.NotificationDetail]]) -> list[Any]:
    """The notifications an action stored, as ``{"type": ..., "detail": ...}``."""
    return [{"type": int(kind), "detail": detail} for kind, detail in notes]


async def ask_before(services: NodeServices, command: Command, **extra: Any) -> None:
    """Run the command's before-callback, if enabled; a refusal raises ``ProtocolError``."""
    request = command.request
    await services.webhooks.before(
        catalog.before(action_of(request)),
        {"op_user_id": command.user_id, "request": request_fields(request), **extra},
    )


def tell_after(services: NodeServices, command: Command, order_key: str, **extra: Any) -> None:
    """Queue the command's after-callback, if enabled; returns at once."""
    request = command.request
    services.webhooks.after(
        catalog.after(action_of(request)),
        {"op_user_id": command.user_id, "request": request_fields(request), **extra},
        order_key,
    )


def tell_session_event(
    services: NodeServices, user_id: str, name: str, session_id: str, **details: Any
) -> None:
    """Queue a session event's after-callback (``catalog.SESSION_EVENTS``), in order with
    the user's other callbacks."""
    body = {"user_id": user_id, "session_id": session_id, **details}
    services.webhooks.after(name, body, user_id)
