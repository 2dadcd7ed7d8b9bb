"""Messages of conversations, by per-conversation seq.

A conversation's keys share the hash tag ``{c:<conversation id>}``: ``:meta``
(the max seq), ``:msgs`` (seq -> stored message), ``:cmid`` (client msg id ->
seq, for idempotent sends), ``:times`` (seq by send time, for history by time)
``:uncounted`` (seqs that never count as unread, e.g. revoke notices),
``:not_receiving`` (users whose conversation entry has recv_opt 1, "do not
receive": kept by follow-ups of ``ConversationStore.write``, read by the steps
that store a message or a revoke notice, so leaving them out of the push costs no
extra round trip), ``:entered`` (users known to have a conversation entry: a send
gives an entry only to users not in it), ``:reads`` (has-read seqs and cleared-up-to
seqs, see ``storage.conversations``), ``:gate`` (single chat: the pair's blocks and
friendships as the send checks them, ``message_send.lua``) and ``:outbox`` (the
follow-ups of sends, ``storage.followups``).
Every step here runs on the conversation's slot alone. The stored message is
opaque bytes here; its seq is the key it is stored under. Methods are awaited on
the node's trio loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from storage.errors import StaleRead, StepRefused
from storage.followups import FollowUpStore
from storage.keys import Keys
from storage.pipelined import PipelinedRedis
from storage.scripts import Scripts


@dataclass(frozen=True)
class Stored:
    seq: int
    duplicate: bool
    """True when the client msg id was sent before: ``seq`` is the first send's."""
    not_receiving: frozenset[str] = frozenset()
    """Users who set recv_opt 1 ("do not receive") for the conversation, read in the
    same step that stored the message (empty for a duplicate)."""
    nodes: frozenset[str] | None = None
    """With ``locate``: the nodes holding sessions of the sender and the users given
    entries, read in the same step (None otherwise, and for a duplicate)."""


@dataclass(frozen=True)
class StoredNotice:
    """A revoke notice as stored: its seq, and who does not receive it (as ``Stored``)."""

    seq: int
    not_receiving: frozenset[str]


def _status(reply: list[Any]) -> str:
    return reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])


def _decoded(raw: Iterable[bytes | str]) -> frozenset[str]:
    return frozenset(u.decode() if isinstance(u, bytes) else u for u in raw)


def _nodes_of(presences: Iterable[Iterable[bytes]]) -> frozenset[str]:
    """The nodes named by ``:presence`` values ('<platform>:<node>:<token id>:<since>')."""
    return frozenset(value.decode().split(":", 2)[1] for values in presences for value in values)


