"""SDK methods for messages and conversations."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal

from client.base import RequestSender
from protocol import messages as m


class ChatMethods(RequestSender):
    async def send_message(
        self,
        content: m.MessageContent,
        *,
        to_user_id: str | None = None,
        group_id: str | None = None,
        client_msg_id: str | None = None,
        ex: str = "",
    ) -> m.MessageSent:
        """Send to a user or a group. Retrying with the same ``client_msg_id`` is safe."""
        request = m.SendMessage(
            rid=self.next_rid(),
            client_msg_id=client_msg_id or uuid.uuid4().hex,
            content=content,
            to_user_id=to_user_id,
            group_id=group_id,
            ex=ex,
        )
        return await self.request(request, m.MessageSent)

    async def send_text(
        self, text: str, *, to_user_id: str | None = None, group_id: str | None = None
    ) -> m.MessageSent:
        return await self.send_message(
            m.TextContent(text=text), to_user_id=to_user_id, group_id=group_id
        )

    async def get_max_seqs(self) -> dict[str, m.ConversationSeqs]:
        reply = await self.request(m.GetMaxSeqs(rid=self.next_rid()), m.MaxSeqs)
        return {c.conversation_id: c for c in reply.conversations}

    async def pull_messages(
        self,
        conversation_id: str,
        from_seq: int = 1,
        to_seq: int = 0,
        *,
        descending: bool = False,
        limit: int = 50,
    ) -> m.Messages:
        request = m.PullMessages(
            rid=self.next_rid(),
            conversation_id=conversation_id,
            from_seq=from_seq,
            to_seq=to_seq,
            descending=descending,
            limit=limit,
        )
        return await self.request(request, m.Messages)

    async def get_history(
        self, conversation_id: str, *, before_seq: int = 0, before_time: int = 0, limit: int = 50
    ) -> m.Messages:
        request = m.GetHistory(
            rid=self.next_rid(),
            conversation_id=conversation_id,
            before_seq=before_seq,
            before_time=before_time,
            limit=limit,
        )
        return await self.request(request, m.Messages)

    async def mark_read(self, conversation_id: str, seq: int = 0) -> None:
        request = m.MarkRead(rid=self.next_rid(), conversation_id=conversation_id, seq=seq)
        await self.request(request, m.Ok)

    async def revoke_message(self, conversation_id: str, seq: int) -> m.MessageSent:
        request = m.RevokeMessage(rid=self.next_rid(), conversation_id=conversation_id, seq=seq)
        return await self.request(request, m.MessageSent)

    async def delete_messages(self, conversation_id: str, seqs: Sequence[int]) -> None:
        request = m.DeleteMessages(
            rid=self.next_rid(), conversation_id=conversation_id, seqs=list(seqs)
        )
        await self.request(request, m.Ok)

    async def clear_conversation(self, conversation_id: str) -> None:
        request = m.ClearConversation(rid=self.next_rid(), conversation_id=conversation_id)
        await self.request(request, m.Ok)

    async def get_conversations(self, offset: int = 0, limit: int = 100) -> m.Conversations:
        request = m.GetConversations(rid=self.next_rid(), offset=offset, limit=limit)
        return await self.request(request, m.Conversations)

    async def set_conversations(
        self,
        conversation_ids: Sequence[str],
        *,
        pinned: bool | None = None,
        recv_opt: Literal[0, 1, 2] | None = None,
        draft_text: str | None = None,
        ex: str | None = None,
    ) -> None:
        request = m.SetConversations(
            rid=self.next_rid(),
            conversation_ids=list(conversation_ids),
            pinned=pinned,
            recv_opt=recv_opt,
            draft_text=draft_text,
            ex=ex,
        )
        await self.request(request, m.Ok)

    async def hide_conversation(self, conversation_id: str) -> None:
        request = m.HideConversation(rid=self.next_rid(), conversation_id=conversation_id)
        await self.request(request, m.Ok)

    async def sync_conversations(
        self, version_id: str = "", version: int = 0
    ) -> m.ConversationSync:
        request = m.SyncConversations(rid=self.next_rid(), version_id=version_id, version=version)
        return await self.request(request, m.ConversationSync)
