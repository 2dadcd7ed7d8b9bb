"""Each user's conversations: list entries (settings), read state, and what the
user removed from their own view.

Per user (hash tag ``{u:<id>}``): ``:conv`` (conversation id -> entry, synced
through the version log ``:vlog:convs``) and ``:deleted:<conversation id>`` (seqs
deleted for this user only). Per conversation (hash tag ``{c:<id>}``), so that the
send that raises the sender's has-read seq and the read steps are each one step on
one slot: ``:reads``, field ``<user id>`` (the user's has-read seq) and field
``cleared:<user id>`` (the seq the user's view starts after; user ids cannot contain
``:``). Methods are awaited on the node's trio loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import msgspec

from storage.errors import StaleRead
from storage.followups import FollowUpStore
from storage.keys import Keys
from storage.pipelined import PipelinedRedis
from storage.scripts import Scripts
from storage.versionlog import Changes, new_version_id, read_changes

DO_NOT_RECEIVE = 1
"""``recv_opt`` value: the user's devices are not pushed the conversation's new
messages from others (they are stored, and pulled by max seq). 0 receives and
notifies; 2 receives, and the client does not notify (the server pushes it as 0)."""


class ConversationRecord(msgspec.Struct, frozen=True, array_like=True):
    conversation_id: str
    session_type: int
    peer_user_id: str
    group_id: str
    pinned: bool = False
    recv_opt: int = 0
    draft_text: str = ""
    draft_time: int = 0
    ex: str = ""
    hidden: bool = False
    hidden_at_seq: int = 0


@dataclass(frozen=True)
class ReadMark:
    """What marking a conversation read did."""

    has_read_seq: int
    """The user's has-read seq now."""
    max_seq: int
    advanced: bool
    """Whether the stored has-read seq moved (False: it was already at or past the seq)."""
    cleared: int
    """The seq the user's view starts after (read in the same step)."""


encode_record = msgspec.msgpack.Encoder().encode
_decode_record = msgspec.msgpack.Decoder(ConversationRecord).decode


def decode_record(raw: bytes) -> ConversationRecord:
    return _decode_record(raw)


class ConversationStore:
    def __init__(
        self,
        client: PipelinedRedis,
        keys: Keys,
        scripts: Scripts,
        log_length: int,
        followups: FollowUpStore,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._scripts = scripts
        self.log_length = log_length
        self._followups = followups

    def _base(self, user_id: str) -> str:
        return self._keys.user_tag(user_id)

    def _reads(self, conversation_id: str) -> str:
        return f"{self._keys.conversation_tag(conversation_id)}:reads"

    async def entries(self, user_id: str) -> dict[str, tuple[bytes, ConversationRecord]]:
        raw = cast(dict[bytes, bytes], await self._redis.hgetall(f"{self._base(user_id)}:conv"))
        return {k.decode(): (v, _decode_record(v)) for k, v in raw.items()}

    async def entry(
        self, user_id: str, conversation_id: str
    ) -> tuple[bytes, ConversationRecord] | None:
        raw = cast(
            bytes | None, await self._redis.hget(f"{self._base(user_id)}:conv", conversation_id)
        )
        return None if raw is None else (raw, _decode_record(raw))

    async def write(
        self, user_id: str, changes: Sequence[tuple[bytes | None, ConversationRecord]]
    ) -> None:
        """Write entries, each only if it is still what was read (None: absent).

        A step on the user's slot (``conversation_set.lua``) whose follow-ups, applied
        here before returning, put the user in, or take them out of, each
        conversation's ``:not_receiving`` set (see ``storage.messages``), so the set
        holds exactly the users whose entry has recv_opt ``DO_NOT_RECEIVE`` once a
        write is acknowledged, and add them to its ``:entered`` set. Entries are never
        deleted (they outlive group membership), so neither are set members but by a
        write of the entry."""
        base = self._base(user_id)
        args: list[object] = [self.log_length, new_version_id(), user_id]
        for read, record in changes:
            args += [
                record.conversation_id,
                self._keys.conversation_tag(record.conversation_id),
                read or b"",
                encode_record(record),
                "1" if record.recv_opt == DO_NOT_RECEIVE else "0",
            ]
        group = self._redis.pipeline(transaction=False)
        self._followups.note_pending(group, base)
        self._scripts.add(group, "conversation_set", [base], args)
        _, reply = await group.execute()
        status = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
        await self._followups.apply(base, reply[1], noted=True)
        if status == "RETRY":
            raise StaleRead()

    async def read_state(
        self, user_id: str, conversation_ids: Sequence[str]
    ) -> list[tuple[int, int]]:
        """(has-read seq, cleared-up-to seq) of each conversation: one read per
        conversation (each on its slot), in one batch."""
        if not conversation_ids:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for conversation_id in conversation_ids:
            pipe.hmget(self._reads(conversation_id), [user_id, f"cleared:{user_id}"])
        return [(int(r or 0), int(c or 0)) for r, c in await pipe.execute()]

    async def mark_read(self, user_id: str, conversation_id: str, seq: int) -> ReadMark:
        """Raise the has-read seq to ``seq`` (0: the max seq), never lowering it."""
        read, highest, advanced, cleared = await self._scripts.run(
            "conversation_mark_read",
            [self._keys.conversation_tag(conversation_id)],
            [user_id, seq],
        )
        return ReadMark(int(read), int(highest), bool(advanced), int(cleared))

    async def clear(self, user_id: str, conversation_id: str) -> tuple[int, int]:
        """Start the user's view after the max seq; returns (that seq, has-read seq)."""
        cleared, read = await self._scripts.run(
            "conversation_clear", [self._keys.conversation_tag(conversation_id)], [user_id]
        )
        return int(cleared), int(read)

    async def delete_for_user(
        self, user_id: str, conversation_id: str, seqs: Sequence[int]
    ) -> None:
        await self._redis.sadd(f"{self._base(user_id)}:deleted:{conversation_id}", *seqs)

    async def deleted(self, user_id: str, conversation_id: str, seqs: Sequence[int]) -> set[int]:
        if not seqs:
            return set()
        flags = cast(
            list[int],
            await self._redis.smismember(
                f"{self._base(user_id)}:deleted:{conversation_id}", list(seqs)
            ),
        )
        return {s for s, flag in zip(seqs, flags, strict=True) if flag}

    async def sync(self, user_id: str, version_id: str, version: int) -> Changes:
        base = self._base(user_id)
        return await read_changes(
            self._scripts, f"{base}:vlog:convs", f"{base}:conv", version_id, version
        )
