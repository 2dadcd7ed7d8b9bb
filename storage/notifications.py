"""Per-user notification logs: each notification gets the next ``seq`` of its
user and is kept (up to a limit) so devices that were offline can pull it.

Keys of user ``U``: ``U:ntf`` (hash seq -> payload) and ``U:ntf:meta`` (``seq``, the
newest; ``min``, the oldest kept), written by ``lua/lib/notify.lua``.

One notification to several users (:meth:`NotificationStore.append`) is a step on
its sender's slot that records a ``notify`` follow-up per user in the sender's
outbox (``lua/notify_users.lua``), then applied to each user's slot
(``storage/followups.py``): so it runs on a Redis Cluster, and a node that dies
half-way leaves an entry that is replayed, each user getting it exactly once.

The stored payload is opaque bytes to this module (the encoded notification).
Methods are awaited on the node's trio loop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from storage.followups import FollowUpStore
from storage.keys import Keys
from storage.pipelined import PipelinedRedis
from storage.scripts import Scripts


@dataclass(frozen=True)
class NotificationPage:
    items: list[tuple[int, bytes]]
    max_seq: int
    min_seq: int


class NotificationStore:
    def __init__(
        self,
        client: PipelinedRedis,
        keys: Keys,
        scripts: Scripts,
        followups: FollowUpStore,
        keep: int,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._scripts = scripts
        self._followups = followups
        self.keep = keep

    async def append(self, user_ids: Sequence[str], payload: bytes, *, sender: str) -> list[int]:
        """Append one notification to each user's log, as a step of user ``sender``
        (whose actor runs it, one step at a time); the seq it got in each (0 for a
        user listed twice after the first, and in the unlikely case that a replay
        by another node applied it first)."""
        unique = list(dict.fromkeys(user_ids))
        if not unique:
            return []
        source = self._keys.user_tag(sender)
        group = self._redis.pipeline(transaction=False)
        self._followups.note_pending(group, source)
        self._scripts.add(
            group, "notify_users", [source], [payload, *(self._keys.user_tag(u) for u in unique)]
        )
        _, entries = await group.execute()
        applied = await self._followups.apply(source, entries, noted=True)
        seqs = {
            user: int(results[0]) if results else 0
            for user, results in zip(unique, applied[-1], strict=True)
        }
        seen: set[str] = set()
        out: list[int] = []
        for user in user_ids:
            out.append(0 if user in seen else seqs[user])
            seen.add(user)
        return out

    async def pull(self, user_id: str, after_seq: int, limit: int) -> NotificationPage:
        """Notifications with seq > ``after_seq`` (oldest first, at most ``limit``)."""
        base = self._keys.user_tag(user_id)
        max_raw, min_raw = cast(
            list[bytes | None], await self._redis.hmget(f"{base}:ntf:meta", "seq", "min")
        )
        max_seq, min_seq = int(max_raw or 0), int(min_raw or 1)
        first = max(after_seq + 1, min_seq)
        last = min(max_seq, first + limit - 1)
        seqs = list(range(first, last + 1))
        values = (
            cast(list[bytes | None], await self._redis.hmget(f"{base}:ntf", seqs)) if seqs else []
        )
        items = [(s, v) for s, v in zip(seqs, values, strict=True) if v is not None]
        return NotificationPage(items, max_seq, min_seq)
