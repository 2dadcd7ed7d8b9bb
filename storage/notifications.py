"""Per-user notification logs: each notification gets the next ``seq`` of its
user and is kept (up to a limit) so devices that were offline can pull it.

The stored payload is opaque bytes to this module (the encoded notification).
Methods are awaited on the node's trio loop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from storage.keys import Keys
from storage.pipelined import PipelinedRedis
from storage.scripts import Scripts


@dataclass(frozen=True)
class NotificationPage:
    items: list[tuple[int, bytes]]
    max_seq: int
    min_seq: int


class NotificationStore:
    def __init__(self, client: PipelinedRedis, keys: Keys, scripts: Scripts, keep: int) -> None:
        self._redis = client
        self._keys = keys
        self._scripts = scripts
        self.keep = keep

    async def append(self, user_ids: Sequence[str], payload: bytes) -> list[int]:
        """Append one notification to each user's log; the seq it got in each."""
        if not user_ids:
            return []
        keys = [self._keys.user_tag(u) for u in user_ids]
        seqs = await self._scripts.run("notify_users", keys, [payload, self.keep])
        return [int(s) for s in seqs]

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
