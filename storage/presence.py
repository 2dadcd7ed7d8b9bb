"""Which sessions of which users are online, on which node, kept in Redis.

A node refreshes a key with a TTL while it is alive; presence entries that
name a node whose key has expired are ignored by readers and removed by the
next writer, so a crashed node's sessions do not stay "online".
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from storage.keys import Keys


class PresenceStore:
    def __init__(self, client: redis.Redis, keys: Keys, node_id: str) -> None:
        self._redis = client
        self._keys = keys
        self.node_id = node_id

    def heartbeat(self, ttl_s: int) -> None:
        """Mark this node alive for ``ttl_s`` seconds."""
        self._redis.set(self._keys.node(self.node_id), "1", ex=ttl_s)

    def node_gone(self) -> None:
        self._redis.delete(self._keys.node(self.node_id))

    def session_online(self, user_id: str, session_id: str, platform: int) -> None:
        self._redis.hset(self._keys.presence(user_id), session_id, f"{platform}:{self.node_id}")

    def session_offline(self, user_id: str, session_id: str) -> None:
        self._redis.hdel(self._keys.presence(user_id), session_id)

    def online_platforms(self, user_ids: Sequence[str]) -> dict[str, list[int]]:
        """Sorted online platforms of each user, counting only sessions on live nodes."""
        pipe = self._redis.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.hgetall(self._keys.presence(user_id))
        entries: list[dict[bytes, bytes]] = pipe.execute()
        nodes = sorted(
            {value.split(b":", 1)[1] for sessions in entries for value in sessions.values()}
        )
        alive: set[bytes] = set()
        if nodes:
            flags = self._redis.mget([self._keys.node(n.decode()) for n in nodes])
            alive = {node for node, flag in zip(nodes, flags, strict=True) if flag is not None}
        result: dict[str, list[int]] = {}
        for user_id, sessions in zip(user_ids, entries, strict=True):
            platforms = {
                int(value.split(b":", 1)[0])
                for value in sessions.values()
                if value.split(b":", 1)[1] in alive
            }
            result[user_id] = sorted(platforms)
        return result
