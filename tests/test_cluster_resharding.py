"""A slot resharded while users send (issue 18): the slot of one conversation is
migrated to another master key by key (``SETSLOT IMPORTING``/``MIGRATING``,
``MIGRATE``, then ``SETSLOT NODE``) while four pairs send on two nodes. Its sends
meet ``ASK`` (followed by the router), ``TRYAGAIN`` while the step's keys are split
between the two masters (answered ``UNAVAILABLE``: nothing was written, the client
resends) and ``MOVED`` once the slot has moved; afterwards every acknowledged message
is stored once, at the seq it was acknowledged with, each conversation gap-free."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from redis.crc import key_slot

from tests.conftest import StartNode
from tests.pair_traffic import PairTraffic
from tests.redis_cluster import RedisCluster
from tests.support import Connect

PAIRS = 4
MESSAGES = 40
MOVE_AFTER = 10
"""Messages of the first pair acknowledged before its conversation's slot moves."""


def migrate_slot(cluster: RedisCluster, slot: int) -> tuple[int, int]:
    """Move ``slot`` to another master one key at a time; (keys moved, new port)."""
    source = cluster.master_of_slot(slot)
    target = next(n for n in cluster.nodes if n.port != source.port)
    on_source, on_target = source.client(), target.client()
    moved = 0
    try:
        source_id, target_id = on_source.cluster("MYID"), on_target.cluster("MYID")
        on_target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)  # type: ignore[no-untyped-call]
        on_source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)  # type: ignore[no-untyped-call]
        while keys := on_source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1):  # type: ignore[no-untyped-call]
            on_source.execute_command(  # type: ignore[no-untyped-call]
                "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys
            )
            moved += len(keys)
            time.sleep(0.05)  # keep the slot split for a while, under the sends
        for node in cluster.nodes:
            with node.client() as client:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    finally:
        on_source.close()
        on_target.close()
    cluster.await_healthy()
    return moved, target.port


@pytest.fixture
def resharded_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """Three masters of this test's own (a slot of theirs moves); stopped after the
    nodes on them (the test asks for it before ``start_node``)."""
    cluster = RedisCluster(tmp_path / "cluster")
    cluster.start()
    yield cluster
    cluster.stop()


async def test_no_acknowledged_message_is_lost_or_renumbered_through_a_resharding(
    resharded_cluster: RedisCluster, start_node: StartNode, connect: Connect, prefix: str
) -> None:
    cluster = resharded_cluster
    nodes = [await start_node(redis={"url": cluster.url}) for _ in range(2)]
    traffic = await PairTraffic.open(nodes, connect, PAIRS, MESSAGES)
    slot = key_slot(f"{prefix}{{c:{traffic.conversation(0)}}}".encode())
    due = trio.Event()
    migration: list[tuple[int, int]] = []

    def move_when_due(count: int) -> None:
        if count == MOVE_AFTER:
            due.set()

    async def reshard() -> None:
        await due.wait()
        migration.append(await trio.to_thread.run_sync(migrate_slot, cluster, slot))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(traffic.chat, 0, move_when_due)
        for i in range(1, PAIRS):
            nursery.start_soon(traffic.chat, i)
        nursery.start_soon(reshard)

    # The first pair's sends while its slot moved were refused, then resent.
    assert any(cmid.startswith("p0-") for cmid in traffic.refusals)
    moved, new_port = migration[0]
    assert moved > 0  # the conversation's keys (and all else in its slot) moved
    assert cluster.master_of_slot(slot).port == new_port
    await traffic.assert_stored_as_acknowledged()
