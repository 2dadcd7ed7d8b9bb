"""What single chat and group chat share: content checks, storing a message with
its seq, pushing it, and revoking. Called from the actor that owns the
conversation (a user actor for single chat, the group actor for group chat),
in that actor's task on the node's event loop; the functions that read or write
Redis are awaited (the commands of every actor in one loop tick travel to Redis as
one pipeline). One owner per conversation, handling one command at a time
(a handler awaiting storage does not let its actor start the next command),
keeps pushes in seq order.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from typing import Literal

import msgspec

from actors.runtime.messages import Command
from actors.runtime.services import NodeServices
from actors.runtime.steps import STEP_ATTEMPTS, now_ms
from protocol import messages as m
from protocol.base import Ex
from protocol.errors import ErrorCode, ProtocolError
from protocol.messaging import GROUP_CHAT, ChatMessage, MessageContent, RevokedContent
from storage import ConversationRecord, StaleRead, StepRefused
from storage.conversations import encode_record
from webhooks import catalog

_encoder = msgspec.msgpack.Encoder()
_message = msgspec.msgpack.Decoder(ChatMessage)
_ids = random.Random()
"""Seeded once from the OS. ``uuid.uuid4()`` reads ``os.urandom`` on every call: a
system call that lets the GIL go in the middle of a send, after which the event loop
may wait for the GIL behind the Redis executor thread (hundreds of microseconds under
load)."""

_SEND_REFUSALS = {
    "USER_NOT_FOUND": "no such user",
    "BLOCKED_BY_PEER": "this user has blocked you",
    "PEER_BLOCKED": "you have blocked this user; unblock them first",
    "NOT_FRIENDS": "single chat is for friends only here",
}


def new_message_id() -> str:
    """A random (version 4) UUID as 32 hex digits: unique, not secret."""
    return uuid.UUID(int=_ids.getrandbits(128), version=4).hex


def decode_message(seq: int, payload: bytes) -> ChatMessage:
    return msgspec.structs.replace(_message.decode(payload), seq=seq)


def content_type(message: ChatMessage) -> int:
    return int(message.content.__struct_config__.tag)  # type: ignore[arg-type]


def check_content(services: NodeServices, request: m.SendMessage) -> None:
    """Refuse content that no sender may send, or that is too large."""
    check_content_value(services, request.content)


def check_content_value(services: NodeServices, content: MessageContent) -> None:
    if isinstance(content, RevokedContent):
        raise ProtocolError(
            ErrorCode.CONTENT_NOT_ALLOWED, "content type 111 is written by the server only"
        )
    limit = services.settings.messaging.max_content_bytes
    size = len(_encoder.encode(content))
    if size > limit:
        raise ProtocolError(
            ErrorCode.CONTENT_TOO_LARGE, f"content is {size} bytes; the limit is {limit}"
        )


async def check_quote(services: NodeServices, conversation_id: str, request: m.SendMessage) -> None:
    content = request.content
    if isinstance(content, m.QuoteContent) and (
        await services.storage.messages.get(conversation_id, content.quoted_seq) is None
    ):
        raise ProtocolError(
            ErrorCode.NO_SUCH_MESSAGE, f"no message {content.quoted_seq} to quote here"
        )


def receiving(
    recipients: Sequence[str], not_receiving: frozenset[str], sender: str
) -> Sequence[str]:
    """The recipients to push a message, revoke notice or typing of ``sender`` to:
    all but those who set recv_opt 1 ("do not receive") for the conversation. The
    sender is always kept: recv_opt is about what others send, and the sender's own
    other devices must see their own messages to stay in step."""
    if not not_receiving:
        return recipients
    return [user for user in recipients if user == sender or user not in not_receiving]


async def push_typing(
    services: NodeServices, command: Command, conversation_id: str, recipients: Sequence[str]
) -> m.Reply:
    """Push a typing indication (stored nowhere) to ``recipients`` but those who do
    not receive the conversation; one read of that set, as typing has no storing step."""
    request = command.request
    assert isinstance(request, m.SendMessage) and isinstance(request.content, m.TypingContent)
    sender = command.user_id or ""
    not_receiving = await services.storage.messages.not_receiving(conversation_id)
    frame = _encoder.encode(
        m.Typing(
            conversation_id=conversation_id,
            from_user_id=sender,
            text=request.content.text,
        )
    )
    services.hub.push_soon(
        receiving(recipients, not_receiving, sender), frame, command.session.session_id
    )
    return m.MessageSent(
        rid=request.rid,
        conversation_id=conversation_id,
        seq=0,
        server_msg_id="",
        client_msg_id=request.client_msg_id,
        send_time=now_ms(),
    )


def sent_reply(rid: int, message: ChatMessage) -> m.MessageSent:
    return m.MessageSent(
        rid=rid,
        conversation_id=message.conversation_id,
        seq=message.seq,
        server_msg_id=message.server_msg_id,
        client_msg_id=message.client_msg_id,
        send_time=message.send_time,
    )


async def previous_send(
    services: NodeServices, conversation_id: str, request: m.SendMessage
) -> m.Reply | None:
    """The first result of a send retried with the same client msg id, if there was one:
    a retry gets it even if the sender may no longer send (muted since, ...)."""
    seq = await services.storage.messages.seq_of(conversation_id, request.client_msg_id)
    if seq is None:
        return None
    first = await services.storage.messages.get(conversation_id, seq)
    if first is None:
        return None
    return sent_reply(request.rid, decode_message(seq, first))


async def store_and_push(
    services: NodeServices,
    command: Command,
    conversation_id: str,
    session_type: int,
    recv_id: str,
    recipients: Sequence[str],
    entries: dict[str, ConversationRecord],
    peer_checks: Literal["", "peer", "friends"] = "",
) -> m.Reply:
    """Store the message (idempotent by client msg id), push it, return the reply.

    The push leaves out recipients who set recv_opt 1 for the conversation (the
    storing step returns them, so this costs no extra round trip), but never the
    sender's other devices. ``peer_checks`` (single chat) has the storing step itself
    refuse an unknown recipient, a block either way, and with ``"friends"``
    non-friends."""
    request = command.request
    assert isinstance(request, m.SendMessage)
    sender = command.user_id or ""
    message = ChatMessage(
        conversation_id=conversation_id,
        session_type=session_type,
        seq=0,
        server_msg_id=new_message_id(),
        client_msg_id=request.client_msg_id,
        send_id=sender,
        recv_id=recv_id,
        send_time=now_ms(),
        content=request.content,
        ex=request.ex,
    )
    hooks = services.webhooks
    if hooks.on:
        asked = catalog.before(_send_action(message))
        if hooks.wants(asked, content_type(message)):
            # A retry of a stored send returns the first result without asking.
            earlier = await previous_send(services, conversation_id, request)
            if earlier is not None:
                return earlier
            message = await _before_send(services, asked, message)
    try:
        stored = await services.storage.messages.send(
            conversation_id,
            request.client_msg_id,
            _encoder.encode(message),
            message.send_time,
            True,
            sender,
            {user: encode_record(record) for user, record in entries.items()},
            peer_checks,
            recv_id,
            locate=bool(peer_checks) and bool(services.cluster.other_nodes),
        )
    except StepRefused as exc:
        raise ProtocolError(ErrorCode[exc.reason], _SEND_REFUSALS[exc.reason]) from None
    except StaleRead:
        raise ProtocolError(ErrorCode.UNAVAILABLE, "the conversation kept changing") from None
    if stored.duplicate:
        first = await services.storage.messages.get(conversation_id, stored.seq)
        if first is None:
            raise ProtocolError(ErrorCode.INTERNAL, "the first send of this message is gone")
        message = decode_message(stored.seq, first)
    else:
        services.metrics.messages_stored += 1
        message = msgspec.structs.replace(message, seq=stored.seq)
        frame = _encoder.encode(m.NewMessage(message=message))
        services.hub.push_soon(
            receiving(recipients, stored.not_receiving, sender),
            frame,
            command.session.session_id,
            stored.nodes,
        )
        if hooks.on:
            hooks.after(catalog.after(_send_action(message)), {"message": message}, conversation_id)
    return sent_reply(request.rid, message)


def _send_action(message: ChatMessage) -> str:
    return catalog.SEND_GROUP if message.session_type == GROUP_CHAT else catalog.SEND_SINGLE


async def _before_send(services: NodeServices, name: str, message: ChatMessage) -> ChatMessage:
    """The message as the app's before-send callback ``name`` allows it: as it is, or
    with the content and ``ex`` its answer gives (checked as a client's would be)."""
    hooks = services.webhooks
    verdict = await hooks.before(name, {"message": message})
    if verdict is None or (verdict.content is None and verdict.ex is None):
        return message
    try:
        content = message.content
        if verdict.content is not None:
            content = msgspec.convert(verdict.content, MessageContent)
            if isinstance(content, m.TypingContent):
                raise ProtocolError(ErrorCode.CONTENT_NOT_ALLOWED, "typing is not a message")
            check_content_value(services, content)
        ex = message.ex if verdict.ex is None else msgspec.convert(verdict.ex, Ex)
    except (msgspec.ValidationError, ProtocolError) as exc:
        hooks.bad_answer(name, str(exc))
        return message
    return msgspec.structs.replace(message, content=content, ex=ex)


async def load_for_revoke(
    services: NodeServices, conversation_id: str, seq: int
) -> tuple[bytes, ChatMessage]:
    raw = await services.storage.messages.get(conversation_id, seq)
    if raw is None:
        raise ProtocolError(ErrorCode.NO_SUCH_MESSAGE, f"no message {seq} in {conversation_id}")
    message = decode_message(seq, raw)
    if isinstance(message.content, RevokedContent):
        raise ProtocolError(ErrorCode.ALREADY_REVOKED, "this message is revoked already")
    return raw, message


def check_revoke_time(services: NodeServices, message: ChatMessage) -> None:
    """The sender's own revoke must come within the configured time limit."""
    limit_s = services.settings.messaging.revoke_time_limit
    if limit_s and now_ms() - message.send_time > limit_s * 1000:
        raise ProtocolError(
            ErrorCode.REVOKE_TIME_EXPIRED, f"messages can be revoked within {limit_s} s"
        )


async def revoke_and_push(
    services: NodeServices,
    command: Command,
    conversation_id: str,
    seq: int,
    recipients: Sequence[str],
) -> m.Reply:
    """Replace message ``seq`` by its revoked form, append and push the notice.

    The notice is pushed as a message of the revoker: not to recipients who set
    recv_opt 1, always to the revoker's other devices. The caller has checked that
    the requester may revoke it."""
    request = command.request
    revoker = command.user_id or ""
    hooks = services.webhooks
    if hooks.on and hooks.wants(catalog.before(catalog.REVOKE)):
        _, original = await load_for_revoke(services, conversation_id, seq)
        await hooks.before(
            catalog.before(catalog.REVOKE),
            {"op_user_id": revoker, "conversation_id": conversation_id, "message": original},
        )
    for _ in range(STEP_ATTEMPTS):
        raw, original = await load_for_revoke(services, conversation_id, seq)
        now = now_ms()
        content = RevokedContent(
            revoked_seq=seq,
            revoker_user_id=revoker,
            revoke_time=now,
            original_content_type=content_type(original),
        )
        revoked = msgspec.structs.replace(original, content=content)
        notice = ChatMessage(
            conversation_id=conversation_id,
            session_type=original.session_type,
            seq=0,
            server_msg_id=new_message_id(),
            client_msg_id=f"revoke:{original.server_msg_id}",
            send_id=revoker,
            recv_id=original.recv_id,
            send_time=now,
            content=content,
        )
        try:
            stored = await services.storage.messages.revoke(
                conversation_id,
                seq,
                raw,
                _encoder.encode(revoked),
                notice.client_msg_id,
                _encoder.encode(notice),
                now,
            )
        except StaleRead:
            continue
        except StepRefused as exc:
            raise ProtocolError(ErrorCode[exc.reason], exc.reason) from None
        notice = msgspec.structs.replace(notice, seq=stored.seq)
        frame = _encoder.encode(m.NewMessage(message=notice))
        services.hub.push_soon(
            receiving(recipients, stored.not_receiving, revoker),
            frame,
            command.session.session_id,
        )
        if hooks.on:
            hooks.after(
                catalog.after(catalog.REVOKE),
                {"op_user_id": revoker, "conversation_id": conversation_id, "notice": notice},
                conversation_id,
            )
        return m.MessageSent(
            rid=request.rid,
            conversation_id=conversation_id,
            seq=stored.seq,
            server_msg_id=notice.server_msg_id,
            client_msg_id=notice.client_msg_id,
            send_time=now,
        )
    raise ProtocolError(ErrorCode.UNAVAILABLE, "the message kept changing; try again")
