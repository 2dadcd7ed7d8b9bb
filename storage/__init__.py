"""Persistence behind a small interface; Redis is an implementation detail here.

``Storage`` bundles the stores of one node. Their methods are awaited by tasks on
the node's trio loop; the commands all tasks issue during one loop tick travel to
Redis as one pipeline, run by a pykka actor thread that owns the connections
(``storage.pipelined``). ``Storage.run`` must be running, in the node's nursery,
for any of them to be sent. Outside the stores, only the cluster's pub/sub goes to
Redis: ``pubsub()`` for its listener thread, ``publish``/``publish_detached`` for
what it sends.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import cast

import redis
import trio
from redis.backoff import ExponentialBackoff
from redis.client import PubSub
from redis.retry import Retry

from storage.accounts import AccountRecord, AccountStore, CorruptRecordError, PublicProfile
from storage.connections import connection_pool
from storage.conversations import ConversationRecord, ConversationStore
from storage.durability import (
    DurabilityUnsupported,
    DurabilityWait,
    NotDurable,
    check_server,
    durability_wait,
    embedded_appendfsync,
)
from storage.embedded import EmbeddedRedis, EmbeddedRedisError
from storage.errors import StaleRead, StepRefused
from storage.followups import FollowUpStore, OutboxEntry
from storage.groups import (
    GroupApplicationRecord,
    GroupRecord,
    GroupStep,
    GroupStore,
    JoinedRecord,
    MemberRecord,
)
from storage.keys import Keys
from storage.leases import LeaseStore
from storage.limits import RateLimitStore
from storage.messages import MessageStore, Stored
from storage.notifications import NotificationPage, NotificationStore
from storage.pipelined import CommandGroup, PipelinedRedis, start_executor
from storage.presence import PresenceEntry, PresenceStore
from storage.relations import (
    ApplicationRecord,
    BlackRecord,
    FriendRecord,
    RelationStore,
)
from storage.scripts import Scripts
from storage.versionlog import Changes

__all__ = [
    "AccountRecord",
    "AccountStore",
    "ApplicationRecord",
    "BlackRecord",
    "Changes",
    "CommandGroup",
    "ConversationRecord",
    "ConversationStore",
    "CorruptRecordError",
    "DurabilityUnsupported",
    "DurabilityWait",
    "EmbeddedRedis",
    "EmbeddedRedisError",
    "FollowUpStore",
    "FriendRecord",
    "GroupApplicationRecord",
    "GroupRecord",
    "GroupStep",
    "GroupStore",
    "JoinedRecord",
    "Keys",
    "LeaseStore",
    "MemberRecord",
    "MessageStore",
    "NotDurable",
    "NotificationPage",
    "NotificationStore",
    "OutboxEntry",
    "PipelinedRedis",
    "PresenceEntry",
    "PresenceStore",
    "PublicProfile",
    "RateLimitStore",
    "RelationStore",
    "StaleRead",
    "StepRefused",
    "Storage",
    "Stored",
    "durability_wait",
    "embedded_appendfsync",
]


class Storage:
    """The stores of one node on one Redis (or Redis Cluster) at ``url``.

    Built outside the loop (nothing connects yet); ``run`` starts the executor and
    sends the stores' commands while it runs; ``close`` closes the connections."""

    def __init__(
        self,
        url: str,
        prefix: str,
        node_id: str,
        max_connections: int = 64,
        version_log_length: int = 200,
        notifications_kept: int = 1000,
        wait: DurabilityWait | None = None,
    ) -> None:
        self.url = url
        self.keys = Keys(prefix)
        self._redis = PipelinedRedis()
        self.scripts = Scripts(self._redis)
        self.wait = wait
        """What ends every batch before its results are released (``redis.durability``)."""
        pool = connection_pool(
            url,
            max_connections,
            5 + (wait.timeout if wait is not None else 0),  # Redis answers a wait late
            Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
            scripts=self.scripts.texts(),
        )
        self._client = redis.Redis(connection_pool=pool)
        """The blocking client: used by the executor's thread and the pub/sub listener."""
        r, keys, scripts = self._redis, self.keys, self.scripts
        self.accounts = AccountStore(r, keys, scripts)
        self.presence = PresenceStore(r, keys, scripts, node_id)
        self.leases = LeaseStore(r, keys, scripts, node_id)
        self.messages = MessageStore(r, keys, scripts, version_log_length)
        self.conversations = ConversationStore(r, keys, scripts, version_log_length)
        self.groups = GroupStore(r, keys, scripts, version_log_length, notifications_kept)
        self.notifications = NotificationStore(r, keys, scripts, notifications_kept)
        self.limits = RateLimitStore(r, keys, scripts)
        self.followups = FollowUpStore(
            r, keys, scripts, node_id, version_log_length, notifications_kept
        )
        self.relations = RelationStore(
            r, keys, scripts, self.followups, version_log_length, notifications_kept
        )

    @property
    def pipelined(self) -> PipelinedRedis:
        """The auto-pipelined client the stores use (its ``batches`` and ``commands``
        counters are the node's pipelining figures)."""
        return self._redis

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the Redis executor (a pykka actor thread) and send the stores' commands
        to it, a pipeline per loop tick, until cancelled; then stop the executor after
        the batch it is running. With a durability wait, first checks that the server
        can give it (``DurabilityUnsupported`` if not)."""
        if self.wait is not None:
            await trio.to_thread.run_sync(check_server, self._client, self.wait)
        ref = start_executor(
            self._client, trio.lowlevel.current_trio_token(), self.scripts.texts(), self.wait
        )
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._redis.run, ref)
                task_status.started()
                await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(ref.stop)

    # -- the cluster's pub/sub -------------------------------------------------------

    def pubsub(self) -> PubSub:
        """A redis-py ``PubSub`` on the blocking client, for a listener thread (its
        waits block: never use it on the loop)."""
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        return cast(PubSub, pubsub)

    async def publish(self, channel: str, payload: bytes) -> int:
        """Publish and wait for Redis' answer: how many subscribers got it."""
        return await self._redis.publish(channel, payload)

    def publish_detached(
        self,
        channel: str,
        payload: bytes,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """Publish without waiting (in the tick's pipeline). A failure is counted in
        ``pipelined.detached_failures`` and given to ``on_error`` (on the loop), or
        else logged."""
        self._redis.send_detached("PUBLISH", channel, payload, on_error=on_error)

    # -- small reads ----------------------------------------------------------------

    async def token_secret(self) -> str:
        """The cluster-wide token signing key, created once by whichever node asks first."""
        key = self.keys.token_secret()
        group = self._redis.pipeline(transaction=False)
        group.set(key, secrets.token_urlsafe(48), nx=True)
        group.get(key)
        _, value = await group.execute()
        return cast(bytes, value).decode()

    async def is_group_member(self, group_id: str, user_id: str) -> bool:
        """Whether ``user_id`` is a member of ``group_id`` now (``{g:<id>}:members``)."""
        members = f"{self.keys.group_tag(group_id)}:members"
        return bool(await self._redis.hexists(members, user_id))

    async def joined_group_ids(self, user_id: str) -> list[str]:
        """The groups ``user_id`` is a member of (the sorted set ``{u:<id>}:groups``)."""
        key = f"{self.keys.user_tag(user_id)}:groups"
        ids = cast(list[bytes], await self._redis.zrange(key, 0, -1))
        return [i.decode() for i in ids]

    async def left_group_seqs(self, user_id: str, group_ids: Sequence[str]) -> list[int | None]:
        """For each group, the conversation's max seq when ``user_id`` left it (None if
        not recorded)."""
        if not group_ids:
            return []
        key = f"{self.keys.user_tag(user_id)}:groups:left"
        raw = cast(list[bytes | None], await self._redis.hmget(key, list(group_ids)))
        return [None if r is None else int(r) for r in raw]

    async def compare_fingerprint(
        self, node_id: str, values: dict[str, str]
    ) -> tuple[bool, dict[str, str]]:
        """Compare ``values`` with the cluster's fingerprint (``cluster:fingerprint``).
        (True, the cluster's differing values) if another node is live and some differ;
        else (False, the values replaced) once ``values`` are recorded."""
        reply = await self.scripts.run(
            "cluster_fingerprint",
            [f"{self.keys.prefix}cluster:fingerprint", f"{self.keys.prefix}nodes"],
            [node_id, self.keys.prefix, *(x for pair in values.items() for x in pair)],
        )
        names = [x.decode() if isinstance(x, bytes) else str(x) for x in reply[1:]]
        return reply[0] == 1, dict(zip(names[0::2], names[1::2], strict=True))

    async def ping(self) -> None:
        await self._redis.ping()

    def close(self) -> None:
        """Close the blocking client's connections (after ``run`` has ended)."""
        self._client.close()
        self._client.connection_pool.disconnect()
