"""``/messages``: send as any user (a person, or a system or notification account
made for the app) to a user or a group, or one message to many users. A send takes
the path of a client's ``send_message``: routed to the actor that owns the
conversation, stored with the conversation's next seq, pushed to every device of the
recipients and to the sender's, with the same conversation updates."""

from __future__ import annotations

import uuid

import trio

from actors.node import routing
from api.context import ApiContext
from api.routing import ApiRoute
from api.schemas import BatchMessage, BatchResult, BatchSent, ItemFailure, OutgoingMessage, Sent
from protocol import messages as m
from protocol.errors import ErrorCode, ProtocolError

SENDS_AT_ONCE = 64
"""Sends of one batch in flight at a time."""
E = ErrorCode
SEND_ERRORS = (
    E.USER_NOT_FOUND,
    E.BAD_RECIPIENT,
    E.BLOCKED_BY_PEER,
    E.PEER_BLOCKED,
    E.NOT_FRIENDS,
    E.CONTENT_TOO_LARGE,
    E.CONTENT_NOT_ALLOWED,
    E.NO_SUCH_MESSAGE,
)


async def _require_sender(context: ApiContext, send_id: str) -> None:
    if not await context.services.storage.accounts.exists(send_id):
        raise ProtocolError(E.USER_NOT_FOUND, f"no user {send_id!r} to send as")


async def _send(context: ApiContext, send_id: str, request: m.SendMessage) -> m.MessageSent:
    kind, entity_id = routing.route(request, send_id)
    reply = await context.calls.call(kind, entity_id, request, send_id)
    assert isinstance(reply, m.MessageSent)
    return reply


async def send_message(context: ApiContext, body: OutgoingMessage, path: dict[str, str]) -> Sent:
    """Send one message as ``send_id``, with the rules of a client's send (blacklists,
    ``messaging.friends_only``, group membership and mutes)."""
    if (body.to_user_id is None) == (body.group_id is None):
        raise ProtocolError(E.BAD_RECIPIENT, "give exactly one of to_user_id, group_id")
    await _require_sender(context, body.send_id)
    request = m.SendMessage(
        rid=1,
        client_msg_id=body.client_msg_id or uuid.uuid4().hex,
        content=body.content,
        to_user_id=body.to_user_id,
        group_id=body.group_id,
        ex=body.ex,
    )
    sent = await _send(context, body.send_id, request)
    return Sent(
        conversation_id=sent.conversation_id,
        seq=sent.seq,
        server_msg_id=sent.server_msg_id,
        client_msg_id=sent.client_msg_id,
        send_time=sent.send_time,
    )


async def send_batch(context: ApiContext, body: BatchMessage, path: dict[str, str]) -> BatchResult:
    """Send the same message to up to 1,000 users, each in its single chat with
    ``send_id``; a recipient it cannot go to is listed in ``failed``."""
    if len(set(body.to_user_ids)) != len(body.to_user_ids):
        raise ProtocolError(E.INVALID_FIELD, "to_user_ids: a user id is listed twice")
    await _require_sender(context, body.send_id)
    client_msg_id = body.client_msg_id or uuid.uuid4().hex
    sent: dict[str, BatchSent] = {}
    failed: dict[str, ItemFailure] = {}
    limiter = trio.CapacityLimiter(SENDS_AT_ONCE)

    async def one(to_user_id: str) -> None:
        request = m.SendMessage(
            rid=1,
            client_msg_id=client_msg_id,
            content=body.content,
            to_user_id=to_user_id,
            ex=body.ex,
        )
        async with limiter:
            try:
                reply = await _send(context, body.send_id, request)
            except ProtocolError as exc:
                failed[to_user_id] = ItemFailure(
                    id=to_user_id, code=int(exc.code), name=exc.code.name, message=exc.message
                )
                return
        sent[to_user_id] = BatchSent(
            to_user_id=to_user_id,
            conversation_id=reply.conversation_id,
            seq=reply.seq,
            server_msg_id=reply.server_msg_id,
        )

    async with trio.open_nursery() as nursery:
        for to_user_id in body.to_user_ids:
            nursery.start_soon(one, to_user_id)
    order = body.to_user_ids
    return BatchResult(
        client_msg_id=client_msg_id,
        sent=[sent[u] for u in order if u in sent],
        failed=[failed[u] for u in order if u in failed],
    )


ROUTES = (
    ApiRoute(
        "POST", "/messages", send_message, "Send a message", Sent, OutgoingMessage,
        errors=(*SEND_ERRORS, E.GROUP_NOT_FOUND, E.GROUP_DISMISSED, E.NOT_GROUP_MEMBER,
                E.MEMBER_MUTED, E.GROUP_MUTED),
        tag="messages",
    ),
    ApiRoute(
        "POST", "/messages/batch", send_batch, "Send a message to many users", BatchResult,
        BatchMessage, errors=(E.USER_NOT_FOUND,), tag="messages",
    ),
)  # fmt: skip
