"""Leases that name the one node whose actor owns an entity (a user or a group).

With several nodes, commands for an entity can arrive anywhere; the node that
holds the entity's lease runs them, and the others forward them there. The
lease key is ``<entity base>:owner`` (e.g. ``{u:alice}:owner``) with a time
limit; the owner renews it while it uses it, and any node may take over a lease
whose holder stopped heartbeating. Methods are awaited on the node's trio loop.
"""

from __future__ import annotations

from storage.keys import Keys
from storage.pipelined import PipelinedRedis
from storage.scripts import Scripts


class LeaseStore:
    def __init__(self, client: PipelinedRedis, keys: Keys, scripts: Scripts, node_id: str) -> None:
        self._redis = client
        self._keys = keys
        self._scripts = scripts
        self.node_id = node_id

    def key(self, kind: str, entity_id: str) -> str:
        base = (
            self._keys.group_tag(entity_id) if kind == "group" else self._keys.user_tag(entity_id)
        )
        return f"{base}:owner"

    async def claim(self, kind: str, entity_id: str, lease_ms: int) -> tuple[str, str]:
        """Take, renew or take over the lease if possible: the owner's node id after,
        and the gone node it was taken over from ("" if none)."""
        owner, taken_from = await self._scripts.run(
            "lease_claim", [self.key(kind, entity_id)], [self.node_id, lease_ms, self._keys.prefix]
        )
        return _text(owner), _text(taken_from)

    async def release(self, kind: str, entity_id: str) -> None:
        await self._scripts.run("lease_release", [self.key(kind, entity_id)], [self.node_id])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
