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

from client import Platform
from protocol import messages as m
from tests.conftest import StartNode
from tests.redis_cluster import RedisCluster
from tests.support import Connect, signed_in
from tests.test_cluster_failover import _send_until_acknowledged

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
    senders, receivers = [], []
    for i in range(PAIRS):
        sender = await connect(nodes[i % 2].url, request_timeout=10.0)
        await signed_in(sender, f"sender{i}", Platform.IOS)
        receiver = await connect(nodes[(i + 1) % 2].url, request_timeout=10.0)
        await signed_in(receiver, f"receiver{i}", Platform.IOS)
        senders.append(sender)
        receivers.append(receiver)
    first = m.single_conversation_id("sender0", "receiver0")
    slot = key_slot(f"{prefix}{{c:{first}}}".encode())
    acknowledged: dict[int, dict[str, int]] = {i: {} for i in range(PAIRS)}
    refusals: list[str] = []
    due = trio.Event()
    deadline = time.monotonic() + 120
    migration: list[tuple[int, int]] = []

    async def chat(i: int) -> None:
        for n in range(MESSAGES):
            cmid = f"p{i}-m{n}"
            seq = await _send_until_acknowledged(
                senders[i], f"receiver{i}", cmid, deadline, refusals
            )
            acknowledged[i][cmid] = seq
            if i == 0 and n + 1 == MOVE_AFTER:
                due.set()

    async def reshard() -> None:
        await due.wait()
        migration.append(await trio.to_thread.run_sync(migrate_slot, cluster, slot))

    async with trio.open_nursery() as nursery:
        for i in range(PAIRS):
            nursery.start_soon(chat, i)
        nursery.start_soon(reshard)

    # The first pair's sends while its slot moved were refused, then resent.
    assert any(cmid.startswith("p0-") for cmid in refusals)
    moved, new_port = migration[0]
    assert moved > 0  # the conversation's keys (and all else in its slot) moved
    assert cluster.master_of_slot(slot).port == new_port
    for i in range(PAIRS):
        conversation = m.single_conversation_id(f"sender{i}", f"receiver{i}")
        stored: list[m.ChatMessage] = []
        while len(stored) < MESSAGES + 1:
            page = await receivers[i].pull_messages(conversation, from_seq=len(stored) + 1)
            stored.extend(page.items)
            if page.is_end or not page.items:
                break
        seqs = [message.seq for message in stored]
        assert seqs == list(range(1, len(stored) + 1)), f"pair {i}: seqs not gap-free"
        by_cmid = {message.client_msg_id: message.seq for message in stored}
        assert len(by_cmid) == len(stored), f"pair {i}: a message stored twice"
        assert by_cmid == acknowledged[i], f"pair {i}: an acknowledged message moved or is lost"
