"""Nodes of the cluster and the live sessions of each user, kept in Redis.

Each node refreshes its key ``{n:<id>}`` (with a TTL) and its score in the sorted
set ``{cluster}:nodes`` while it is alive. A user's sessions are the hash
``{u:<id>}:presence`` (session id -> "platform:node:token id:signed-in ms"), and each
node lists the sessions it holds in ``{n:<id>}:sessions``, so that when a node
stops heartbeating any other node can remove its sessions from presence, and
so that each node can find, at its heartbeat, the sessions it holds that were
ended elsewhere.
Readers count only sessions on live nodes. The value of ``{n:<id>}`` is the
record of the running instance that claimed the id (``instance``): a node never
renews or removes a key that another instance holds. Methods are awaited on the
node's trio loop. Each Lua step touches one slot (Redis Cluster): the heartbeat's
reads and writes of the node's key and session set are one step, and the set of
nodes is written by plain commands in the same batch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

from storage.keys import Keys
from storage.pipelined import PipelinedRedis
from storage.scripts import Scripts


@dataclass(frozen=True)
class PresenceEntry:
    session_id: str
    platform: int
    node_id: str
    token_id: str
    since_ms: int = 0
    """When the session signed in (ms since the Unix epoch; 0: not recorded)."""


@dataclass(frozen=True)
class NodeBeat:
    """What a node learns when it renews its heartbeat."""

    was_known: bool
    """False if the node's key had disappeared: it had been given up, and other nodes
    may have removed its sessions."""
    listed: frozenset[tuple[str, str]]
    """(user id, session id) of every session ``node:<id>:sessions`` listed at that
    moment."""
    taken_by: str | None = None
    """The record of another instance that holds this node's id now (nothing was
    renewed): this instance must stop."""


def _entry(session_id: bytes | str, value: bytes) -> PresenceEntry:
    platform, node, token, *since = value.decode().split(":", 3)
    sid = session_id.decode() if isinstance(session_id, bytes) else session_id
    return PresenceEntry(sid, int(platform), node, token, int(since[0]) if since else 0)


class PresenceStore:
    def __init__(self, client: PipelinedRedis, keys: Keys, scripts: Scripts, node_id: str) -> None:
        self._redis = client
        self._keys = keys
        self._scripts = scripts
        self.node_id = node_id
        self.instance = ""
        """This instance's record, the value of its node key once claimed."""

    # -- nodes ------------------------------------------------------------------

    def _node_sessions(self, node_id: str) -> str:
        return self._keys.node_sessions(node_id)

    async def claim(self, instance: str, ttl_s: int, replaces: str, now_ms: int) -> str:
        """Claim this node's id for ``instance`` unless another instance holds it
        (``replaces``: the record of an earlier instance known to be gone); "" when
        claimed, else the holder's record."""
        group = self._redis.pipeline(transaction=False)
        self._scripts.add(
            group, "node_claim", [self._keys.node(self.node_id)], [instance, ttl_s, replaces]
        )
        group.zadd(self._keys.nodes(), {self.node_id: now_ms})
        holder, _ = await group.execute()
        if holder:
            return holder.decode() if isinstance(holder, bytes) else str(holder)
        self.instance = instance
        return ""

    async def holder(self, node_id: str) -> tuple[str, int] | None:
        """The record holding ``node_id`` and its remaining time in ms, or None."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(self._keys.node(node_id))
        pipe.pttl(self._keys.node(node_id))
        record, ttl = await pipe.execute()
        if record is None:
            return None
        return cast(bytes, record).decode(), int(ttl)

    async def heartbeat(self, ttl_s: int, now_ms: int) -> NodeBeat:
        """Mark this node alive for ``ttl_s`` seconds and read the sessions it is listed
        as holding, in one step, unless another instance holds its id. A node that
        gives this one up deletes its key and its session set in one step, so a list
        read while the key still existed is never the empty one such a clean-up
        leaves."""
        group = self._redis.pipeline(transaction=False)
        self._scripts.add(
            group,
            "node_beat",
            [self._keys.node(self.node_id), self._node_sessions(self.node_id)],
            [self.instance, ttl_s],
        )
        group.zadd(self._keys.nodes(), {self.node_id: now_ms})
        (status, found), _ = await group.execute()
        if status == -1:
            return NodeBeat(False, frozenset(), cast(bytes, found).decode())
        pairs = (item.decode().partition("\t") for item in cast(list[bytes], found))
        return NodeBeat(
            status == 1,
            frozenset((user_id, session_id) for user_id, _, session_id in pairs),
        )

    async def node_gone(self) -> None:
        """Deregister this node (clean shutdown), if this instance still holds its id."""
        await self.forget_node(self.node_id, self.instance)

    async def _known_nodes(self) -> list[tuple[str, bool]]:
        """Every node in the set of nodes, and whether its key is there (one ``EXISTS``
        per node: their keys are in different slots)."""
        raw = cast(list[bytes], await self._redis.zrange(self._keys.nodes(), 0, -1))
        nodes = [n.decode() for n in raw]
        if not nodes:
            return []
        group = self._redis.pipeline(transaction=False)
        for node in nodes:
            group.exists(self._keys.node(node))
        flags = await group.execute()
        return [(n, bool(flag)) for n, flag in zip(nodes, flags, strict=True)]

    async def live_nodes(self) -> list[str]:
        return [node for node, live in await self._known_nodes() if live]

    async def dead_nodes(self) -> list[str]:
        return [node for node, live in await self._known_nodes() if not live]

    async def forget_node(self, node_id: str, record: str = "", keep_key: bool = False) -> int:
        """Remove a gone node's record and every presence entry of its sessions; how
        many sessions. ``record``: the instance record the caller knows to be gone
        (its own, or a predecessor's), else only a node whose key has expired is
        removed; nothing is removed while another instance holds the id (-1).
        ``keep_key``: remove the sessions only (this instance has claimed the id).

        Three steps, as the keys are in three kinds of slots: read the node's record
        and session set; remove those sessions from their users' presence; then
        remove the session set and the record together (``node_forget.lua``), and the
        node from the set of nodes. Each step is idempotent and the record goes last,
        so a node that dies half-way leaves a node that the next heartbeat of any
        node finds dead and forgets again. (A node given up while only frozen that
        beats again between the first and the last step keeps its key and session
        set, and writes its presence back, ``ClusterLink._beat``; an entry it writes
        back before the second step reaches that user is removed by it.)"""
        node_key, listing = self._keys.node(node_id), self._node_sessions(node_id)
        read = self._redis.pipeline(transaction=False)
        read.get(node_key)
        read.smembers(listing)
        holder, listed = await read.execute()
        if holder is not None and cast(bytes, holder).decode() != record:
            return -1
        items = [item.decode().partition("\t") for item in cast(set[bytes], listed)]
        entries = [(user, session) for user, tab, session in items if tab]
        if entries:
            drop = self._redis.pipeline(transaction=False)
            for user_id, session_id in entries:
                drop.hdel(self._keys.presence(user_id), session_id)
            await drop.execute()
        keep = "1" if keep_key else "0"
        if await self._scripts.run("node_forget", [node_key, listing], [record, keep]) == -1:
            return -1
        if not keep_key:
            await self._redis.zrem(self._keys.nodes(), node_id)
        return len(listed)

    # -- sessions -----------------------------------------------------------------

    async def sign_in(
        self,
        user_id: str,
        session_id: str,
        platform: int,
        token_id: str,
        displaced_platforms: Iterable[int] | None,
        new_token_entry: str | None,
        now_ms: int,
        node_id: str,
    ) -> list[tuple[str, str]]:
        """Register a session held by ``node_id``; end those the policy displaces (None:
        all of them). Returns (session id, node id) of each displaced session."""
        displace = "*" if displaced_platforms is None else ",".join(map(str, displaced_platforms))
        reply = await self._scripts.run(
            "session_sign_in",
            [self._keys.user_tag(user_id)],
            [session_id, platform, node_id, token_id, "1" if new_token_entry else "0",
             new_token_entry or "", now_ms, displace],
        )  # fmt: skip
        pairs = [x.decode() if isinstance(x, bytes) else str(x) for x in reply]
        displaced = list(zip(pairs[0::2], pairs[1::2], strict=True))
        pipe = self._redis.pipeline(transaction=False)
        pipe.sadd(self._node_sessions(node_id), f"{user_id}\t{session_id}")
        for other_session, node in displaced:
            pipe.srem(self._node_sessions(node), f"{user_id}\t{other_session}")
        await pipe.execute()
        return displaced

    async def restore(self, sessions: Sequence[tuple[str, str, int, str]]) -> None:
        """Write presence again for (user, session, platform, token) held by this node,
        after the node was given up while Redis was out of reach."""
        pipe = self._redis.pipeline(transaction=False)
        now_ms = int(time.time() * 1000)  # the old sign-in time was lost with the entry
        for user_id, session_id, platform, token_id in sessions:
            value = f"{platform}:{self.node_id}:{token_id}:{now_ms}"
            pipe.hset(self._keys.presence(user_id), session_id, value)
            pipe.sadd(self._node_sessions(self.node_id), f"{user_id}\t{session_id}")
        await pipe.execute()

    async def session_offline(self, user_id: str, session_id: str) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hdel(self._keys.presence(user_id), session_id)
        pipe.srem(self._node_sessions(self.node_id), f"{user_id}\t{session_id}")
        await pipe.execute()

    async def sessions(self, user_id: str) -> list[PresenceEntry]:
        raw = cast(dict[bytes, bytes], await self._redis.hgetall(self._keys.presence(user_id)))
        return [_entry(k, v) for k, v in raw.items()]

    async def set_token(
        self, user_id: str, session_id: str, platform: int, token_id: str, node_id: str
    ) -> None:
        key = self._keys.presence(user_id)
        current = cast(bytes | None, await self._redis.hget(key, session_id))
        since = _entry(session_id, current).since_ms if current else int(time.time() * 1000)
        await self._redis.hset(key, session_id, f"{platform}:{node_id}:{token_id}:{since}")

    async def remove_sessions(self, user_id: str, sessions: Sequence[PresenceEntry]) -> None:
        if not sessions:
            return
        pipe = self._redis.pipeline(transaction=False)
        pipe.hdel(self._keys.presence(user_id), *(s.session_id for s in sessions))
        for s in sessions:
            pipe.srem(self._node_sessions(s.node_id), f"{user_id}\t{s.session_id}")
        await pipe.execute()

    async def nodes_of(self, user_ids: Sequence[str]) -> set[str]:
        """The nodes holding at least one session of these users."""
        pipe = self._redis.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.hvals(self._keys.presence(user_id))
        return {
            value.decode().split(":", 2)[1] for values in await pipe.execute() for value in values
        }

    async def online_platforms(self, user_ids: Sequence[str]) -> dict[str, list[int]]:
        """Sorted online platforms of each user, counting only sessions on live nodes."""
        pipe = self._redis.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.hgetall(self._keys.presence(user_id))
        entries: list[dict[bytes, bytes]] = await pipe.execute()
        live = set(await self.live_nodes())
        return {
            user_id: sorted(
                {
                    e.platform
                    for e in (_entry(k, v) for k, v in sessions.items())
                    if e.node_id in live
                }
            )
            for user_id, sessions in zip(user_ids, entries, strict=True)
        }
