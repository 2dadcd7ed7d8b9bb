"""Per-conversation seq tracking for a device: no message missed, none twice.

Pushes arrive in seq order, but a device can miss some (it was offline, it
reconnected, a node went away). :class:`MessageTracker` remembers the highest
seq the device holds in each conversation, pulls what is missing whenever a
push skips ahead, and brings every conversation up to date with
:meth:`MessageTracker.catch_up` (call it after signing in and after every
reconnect).
"""

from __future__ import annotations

from client.chat import ChatMethods
from protocol import messages as m

PAGE = 100


class MessageTracker:
    def __init__(self, client: ChatMethods, last_seqs: dict[str, int] | None = None) -> None:
        self._client = client
        self.last_seqs: dict[str, int] = dict(last_seqs or {})
        """Highest seq held per conversation (persist it with the messages)."""

    async def on_push(self, message: m.ChatMessage) -> list[m.ChatMessage]:
        """The messages to show for a pushed one, in seq order: the ones it skipped
        over (pulled), then itself. Empty if the device already has it."""
        conversation_id = message.conversation_id
        last = self.last_seqs.get(conversation_id)
        if last is not None and message.seq <= last:
            return []
        missing: list[m.ChatMessage] = []
        if last is not None and message.seq > last + 1:
            missing = await self._pull(conversation_id, last + 1, message.seq - 1)
        self.last_seqs[conversation_id] = message.seq
        return [*missing, message]

    async def catch_up(self) -> list[m.ChatMessage]:
        """Everything newer than what the device holds, in every conversation it knows
        of, oldest first per conversation. Conversations it has never seen start at
        their current max seq (load their history on demand)."""
        found: list[m.ChatMessage] = []
        for conversation_id, seqs in (await self._client.get_max_seqs()).items():
            last = self.last_seqs.get(conversation_id)
            if last is None:
                self.last_seqs[conversation_id] = seqs.max_seq
                continue
            if seqs.max_seq > last:
                found += await self._pull(conversation_id, last + 1, seqs.max_seq)
                self.last_seqs[conversation_id] = seqs.max_seq
        return found

    async def _pull(self, conversation_id: str, first: int, last: int) -> list[m.ChatMessage]:
        pulled: list[m.ChatMessage] = []
        start = first
        while start <= last:
            page = await self._client.pull_messages(conversation_id, start, last, limit=PAGE)
            pulled += page.items
            start += PAGE
        return pulled
