"""Messages of conversations, by per-conversation seq.

A conversation's keys share the hash tag ``{c:<conversation id>}``: ``:meta``
(the max seq), ``:msgs`` (seq -> stored message), ``:cmid`` (client msg id ->
seq, for idempotent sends), ``:times`` (seq by send time, for history by time)
``:uncounted`` (seqs that never count as unread, e.g. revoke notices) and
``:not_receiving`` (users whose conversation entry has recv_opt 1, "do not
receive": written with the entry by ``ConversationStore.write``, read by the
steps that store a message or a revoke notice, so leaving them out of the push
costs no extra round trip).
The stored message is opaque bytes here; its seq is the key it is stored
under. Methods are awaited on the node's trio loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from storage.errors import StaleRead, StepRefused
from storage.keys import Keys
from storage.pipelined import PipelinedRedis
from storage.scripts import Scripts
from storage.versionlog import new_version_id


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


class MessageStore:
    def __init__(
        self, client: PipelinedRedis, keys: Keys, scripts: Scripts, log_length: int
    ) -> None:
        self._redis = client
        self._keys = keys
        self._scripts = scripts
        self.log_length = log_length

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
        also returns the nodes holding sessions of the sender and those users (for
        pushing to other nodes without another round trip)."""
        users = [sender, *(u for u in entries if u != sender)]
        if peer_checks:
            users = [sender, peer]
        keys = [self._base(conversation_id), *(self._keys.user_tag(u) for u in users)]
        args: list[Any] = [
            conversation_id, client_msg_id, payload, send_time,
            "1" if counts_as_unread else "0", self.log_length, new_version_id(),
            peer_checks, sender, peer, "1" if locate else "0",
        ]  # fmt: skip
        args += [entries.get(u, b"") for u in users]
        reply = await self._scripts.run("message_send", keys, args)
        status = _status(reply)
        if status not in ("OK", "DUP"):
            raise StepRefused(status)
        if status == "DUP":
            return Stored(int(reply[1]), True)
        nodes = _decoded(reply[3]) if locate else None
        return Stored(int(reply[1]), False, _decoded(reply[2]), nodes)

    async def seq_of(self, conversation_id: str, client_msg_id: str) -> int | None:
        """The seq a client msg id was stored under, if it was."""
        raw = cast(
            bytes | None,
            await self._redis.hget(f"{self._base(conversation_id)}:cmid", client_msg_id),
        )
        return None if raw is None else int(raw)

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
