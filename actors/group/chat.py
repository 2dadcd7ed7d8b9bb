"""Group chat: sending to a group and revoking in a group conversation.

A command group of the group actor (constructed with the actor), so every
send of one group is serialized by that actor's task (one command at a time:
awaiting storage inside a handler does not let the actor start its next
command) and pushed in seq order; the permission rules read the group's live
state. Pushes leave out members who set recv_opt 1 for the group's
conversation: the storing step returns them (``messaging.store_and_push``), so
the actor caches nothing about them and reads no member's conversation entry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from actors.delivery import messaging
from actors.runtime.messages import Command
from actors.runtime.services import NodeServices
from actors.runtime.steps import now_ms
from protocol import messages as m
from protocol.conversation_ids import group_conversation_id
from protocol.errors import ErrorCode, ProtocolError
from protocol.groups import ADMIN, MEMBER, OWNER
from protocol.messaging import GROUP_CHAT
from storage import ConversationRecord

_REFUSALS = {
    ErrorCode.GROUP_DISMISSED: "the group is dismissed",
    ErrorCode.NOT_GROUP_MEMBER: "you are not a member of this group",
    ErrorCode.GROUP_MUTED: "the group is muted: only the owner and admins may send",
    ErrorCode.MEMBER_MUTED: "you are muted in this group",
    ErrorCode.GROUP_NOT_FOUND: "no such group",
}


class GroupChatCommands:
    def __init__(self, group_id: str, services: NodeServices, actor: Any) -> None:
        self.group_id = group_id
        self._services = services
        self._actor = actor

    def handlers(self) -> dict[type[m.Request], Callable[[Command], Awaitable[m.Reply | None]]]:
        return {m.SendMessage: self.send, m.RevokeMessage: self.revoke}

    def _state(self) -> Any:
        state = self._actor.state
        if state is None:
            raise ProtocolError(ErrorCode.GROUP_NOT_FOUND, _REFUSALS[ErrorCode.GROUP_NOT_FOUND])
        return state

    async def send(self, command: Command) -> m.Reply:
        """Runs in the group actor's task."""
        request = command.request
        assert isinstance(request, m.SendMessage)
        sender = command.user_id or ""
        if request.group_id is None or request.to_user_id is not None:
            raise ProtocolError(ErrorCode.BAD_RECIPIENT, "give exactly one of to_user_id, group_id")
        conversation_id = group_conversation_id(self.group_id)
        if not isinstance(request.content, m.TypingContent):
            earlier = await messaging.previous_send(self._services, conversation_id, request)
            if earlier is not None:
                return earlier
        state = self._state()
        refusal = state.send_refusal(sender, now_ms())
        if refusal is not None:
            raise ProtocolError(refusal, _REFUSALS.get(refusal, refusal.name))
        messaging.check_content(self._services, request)
        content = request.content
        if (
            isinstance(content, m.MentionContent)
            and content.at_all
            and state.role_of(sender) < ADMIN
        ):
            raise ProtocolError(
                ErrorCode.CONTENT_NOT_ALLOWED, "only the owner and admins may mention everyone"
            )
        members = state.member_ids()
        if isinstance(content, m.TypingContent):
            return await messaging.push_typing(self._services, command, conversation_id, members)
        await self._services.send_limiter.take(sender)
        await messaging.check_quote(self._services, conversation_id, request)
        entries = {sender: ConversationRecord(conversation_id, GROUP_CHAT, "", self.group_id)}
        return await messaging.store_and_push(
            self._services, command, conversation_id, GROUP_CHAT, self.group_id, members, entries
        )

    async def revoke(self, command: Command) -> m.Reply:
        """The sender within the time limit; the owner any message; an admin the messages
        of ordinary members. Runs in the group actor's task."""
        request = command.request
        assert isinstance(request, m.RevokeMessage)
        requester = command.user_id or ""
        state = self._state()
        if request.conversation_id != group_conversation_id(self.group_id):
            raise ProtocolError(ErrorCode.NO_SUCH_CONVERSATION, "not this group's conversation")
        if not state.active:
            raise ProtocolError(ErrorCode.GROUP_DISMISSED, _REFUSALS[ErrorCode.GROUP_DISMISSED])
        role = state.role_of(requester)
        if role == 0:
            raise ProtocolError(
                ErrorCode.NO_SUCH_CONVERSATION, "you are not a member of this group"
            )
        _, message = await messaging.load_for_revoke(
            self._services, request.conversation_id, request.seq
        )
        sender_role = state.role_of(message.send_id) or MEMBER
        if role >= OWNER or (role >= ADMIN and sender_role < ADMIN):
            pass
        elif message.send_id == requester:
            messaging.check_revoke_time(self._services, message)
        else:
            raise ProtocolError(
                ErrorCode.REVOKE_NOT_ALLOWED,
                "only the sender, the owner, or an admin (for ordinary members) may revoke",
            )
        return await messaging.revoke_and_push(
            self._services, command, request.conversation_id, request.seq, state.member_ids()
        )
