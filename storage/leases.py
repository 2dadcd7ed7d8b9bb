"""Leases that name the one node whose actor owns an entity (a user or a group).

With several nodes, commands for an entity can arrive anywhere; the node that
holds the entity's lease runs them, and the others forward them there. The
lease key is ``<entity base>:owner`` (e.g. ``{u:alice}:owner``) with a time
limit; the owner renews it while it uses it, and any node may take over a lease
whose holder stopped heartbeating: its node key is read first (in the node's own
slot), then the lease is taken over by a compare-and-set on the holder read, in the
lease's slot. Methods are awaited on the node's trio loop.
"""

from __future__ import annotations

from storage.keys import Keys
from storage.pipelined import PipelinedRedis
from storage.replies import text
from storage.scripts import Scripts


class LeaseStore:
    def __init__(self, client: PipelinedRedis, keys: Keys, scripts: Scripts, node_id: str) -> None:
        self._redis = client
        self._keys = keys
        self._scripts = scripts
        self.node_id = node_id

    async def claim(self, kind: str, entity_id: str, lease_ms: int) -> tuple[str, str]:
        """Take, renew or take over the lease if possible: the owner's node id after,
        and the gone node it was taken over from ("" if none). One step when the lease
        is free or this node's; two more when another node holds it (is its node key
        there? if not, take the lease over unless it changed hands meanwhile)."""
        key = self._keys.lease(kind, entity_id)
        owner, _ = await self._scripts.run("lease_claim", [key], [self.node_id, lease_ms, ""])
        owner = text(owner)
        if owner == self.node_id or await self._redis.exists(self._keys.node(owner)):
            return owner, ""
        owner, taken_from = await self._scripts.run(
            "lease_claim", [key], [self.node_id, lease_ms, owner]
        )
        return text(owner), text(taken_from)

    async def release(self, kind: str, entity_id: str) -> None:
        await self._scripts.run(
            "lease_release", [self._keys.lease(kind, entity_id)], [self.node_id]
        )
