"""Single chat: sending to a user and revoking in a single-chat conversation.

Both are routed to the user actor of the conversation's *owner*, the lower of
the two user ids, whichever of them sends: one actor then serializes every
send of the conversation on this node (it handles one command at a time, and
awaiting storage inside a handler does not let it start the next), so seqs are
pushed in order. Methods run in that actor's task on the node's event loop and
await storage; the sender is ``command.user_id``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from actors.delivery import messaging
from actors.runtime.messages import Command
from actors.runtime.services import NodeServices
from protocol import messages as m
from protocol.conversation_ids import peer_in, single_conversation_id
from protocol.errors import ErrorCode, ProtocolError
from protocol.messaging import SINGLE_CHAT
from storage import ConversationRecord


def conversation_owner(user_a: str, user_b: str) -> str:
    """The user whose actor handles sends and revokes of the single chat of a and b."""
    return min(user_a, user_b)


class SingleChatCommands:
    def __init__(self, user_id: str, services: NodeServices) -> None:
        self.user_id = user_id
        self._services = services
        self._storage = services.storage

    def handlers(self) -> dict[type[m.Request], Callable[[Command], Awaitable[m.Reply | None]]]:
        return {m.SendMessage: self.send, m.RevokeMessage: self.revoke}

    async def send(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.SendMessage)
        sender = command.user_id or ""
        peer = request.to_user_id
        if peer is None or request.group_id is not None:
            raise ProtocolError(ErrorCode.BAD_RECIPIENT, "give exactly one of to_user_id, group_id")
        messaging.check_content(self._services, request)
        conversation_id = single_conversation_id(sender, peer)
        recipients = [sender, peer]
        if isinstance(request.content, m.TypingContent):
            await self._check_may_send(sender, peer)
            return await messaging.push_typing(self._services, command, conversation_id, recipients)
        await self._services.send_limiter.take(sender)
        await messaging.check_quote(self._services, conversation_id, request)
        entries = {
            sender: ConversationRecord(conversation_id, SINGLE_CHAT, peer, ""),
            peer: ConversationRecord(conversation_id, SINGLE_CHAT, sender, ""),
        }
        friends_only = self._services.settings.messaging.friends_only and sender != peer
        return await messaging.store_and_push(
            self._services,
            command,
            conversation_id,
            SINGLE_CHAT,
            peer,
            recipients,
            entries,
            "friends" if friends_only else "peer",
        )

    async def _check_may_send(self, sender: str, peer: str) -> None:
        """The rules of a stored send, for typing (which stores nothing)."""
        relations = self._storage.relations
        if sender != peer and not await self._storage.accounts.public_profiles([peer]):
            raise ProtocolError(ErrorCode.USER_NOT_FOUND, f"no user {peer!r}")
        if await relations.is_blocked(peer, sender):
            raise ProtocolError(ErrorCode.BLOCKED_BY_PEER, "this user has blocked you")
        if await relations.is_blocked(sender, peer):
            raise ProtocolError(
                ErrorCode.PEER_BLOCKED, "you have blocked this user; unblock them first"
            )
        if self._services.settings.messaging.friends_only and sender != peer:
            mine, theirs = await relations.friendship(sender, peer)
            if not (mine and theirs):
                raise ProtocolError(ErrorCode.NOT_FRIENDS, "single chat is for friends only here")

    async def revoke(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.RevokeMessage)
        requester = command.user_id or ""
        peer = peer_in(request.conversation_id, requester)
        if peer is None:
            raise ProtocolError(ErrorCode.NO_SUCH_CONVERSATION, "not a conversation of yours")
        # The stored message is the check: only a message this user sent in this
        # conversation (which has them in it) may be revoked.
        _, message = await messaging.load_for_revoke(
            self._services, request.conversation_id, request.seq
        )
        if message.send_id != requester:
            raise ProtocolError(
                ErrorCode.REVOKE_NOT_ALLOWED, "in single chat only the sender may revoke"
            )
        messaging.check_revoke_time(self._services, message)
        return await messaging.revoke_and_push(
            self._services, command, request.conversation_id, request.seq, [requester, peer]
        )
