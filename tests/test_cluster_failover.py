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

import time

import trio
from redis.crc import key_slot

from client import ErrorCode, ParleyClient, ParleyError, Platform
from protocol import messages as m
from tests.conftest import StartNode
from tests.redis_cluster import RedisCluster
from tests.support import Connect, signed_in

PAIRS = 4
MESSAGES = 30
KILL_AFTER = 8
"""Messages of the first pair acknowledged before its conversation's master dies."""


async def _send_until_acknowledged(
    client: ParleyClient, to: str, client_msg_id: str, deadline: float, refusals: list[str]
) -> int:
    while True:
        try:
            sent = await client.send_message(
                m.TextContent(text=client_msg_id), to_user_id=to, client_msg_id=client_msg_id
            )
            return sent.seq
        except (ParleyError, trio.TooSlowError) as exc:
            if isinstance(exc, ParleyError) and exc.code != ErrorCode.UNAVAILABLE:
                raise
            if time.monotonic() > deadline:
                raise
            refusals.append(client_msg_id)
            await trio.sleep(0.2)


async def test_no_acknowledged_message_is_lost_or_renumbered_through_a_failover(
    failover_cluster: RedisCluster, start_node: StartNode, connect: Connect, prefix: str
) -> None:
    settings = {"url": failover_cluster.url, "durability": "replicas", "replicas": 1}
    nodes = [await start_node(redis=settings) for _ in range(2)]
    senders, receivers = [], []
    for i in range(PAIRS):
        sender = await connect(nodes[i % 2].url, request_timeout=10.0)
        await signed_in(sender, f"sender{i}", Platform.IOS)
        receiver = await connect(nodes[(i + 1) % 2].url, request_timeout=10.0)
        await signed_in(receiver, f"receiver{i}", Platform.IOS)
        senders.append(sender)
        receivers.append(receiver)
    first = m.single_conversation_id("sender0", "receiver0")
    doomed = failover_cluster.master_of_slot(key_slot(f"{prefix}{{c:{first}}}".encode()))
    acknowledged: dict[int, dict[str, int]] = {i: {} for i in range(PAIRS)}
    refusals: list[str] = []
    killed = trio.Event()
    deadline = time.monotonic() + 120

    async def chat(i: int) -> None:
        for n in range(MESSAGES):
            cmid = f"p{i}-m{n}"
            seq = await _send_until_acknowledged(
                senders[i], f"receiver{i}", cmid, deadline, refusals
            )
            acknowledged[i][cmid] = seq
            if i == 0 and n + 1 == KILL_AFTER:
                failover_cluster.kill(doomed)
                killed.set()

    async with trio.open_nursery() as nursery:
        for i in range(PAIRS):
            nursery.start_soon(chat, i)
        await killed.wait()
        await trio.to_thread.run_sync(failover_cluster.await_failover, doomed)
        # The promoted master has no replica to confirm WAIT 1 until the old one is back.
        await trio.to_thread.run_sync(failover_cluster.restart, doomed)

    # The first pair's sends after the kill were refused until the promotion: resent.
    assert any(cmid.startswith("p0-") for cmid in refusals)
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