class MessageStore:
    def __init__(
        self, client: PipelinedRedis, keys: Keys, scripts: Scripts, followups: FollowUpStore
    ) -> None:
        self._redis = client
        self._keys = keys
        self._scripts = scripts
        self._followups = followups

    def _base(self, conversation_id: str) -> str:
        return self._keys.conversation_tag(conversation_id)

    async def send(
        self,
        conversation_id: str,
        client_msg_id: str,
        payload: bytes,
        send_time: int,
        counts_as_unread: bool,
        sender: str,
        entries: dict[str, bytes],
        peer_checks: Literal["", "peer", "friends"] = "",
        peer: str = "",
        locate: bool = False,
    ) -> Stored:
        """Store a message; ``entries`` are conversation-list entries created for users
        who have none yet. For single chat, ``peer_checks`` makes the same step refuse
        (``StepRefused``) an unknown peer, a block either way, and with
        ``"friends"`` a sender and peer who are not each other's friends. ``locate``
        also returns the nodes holding sessions of the sender and ``peer`` (read in
        the same batch, for pushing to other nodes without another round trip).

        One step on the conversation's slot (``message_send.lua``); the entries of
        users it had not seen are follow-ups, applied here before returning, after
        those the conversation had pending. The first single-chat send of a pair
        fills the pair's gate first (``_fill_gate``)."""
        base = self._base(conversation_id)
        args: list[Any] = [
            conversation_id, client_msg_id, payload, send_time,
            "1" if counts_as_unread else "0", peer_checks, sender, peer,
        ]  # fmt: skip
        for user in (sender, *(u for u in entries if u != sender)):
            if user in entries:
                args += [user, self._keys.user_tag(user), entries[user]]
        located = [sender, *([peer] if peer and peer != sender else [])] if locate else []
        for attempt in range(2):
            presences: list[list[bytes]] = []
            if located:
                group = self._redis.pipeline(transaction=False)
                self._scripts.add(group, "message_send", [base], args)
                for user in located:
                    group.hvals(self._keys.presence(user))
                reply, *presences = await group.execute()
            else:
                reply = await self._scripts.run("message_send", [base], args)
            status = _status(reply)
            if reply[3] != [b""]:  # a steady-state send has no outbox entry
                await self._followups.apply(base, reply[3])
            if status == "NEED_GATE" and attempt == 0:
                await self._fill_gate(conversation_id, sender, peer)
                continue
            break
        if status == "NEED_GATE":  # filled, yet lacking a field: nothing deletes them
            raise StaleRead()
        if status not in ("OK", "DUP"):
            raise StepRefused(status)
        if status == "DUP":
            return Stored(int(reply[1]), True)
        nodes = _nodes_of(presences) if locate else None
        return Stored(int(reply[1]), False, _decoded(reply[2]), nodes)

    async def _fill_gate(self, conversation_id: str, sender: str, peer: str) -> None:
        """Write the gate fields still absent (``conversation_gate_init.lua``) from
        ``_gate_fields``. Raises ``StepRefused("USER_NOT_FOUND")`` for an unknown peer,
        writing nothing."""
        fields = await self._gate_fields(sender, peer)
        if not fields:
            raise StepRefused("USER_NOT_FOUND")
        await self._scripts.run("conversation_gate_init", [self._base(conversation_id)], fields)

    async def _gate_fields(self, sender: str, peer: str) -> list[str]:
        """Whether ``peer`` exists and what each of the two users' ``:black`` and
        ``:friends`` say of the other (plain reads, one per slot, one batch), as gate
        fields and values; none for an unknown peer."""
        group = self._redis.pipeline(transaction=False)
        group.exists(self._keys.account(peer))
        for owner, other in ((sender, peer), (peer, sender)):
            group.hexists(f"{self._keys.user_tag(owner)}:black", other)
            group.hexists(f"{self._keys.user_tag(owner)}:friends", other)
        exists, sender_blocks, sender_friend, peer_blocks, peer_friend = await group.execute()
        if not exists:
            return []

        def flag(value: object) -> str:
            return "1" if value else "0"

        return [
            "exists", "1",
            f"black:{sender}", flag(sender_blocks), f"friend:{sender}", flag(sender_friend),
            f"black:{peer}", flag(peer_blocks), f"friend:{peer}", flag(peer_friend),
        ]  # fmt: skip

    async def seq_of(self, conversation_id: str, client_msg_id: str) -> int | None:
        """The seq a client msg id was stored under, if it was. For a stored one (a
        resend answered without running the send step) this first lands the
        follow-ups the conversation still has pending, as the step's DUP would."""
        base = self._base(conversation_id)
        group = self._redis.pipeline(transaction=False)
        group.hget(f"{base}:cmid", client_msg_id)
        group.exists(f"{base}:outbox")
        raw, pending = await group.execute()
        if raw is None:
            return None
        if pending:
            await self._followups.replay_source(base)
        return int(raw)

    async def get(self, conversation_id: str, seq: int) -> bytes | None:
        return cast(
            bytes | None, await self._redis.hget(f"{self._base(conversation_id)}:msgs", seq)
        )

    async def get_many(self, conversation_id: str, seqs: Sequence[int]) -> list[tuple[int, bytes]]:
        if not seqs:
            return []
        raw = cast(
            list[bytes | None], await self._redis.hmget(f"{self._base(conversation_id)}:msgs", seqs)
        )
        return [(s, r) for s, r in zip(seqs, raw, strict=True) if r is not None]

    async def max_seqs(self, conversation_ids: Sequence[str]) -> list[int]:
        pipe = self._redis.pipeline(transaction=False)
        for conversation_id in conversation_ids:
            pipe.hget(f"{self._base(conversation_id)}:meta", "seq")
        return [int(v or 0) for v in await pipe.execute()]

    async def last_seq_before(self, conversation_id: str, before_time_ms: int) -> int:
        """The newest seq sent before ``before_time_ms``, or 0."""
        found = cast(
            list[bytes],
            await self._redis.zrevrangebyscore(
                f"{self._base(conversation_id)}:times", f"({before_time_ms}", "-inf", 0, 1
            ),
        )
        return int(found[0]) if found else 0

    async def uncounted(self, conversation_id: str, after_seq: int, up_to_seq: int) -> int:
        """How many seqs in (after, up_to] never count as unread."""
        if up_to_seq <= after_seq:
            return 0
        key = f"{self._base(conversation_id)}:uncounted"
        return int(await self._redis.zcount(key, f"({after_seq}", up_to_seq))

    async def revoke(
        self,
        conversation_id: str,
        seq: int,
        read: bytes,
        revoked: bytes,
        notice_client_msg_id: str,
        notice: bytes,
        now_ms: int,
    ) -> StoredNotice:
        """Replace message ``seq`` (if still ``read``) and append the notice."""
        reply = await self._scripts.run(
            "message_revoke",
            [self._base(conversation_id)],
            [seq, read, revoked, notice_client_msg_id, notice, now_ms],
        )
        status = _status(reply)
        if status == "RETRY":
            raise StaleRead()
        if status != "OK":
            raise StepRefused(status)
        return StoredNotice(int(reply[1]), _decoded(reply[2]))

    async def not_receiving(self, conversation_id: str) -> frozenset[str]:
        """Users who set recv_opt 1 for the conversation (one read; for typing, which
        is pushed without a storing step)."""
        return _decoded(
            cast(
                set[bytes],
                await self._redis.smembers(f"{self._base(conversation_id)}:not_receiving"),
            )
        )
