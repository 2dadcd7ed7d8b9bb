"""Persistence behind a small interface; Redis is an implementation detail here.

``Storage`` bundles the stores of one node. Their methods are awaited by tasks on
the node's trio loop; the commands all tasks issue during one loop tick travel to
Redis as one pipeline, run by a pykka actor thread that owns the connections
(``storage.pipelined``). ``Storage.run`` must be running, in the node's nursery,
for any of them to be sent. Outside the stores, only the cluster's pub/sub goes to
Redis: ``subscribe()`` for its listener thread, ``publish``/``publish_detached`` for
what it sends.

``url`` names one Redis server (``redis://``, ``rediss://``, ``unix://``) or a Redis
Cluster (``redis+cluster://host:port,host:port``, ``rediss+cluster://``): the batches
then run on a ``storage.cluster.ClusterRouter`` (a pipeline per master), and pub/sub
is sharded (``SSUBSCRIBE``/``SPUBLISH``).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from typing import cast

import redis
import trio
from redis.backoff import ExponentialBackoff
from redis.client import PubSub
from redis.retry import Retry

from storage.accounts import AccountRecord, AccountStore, CorruptRecordError, PublicProfile
from storage.cluster import ClusterRouter, is_cluster_url
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
from storage.group_records import (
    GroupApplicationRecord,
    GroupRecord,
    JoinedRecord,
    MemberRecord,
)
from storage.groups import GroupStep, GroupStore
from storage.keys import Keys
from storage.layout import LAYOUT_VERSION, LayoutRefused, LayoutStore
from storage.leases import LeaseStore
from storage.limits import RateLimitStore
from storage.messages import MessageStore, Stored
from storage.notifications import NotificationPage, NotificationStore
from storage.pipelined import CommandGroup, PipelinedRedis, start_executor
from storage.presence import PresenceEntry, PresenceStore
from storage.pubsub import NotMaster, Subscriptions
from storage.relations import (
    ApplicationRecord,
    BlackRecord,
    FriendRecord,
    RelationStore,
)
from storage.replies import text
from storage.scripts import Scripts
from storage.versionlog import Changes

__all__ = [
    "LAYOUT_VERSION",
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
    "LayoutRefused",
    "LayoutStore",
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
    "Subscriptions",
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
        self.on_cluster = is_cluster_url(url)
        """Whether ``url`` names a Redis Cluster."""
        retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), 2)
        io_timeout = 5 + (wait.timeout if wait is not None else 0)  # Redis answers a wait late

        def client_for(server_url: str) -> redis.Redis:
            pool = connection_pool(
                server_url, max_connections, io_timeout, retry, scripts=self.scripts.texts()
            )
            return redis.Redis(connection_pool=pool)

        self._client: redis.Redis | None = None
        """One server: the blocking client of the executor's thread and the listener."""
        self._router: ClusterRouter | None = None
        """A cluster: the executor thread's router."""
        self._side: ClusterRouter | None = None
        """A cluster: the router of everything else (the listener's subscriptions, the
        start's checks), behind ``_side_lock``: the executor's is its thread's alone."""
        self._side_lock = threading.Lock()
        if self.on_cluster:
            self._router = ClusterRouter(url, client_for)
            self._side = ClusterRouter(url, client_for)
        else:
            self._client = client_for(url)
        r, keys, scripts = self._redis, self.keys, self.scripts
        self.accounts = AccountStore(r, keys, scripts)
        self.presence = PresenceStore(r, keys, scripts, node_id)
        self.leases = LeaseStore(r, keys, scripts, node_id)
        self.followups = FollowUpStore(
            r, keys, scripts, node_id, version_log_length, notifications_kept
        )
        self.relations = RelationStore(
            r, keys, scripts, self.followups, version_log_length, notifications_kept
        )
        self.messages = MessageStore(r, keys, scripts, self.followups)
        self.conversations = ConversationStore(r, keys, scripts, version_log_length, self.followups)
        self.groups = GroupStore(
            r, keys, scripts, self.followups, self.messages, version_log_length
        )
        self.notifications = NotificationStore(r, keys, scripts, self.followups, notifications_kept)
        self.limits = RateLimitStore(r, keys, scripts)
        self.layout = LayoutStore(r, keys, scripts, self.on_cluster)

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
            await trio.to_thread.run_sync(self._check_server, self.wait)
        client = self._router if self._router is not None else self._client
        assert client is not None
        ref = start_executor(
            client, trio.lowlevel.current_trio_token(), self.scripts.texts(), self.wait
        )
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._redis.run, ref)
                task_status.started()
                await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(ref.stop)

    def _check_server(self, wait: DurabilityWait) -> None:
        """``check_server`` on the server, or on every master of the cluster."""
        if self._client is not None:
            check_server(self._client, wait)
            return
        assert self._side is not None
        with self._side_lock:
            self._side.refresh()
            for client in self._side.master_clients():
                check_server(client, wait)

    # -- the cluster's pub/sub -------------------------------------------------------

    def subscribe(self, channels: Sequence[str]) -> Subscriptions:
        """Subscriptions to ``channels``, for a listener thread (its waits block: never
        use it on the loop): ``SSUBSCRIBE`` on the master of each channel's slot on a
        cluster, else ``SUBSCRIBE``."""
        if self._client is not None:
            client = self._client

            def single() -> PubSub:
                return cast(PubSub, client.pubsub())  # type: ignore[no-untyped-call]

            return Subscriptions(channels, single, None)
        return Subscriptions(channels, None, self._pubsub_for)

    def _pubsub_for(self, channel: str) -> PubSub:
        """A ``PubSub`` on the master of ``channel``'s slot, as the cluster says now.
        The server is asked its role first: a replica also takes ``SSUBSCRIBE`` (and
        is sent the slot's publications), but an ``SPUBLISH`` run on the master does
        not count its subscribers, so the node would look deaf to forwards."""
        side = self._side
        assert side is not None
        with self._side_lock:
            side.refresh()
            address = side.master_of(channel)
            client = side.client(address)
            role = client.role()[0]
            if text(role) != "master":  # the next try reads the map again (above)
                raise NotMaster(f"{address[0]}:{address[1]} is no longer a master")
        return cast(PubSub, client.pubsub())  # type: ignore[no-untyped-call]

    @property
    def _publish_command(self) -> str:
        return "SPUBLISH" if self.on_cluster else "PUBLISH"

    async def publish(self, channel: str, payload: bytes) -> int:
        """Publish and wait for Redis' answer: how many subscribers got it."""
        return int(await self._redis.execute_command(self._publish_command, channel, payload))

    def publish_detached(
        self,
        channel: str,
        payload: bytes,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """Publish without waiting (in the tick's pipeline). A failure is counted in
        ``pipelined.detached_failures`` and given to ``on_error`` (on the loop), or
        else logged."""
        self._redis.send_detached(self._publish_command, channel, payload, on_error=on_error)

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
        return bool(await self._redis.hexists(self.keys.group_members(group_id), user_id))

    async def joined_group_ids(self, user_id: str) -> list[str]:
        """The groups ``user_id`` is a member of (the sorted set ``{u:<id>}:groups``)."""
        ids = cast(list[bytes], await self._redis.zrange(self.keys.joined_groups(user_id), 0, -1))
        return [i.decode() for i in ids]

    async def left_group_seqs(self, user_id: str, group_ids: Sequence[str]) -> list[int | None]:
        """For each group, the conversation's max seq when ``user_id`` left it (None if
        not recorded)."""
        if not group_ids:
            return []
        key = self.keys.left_groups(user_id)
        raw = cast(list[bytes | None], await self._redis.hmget(key, list(group_ids)))
        return [None if r is None else int(r) for r in raw]

    async def compare_fingerprint(
        self, node_id: str, values: dict[str, str]
    ) -> tuple[bool, dict[str, str]]:
        """Compare ``values`` with the cluster's fingerprint (``{cluster}:fingerprint``).
        (True, the cluster's differing values) if another node is live and some differ;
        else (False, the values replaced) once ``values`` are recorded."""
        others = any(n != node_id for n in await self.presence.live_nodes())
        reply = await self.scripts.run(
            "cluster_fingerprint",
            [self.keys.cluster_fingerprint()],
            ["1" if others else "0", *(x for pair in values.items() for x in pair)],
        )
        names = [x.decode() if isinstance(x, bytes) else str(x) for x in reply[1:]]
        return reply[0] == 1, dict(zip(names[0::2], names[1::2], strict=True))

    async def ping(self) -> None:
        """Raise unless Redis answers; on a cluster, unless it serves every slot
        (``cluster_state:ok``, as a master sees it)."""
        if not self.on_cluster:
            await self._redis.ping()
            return
        info = await self._redis.execute_command("CLUSTER", "INFO")
        if isinstance(info, bytes | str):
            text = info.decode() if isinstance(info, bytes) else info
            state = dict(line.split(":", 1) for line in text.split() if ":" in line)
        else:
            state = {str(k): str(v) for k, v in dict(info).items()}
        if state.get("cluster_state") != "ok":
            raise redis.exceptions.ClusterDownError(
                f"the Redis Cluster does not serve every slot (cluster_state:"
                f"{state.get('cluster_state', 'unknown')})"
            )

    def close(self) -> None:
        """Close the blocking clients' connections (after ``run`` has ended)."""
        if self._client is not None:
            self._client.close()
            self._client.connection_pool.disconnect()
        for router in (self._router, self._side):
            if router is not None:
                router.close()
