"""A master of the Redis Cluster killed while users send: its replica is promoted,
senders that were answered UNAVAILABLE resend with the same client msg id, and
afterwards every acknowledged message is stored once, at the seq it was
acknowledged with, each conversation's seqs gap-free (issue 18).

Why it holds: with ``redis.durability = "replicas"`` every batch that wrote to a
master ends with ``WAIT 1`` on it, and its results are released only once the
replica has the writes; the killed master's replica, promoted, has every write that
was acknowledged (docs/CLUSTER.md, "Failover"). Until the killed server is back, as
the promoted master's replica, writes to its slots are answered UNAVAILABLE: no
replica can confirm them."""

from __future__ import annotations

import trio
from redis.crc import key_slot

from tests.conftest import StartNode
from tests.pair_traffic import PairTraffic
from tests.redis_cluster import RedisCluster
from tests.support import Connect

PAIRS = 4
MESSAGES = 30
KILL_AFTER = 8
"""Messages of the first pair acknowledged before its conversation's master dies."""


async def test_no_acknowledged_message_is_lost_or_renumbered_through_a_failover(
    failover_cluster: RedisCluster, start_node: StartNode, connect: Connect, prefix: str
) -> None:
    settings = {"url": failover_cluster.url, "durability": "replicas", "replicas": 1}
    nodes = [await start_node(redis=settings) for _ in range(2)]
    traffic = await PairTraffic.open(nodes, connect, PAIRS, MESSAGES)
    first = traffic.conversation(0)
    doomed = failover_cluster.master_of_slot(key_slot(f"{prefix}{{c:{first}}}".encode()))
    killed = trio.Event()

    def kill_when_due(count: int) -> None:
        if count == KILL_AFTER:
            failover_cluster.kill(doomed)
            killed.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(traffic.chat, 0, kill_when_due)
        for i in range(1, PAIRS):
            nursery.start_soon(traffic.chat, i)
        await killed.wait()
        await trio.to_thread.run_sync(failover_cluster.await_failover, doomed)
        # The promoted master has no replica to confirm WAIT 1 until the old one is back.
        await trio.to_thread.run_sync(failover_cluster.restart, doomed)

    # The first pair's sends after the kill were refused until the promotion: resent.
    assert any(cmid.startswith("p0-") for cmid in traffic.refusals)
    await traffic.assert_stored_as_acknowledged()
