"""A user's view of their conversations: max seqs, pulling and paging messages,
read state, deleting and clearing for themselves, and the conversation list
with its settings and incremental sync.

:class:`ConversationCommands` runs in the user's own actor task on the node's event
loop and awaits storage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import msgspec
from msgspec.structs import replace

from actors.delivery.messaging import decode_message
from actors.runtime.messages import Command
from actors.runtime.services import NodeServices
from actors.runtime.steps import STEP_ATTEMPTS, now_ms
from protocol import messages as m
from protocol.conversation_ids import (
    GroupChat,
    SingleChat,
    group_conversation_id,
    parse_conversation_id,
)
from protocol.errors import ErrorCode, ProtocolError
from protocol.messaging import GROUP_CHAT, SINGLE_CHAT
from storage import ConversationRecord, StaleRead
from storage.conversations import decode_record

_encoder = msgspec.msgpack.Encoder()


def conversation_info(record: ConversationRecord) -> m.ConversationInfo:
    return m.ConversationInfo(
        conversation_id=record.conversation_id,
        session_type=record.session_type,
        peer_user_id=record.peer_user_id,
        group_id=record.group_id,
        pinned=record.pinned,
        recv_opt=record.recv_opt,
        draft_text=record.draft_text,
        draft_time=record.draft_time,
        ex=record.ex,
        hidden=record.hidden,
        hidden_at_seq=record.hidden_at_seq,
    )


class ConversationCommands:
    def __init__(self, user_id: str, services: NodeServices) -> None:
        self.user_id = user_id
        self._services = services
        self._messages = services.storage.messages
        self._conversations = services.storage.conversations

    def handlers(self) -> dict[type[m.Request], Callable[[Command], Awaitable[m.Reply | None]]]:
        return {
            m.GetMaxSeqs: self.max_seqs,
            m.PullMessages: self.pull,
            m.GetHistory: self.history,
            m.MarkRead: self.mark_read,
            m.DeleteMessages: self.delete_messages,
            m.ClearConversation: self.clear,
            m.GetConversations: self.conversations,
            m.SetConversations: self.set_conversations,
            m.HideConversation: self.hide,
            m.SyncConversations: self.sync,
        }

    # -- access -------------------------------------------------------------------

    async def _default_record(self, conversation_id: str) -> ConversationRecord:
        """The entry a conversation of this user starts with, after checking that it is
        theirs against what is stored; every conversation-scoped command asks this first.

        A single chat is this user's when its id is the canonical id of a pair that has
        them in it (ids name their pair unambiguously, ``protocol.conversation_ids``)
        and the other user's account exists: an id naming someone who never registered
        gets ``USER_NOT_FOUND`` and creates nothing. A group chat is this user's while
        the group's stored members include them. Anything else is
        ``NO_SUCH_CONVERSATION``."""
        chat = parse_conversation_id(conversation_id)
        if isinstance(chat, SingleChat):
            peer = chat.peer_of(self.user_id)
            if peer is not None:
                if peer != self.user_id and not await self._services.storage.accounts.exists(peer):
                    raise ProtocolError(ErrorCode.USER_NOT_FOUND, f"no user {peer!r}")
                return ConversationRecord(conversation_id, SINGLE_CHAT, peer, "")
        elif isinstance(chat, GroupChat) and await self._services.storage.is_group_member(
            chat.group_id, self.user_id
        ):
            return ConversationRecord(conversation_id, GROUP_CHAT, "", chat.group_id)
        raise ProtocolError(ErrorCode.NO_SUCH_CONVERSATION, f"{conversation_id} is not yours")

    async def _my_conversations(self) -> dict[str, tuple[bytes | None, ConversationRecord]]:
        """Every conversation of this user: list entries, plus groups joined without one."""
        found: dict[str, tuple[bytes | None, ConversationRecord]] = dict(
            await self._conversations.entries(self.user_id)
        )
        for group_id in await self._joined():
            conversation_id = group_conversation_id(group_id)
            if conversation_id not in found:
                found[conversation_id] = (
                    None,
                    ConversationRecord(conversation_id, GROUP_CHAT, "", group_id),
                )
        return found

    async def _joined(self) -> set[str]:
        return set(await self._services.storage.joined_group_ids(self.user_id))

    async def _max_seqs(
        self, mine: dict[str, tuple[bytes | None, ConversationRecord]], ids: Sequence[str]
    ) -> list[int]:
        """Max seq of each conversation as this user may see it: a group the user has
        left shows nothing sent after they left (those messages are not theirs)."""
        highest = await self._messages.max_seqs(ids)
        joined = await self._joined()
        left = [
            cid
            for cid in ids
            if mine[cid][1].session_type == GROUP_CHAT and mine[cid][1].group_id not in joined
        ]
        left_at = dict(
            zip(
                left,
                await self._services.storage.left_group_seqs(
                    self.user_id, [mine[cid][1].group_id for cid in left]
                ),
                strict=True,
            )
        )
        return [
            min(top, left_at[cid] or 0) if cid in left_at else top
            for cid, top in zip(ids, highest, strict=True)
        ]

    # -- seqs and messages ----------------------------------------------------------------

    async def max_seqs(self, command: Command) -> m.Reply:
        mine = await self._my_conversations()
        ids = sorted(mine)
        highest = await self._max_seqs(mine, ids)
        states = await self._conversations.read_state(self.user_id, ids)
        return m.MaxSeqs(
            rid=command.request.rid,
            conversations=[
                m.ConversationSeqs(
                    conversation_id=cid, max_seq=top, has_read_seq=read, min_seq=cleared
                )
                for cid, top, (read, cleared) in zip(ids, highest, states, strict=True)
            ],
        )

    async def _visible(self, conversation_id: str, seqs: Sequence[int]) -> list[m.ChatMessage]:
        [(_, cleared)] = await self._conversations.read_state(self.user_id, [conversation_id])
        wanted = [s for s in seqs if s > cleared]
        deleted = await self._conversations.deleted(self.user_id, conversation_id, wanted)
        wanted = [s for s in wanted if s not in deleted]
        return [
            decode_message(s, raw)
            for s, raw in await self._messages.get_many(conversation_id, wanted)
        ]

    async def pull(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.PullMessages)
        await self._default_record(request.conversation_id)
        [top] = await self._messages.max_seqs([request.conversation_id])
        last = min(request.to_seq or top, top)
        if request.from_seq > last:
            return m.Messages(rid=request.rid, items=[], is_end=True)
        if request.descending:
            seqs = list(range(last, max(request.from_seq, last - request.limit + 1) - 1, -1))
            is_end = seqs[-1] <= request.from_seq
        else:
            seqs = list(
                range(request.from_seq, min(last, request.from_seq + request.limit - 1) + 1)
            )
            is_end = seqs[-1] >= last
        return m.Messages(
            rid=request.rid, items=await self._visible(request.conversation_id, seqs), is_end=is_end
        )

    async def history(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.GetHistory)
        conversation_id = request.conversation_id
        await self._default_record(conversation_id)
        [top] = await self._messages.max_seqs([conversation_id])
        start = top if not request.before_seq else min(request.before_seq - 1, top)
        if request.before_time:
            start = min(
                start, await self._messages.last_seq_before(conversation_id, request.before_time)
            )
        [(_, cleared)] = await self._conversations.read_state(self.user_id, [conversation_id])
        floor = cleared + 1
        seqs = list(range(start, max(floor, start - request.limit + 1) - 1, -1))
        is_end = not seqs or seqs[-1] <= floor
        return m.Messages(
            rid=request.rid, items=await self._visible(conversation_id, seqs), is_end=is_end
        )

    # -- read state -----------------------------------------------------------------------

    async def mark_read(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.MarkRead)
        record = await self._default_record(request.conversation_id)
        marked = await self._conversations.mark_read(
            self.user_id, request.conversation_id, request.seq
        )
        if not marked.advanced:
            # Nothing changed (the seq was at or below the has-read seq): nothing to tell,
            # so a client repeating mark_read cannot make the peer's devices busy.
            return m.Ok(rid=request.rid)
        self._push_read_state(command, request.conversation_id, marked.has_read_seq, marked.cleared)
        if record.session_type == SINGLE_CHAT:
            receipt = _encoder.encode(
                m.ReadReceipt(
                    conversation_id=request.conversation_id,
                    reader_user_id=self.user_id,
                    has_read_seq=marked.has_read_seq,
                )
            )
            self._services.hub.push_soon([record.peer_user_id], receipt)
        return m.Ok(rid=request.rid)

    def _push_read_state(
        self, command: Command, conversation_id: str, read: int, cleared: int
    ) -> None:
        frame = _encoder.encode(
            m.ReadStateChanged(conversation_id=conversation_id, has_read_seq=read, min_seq=cleared)
        )
        self._services.hub.push_soon([self.user_id], frame, command.session.session_id)

    async def delete_messages(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.DeleteMessages)
        await self._default_record(request.conversation_id)
        await self._conversations.delete_for_user(
            self.user_id, request.conversation_id, request.seqs
        )
        return m.Ok(rid=request.rid)

    async def clear(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.ClearConversation)
        await self._default_record(request.conversation_id)
        cleared, read = await self._conversations.clear(self.user_id, request.conversation_id)
        self._push_read_state(command, request.conversation_id, read, cleared)
        return m.Ok(rid=request.rid)

    # -- the conversation list ------------------------------------------------------------

    async def conversations(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.GetConversations)
        mine = await self._my_conversations()
        ids = list(mine)
        highest = await self._max_seqs(mine, ids)
        states = await self._conversations.read_state(self.user_id, ids)
        views: list[m.ConversationView] = []
        for cid, top, (read, cleared) in zip(ids, highest, states, strict=True):
            record = mine[cid][1]
            if record.hidden and top <= record.hidden_at_seq:
                continue
            seen = max(read, cleared)
            unread = max(0, top - seen - await self._messages.uncounted(cid, seen, top))
            latest = await self._visible(cid, [top]) if top else []
            views.append(
                m.ConversationView(
                    info=conversation_info(record),
                    max_seq=top,
                    has_read_seq=read,
                    min_seq=cleared,
                    unread_count=unread,
                    latest_message=latest[0] if latest else None,
                )
            )
        views.sort(key=_list_order)
        page = views[request.offset : request.offset + request.limit]
        return m.Conversations(rid=request.rid, items=page, total=len(views))

    async def _change(
        self,
        command: Command,
        ids: Sequence[str],
        change: Callable[[ConversationRecord], ConversationRecord],
    ) -> list[ConversationRecord]:
        for _ in range(STEP_ATTEMPTS):
            current = await self._conversations.entries(self.user_id)
            changes: list[tuple[bytes | None, ConversationRecord]] = []
            for cid in dict.fromkeys(ids):
                read, record = current.get(cid, (None, None))
                if record is None:
                    record = await self._default_record(cid)
                changes.append((read, change(record)))
            try:
                await self._conversations.write(self.user_id, changes)
            except StaleRead:
                continue
            updated = [record for _, record in changes]
            frame = _encoder.encode(
                m.ConversationChanged(conversations=[conversation_info(r) for r in updated])
            )
            self._services.hub.push_soon([self.user_id], frame, command.session.session_id)
            return updated
        raise ProtocolError(ErrorCode.UNAVAILABLE, "the conversations kept changing; try again")

    async def set_conversations(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.SetConversations)
        now = now_ms()

        def change(record: ConversationRecord) -> ConversationRecord:
            if request.pinned is not None:
                record = replace(record, pinned=request.pinned)
            if request.recv_opt is not None:
                record = replace(record, recv_opt=request.recv_opt)
            if request.draft_text is not None:
                record = replace(record, draft_text=request.draft_text, draft_time=now)
            if request.ex is not None:
                record = replace(record, ex=request.ex)
            return record

        await self._change(command, request.conversation_ids, change)
        return m.Ok(rid=request.rid)

    async def hide(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.HideConversation)
        [top] = await self._messages.max_seqs([request.conversation_id])
        await self._change(
            command,
            [request.conversation_id],
            lambda record: replace(record, hidden=True, hidden_at_seq=top),
        )
        return m.Ok(rid=request.rid)

    async def sync(self, command: Command) -> m.Reply:
        request = command.request
        assert isinstance(request, m.SyncConversations)
        changes = await self._conversations.sync(self.user_id, request.version_id, request.version)
        records = sorted(
            (decode_record(raw) for raw in changes.upserts.values()),
            key=lambda r: r.conversation_id,
        )
        return m.ConversationSync(
            rid=request.rid,
            kind=changes.kind,
            version_id=changes.version_id,
            version=changes.version,
            inserts=[
                conversation_info(r) for r in records if r.conversation_id in changes.inserted
            ],
            updates=[
                conversation_info(r) for r in records if r.conversation_id not in changes.inserted
            ],
            deletes=changes.deletes,
        )


def _list_order(view: m.ConversationView) -> tuple[int, int]:
    latest = view.latest_message.send_time if view.latest_message else 0
    return (0 if view.info.pinned else 1, -max(latest, view.info.draft_time))
