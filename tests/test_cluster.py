"""Several node processes on one Redis behave as one service: delivery,
notifications, receipts and kicks cross nodes; seqs stay gap-free with senders
on different nodes; a killed node loses nothing acknowledged; Redis restarting
under traffic loses nothing acknowledged either."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import trio

from client import ConnectionLost, ErrorCode, ParleyClient, ParleyError, Platform
from protocol import messages as m
from storage import EmbeddedRedis, Keys
from tests.conftest import StartNode
from tests.processes import NodeProcess, start_nodes, stop_all
from tests.support import both_stores, eventually, signed_in

pytestmark = both_stores

FAST = ("--set", "cluster.node_timeout=2", "--set", "cluster.lease_time=2")


@pytest.fixture
def cluster(redis_url: str, prefix: str) -> Iterator[list[NodeProcess]]:
    nodes = start_nodes(3, f"--redis-url={redis_url}", f"--prefix={prefix}", *FAST)
    yield nodes
    stop_all(nodes)


@pytest.fixture
async def open_client(nursery: trio.Nursery) -> AsyncIterator[object]:
    clients: list[ParleyClient] = []

    async def open_one(url: str, **options: object) -> ParleyClient:
        client = ParleyClient(url, request_timeout=15, **options)  # type: ignore[arg-type]
        await client.connect(nursery)
        clients.append(client)
        return client

    yield open_one
    for client in clients:
        await client.aclose()


async def device(open_client: object, url: str, user_id: str, platform: int) -> ParleyClient:
    client: ParleyClient = await open_client(url)  # type: ignore[operator]
    await signed_in(client, user_id, platform)
    return client


async def test_delivery_notifications_receipts_and_kicks_cross_nodes(
    cluster: list[NodeProcess], open_client: object
) -> None:
    a, b, c = (n.url for n in cluster)
    alice_phone = await device(open_client, a, "alice", Platform.IOS)
    alice_desktop = await device(open_client, b, "alice", Platform.WINDOWS)
    bob_phone = await device(open_client, b, "bob", Platform.ANDROID)
    bob_desktop = await device(open_client, c, "bob", Platform.MACOS)
    carol = await device(open_client, c, "carol", Platform.LINUX)

    sent = await alice_phone.send_text("hello bob", to_user_id="bob")
    for client in (bob_phone, bob_desktop, alice_desktop):
        pushed = await client.next_event(m.NewMessage)
        assert (pushed.message.seq, pushed.message.content) == (
            sent.seq,
            m.TextContent(text="hello bob"),
        )

    await alice_phone.apply_friend("carol", "hi")
    note = await carol.next_event(m.Notification)
    assert note.type == m.NotificationType.FRIEND_APPLICATION

    group = await carol.create_group("cross", member_user_ids=["alice", "bob"])
    await carol.send_text("to everyone", group_id=group.group_id)
    for client in (alice_phone, alice_desktop, bob_phone, bob_desktop):
        message = (await client.next_event(m.NewMessage)).message
        assert message.conversation_id == f"sg_{group.group_id}"

    await bob_desktop.mark_read(sent.conversation_id)
    for client in (alice_phone, alice_desktop):
        receipt = await client.next_event(m.ReadReceipt)
        assert (receipt.reader_user_id, receipt.has_read_seq) == ("bob", sent.seq)

    replacement = await open_client(c)  # type: ignore[operator]
    await replacement.login("alice", "password-1", Platform.IOS)
    kicked = await alice_phone.next_event(m.Kicked)
    assert kicked.close_code == 4500
    await alice_phone.wait_closed()
    assert alice_phone.close_code == 4500
    status = await carol.get_online_status(["alice", "bob"])
    assert status == {"alice": [1, 3], "bob": [2, 4]}


async def test_concurrent_senders_on_different_nodes_get_gap_free_seqs_in_order(
    cluster: list[NodeProcess], open_client: object
) -> None:
    a, b, c = (n.url for n in cluster)
    senders = [
        await device(open_client, a, "sam", Platform.IOS),
        await device(open_client, b, "sam", Platform.ANDROID),
        await device(open_client, b, "tia", Platform.IOS),
        await device(open_client, c, "tia", Platform.ANDROID),
    ]
    watcher = await device(open_client, c, "tia", Platform.WEB)
    per_sender = 60
    acked: list[int] = []

    async def blast(client: ParleyClient, peer: str) -> None:
        for n in range(per_sender):
            acked.append((await client.send_text(f"{n}", to_user_id=peer)).seq)

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for client, peer in zip(senders, ["tia", "tia", "sam", "sam"], strict=True):
                nursery.start_soon(blast, client, peer)
    total = per_sender * len(senders)
    assert sorted(acked) == list(range(1, total + 1))
    seen: list[int] = []
    with trio.fail_after(60):
        while len(seen) < total:
            seen.append((await watcher.next_event(m.NewMessage, timeout=30)).message.seq)
    assert seen == list(range(1, total + 1))


async def send_until_acked(client: ParleyClient, text: str, peer: str) -> int | None:
    """Send with retries under the same client msg id; the seq once acknowledged."""
    client_msg_id = uuid.uuid4().hex
    for _ in range(40):
        try:
            reply = await client.send_message(
                m.TextContent(text=text), to_user_id=peer, client_msg_id=client_msg_id
            )
            return reply.seq
        except (ConnectionLost, trio.TooSlowError):
            await trio.sleep(0.2)
        except ParleyError as exc:
            assert exc.code == ErrorCode.UNAVAILABLE, exc
            await trio.sleep(0.2)
    return None


async def all_texts(client: ParleyClient, conversation_id: str) -> list[str]:
    texts: list[str] = []
    start = 1
    while True:
        page = await client.pull_messages(conversation_id, start, limit=100)
        for item in page.items:
            assert isinstance(item.content, m.TextContent)
            texts.append(item.content.text)
        if page.is_end or not page.items:
            return texts
        start = page.items[-1].seq + 1


async def test_killed_node_loses_nothing_acknowledged(
    redis_url: str, prefix: str, open_client: object
) -> None:
    nodes = start_nodes(2, f"--redis-url={redis_url}", f"--prefix={prefix}", *FAST)
    try:
        doomed, survivor = nodes
        sender = await open_client(  # type: ignore[operator]
            doomed.url, fallback_urls=[survivor.url], backoff_initial=0.05, backoff_max=0.3
        )
        await signed_in(sender, "uma", Platform.IOS)
        receiver = await device(open_client, survivor.url, "vic", Platform.IOS)
        acked: dict[str, int] = {}

        async def traffic() -> None:
            for n in range(150):
                seq = await send_until_acked(sender, f"m{n}", "vic")
                assert seq is not None, f"m{n} was never acknowledged"
                acked[f"m{n}"] = seq

        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(traffic)
                await eventually(lambda: len(acked) >= 40, timeout=60)
                doomed.kill()
        texts = await all_texts(receiver, "si_uma_vic")
        assert len(texts) == len(set(texts)), "a message was stored twice"
        assert set(acked) <= set(texts), "an acknowledged message is missing"
        assert sorted(acked.values()) == list(range(1, len(acked) + 1))
        # The dead node's sessions leave presence once it is given up.
        witness = await device(open_client, survivor.url, "wes", Platform.LINUX)

        async def only_live_sessions() -> bool:
            status = await witness.get_online_status(["uma"])
            return status["uma"] == [Platform.IOS]

        await eventually(only_live_sessions, timeout=30)
        assert sender.close_code is not None  # it did lose its first connection
    finally:
        stop_all(nodes)


async def test_redis_restart_under_traffic_loses_nothing_acknowledged(
    tmp_path: Path, prefix: str, open_client: object
) -> None:
    redis_dir = tmp_path / "redis"
    redis = EmbeddedRedis(redis_dir)
    redis.start()
    nodes: list[NodeProcess] = []
    try:
        nodes = start_nodes(2, f"--redis-url={redis.url}", f"--prefix={prefix}", *FAST)
        sender = await device(open_client, nodes[0].url, "xan", Platform.IOS)
        receiver = await device(open_client, nodes[1].url, "yul", Platform.IOS)
        acked: dict[str, int] = {}
        outage_errors = 0

        async def traffic() -> None:
            nonlocal outage_errors
            for n in range(120):
                client_msg_id = uuid.uuid4().hex
                for _ in range(60):
                    try:
                        reply = await sender.send_message(
                            m.TextContent(text=f"r{n}"),
                            to_user_id="yul",
                            client_msg_id=client_msg_id,
                        )
                        acked[f"r{n}"] = reply.seq
                        break
                    except ParleyError as exc:
                        assert exc.code == ErrorCode.UNAVAILABLE, exc
                        outage_errors += 1
                        await trio.sleep(0.1)
                else:
                    raise AssertionError(f"r{n} was never acknowledged")

        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(traffic)
                await eventually(lambda: len(acked) >= 30, timeout=60)
                await trio.to_thread.run_sync(redis.stop)
                await trio.sleep(1.0)
                await trio.to_thread.run_sync(redis.start)
        assert outage_errors > 0, "the outage was not noticed"
        # Sessions stayed open through the outage.
        assert sender.close_code is None and receiver.close_code is None
        texts = await all_texts(receiver, "si_xan_yul")
        assert len(texts) == len(set(texts))
        assert set(acked) == set(texts)
        assert sorted(acked.values()) == list(range(1, len(acked) + 1))
    finally:
        stop_all(nodes)
        redis.stop()


async def test_a_started_node_is_already_subscribed(
    start_node: StartNode, redis_client: redis.Redis, prefix: str
) -> None:
    """A node reports that it runs only once its listener has subscribed: a node that
    joins right after announces itself on the broadcast channel, and pushes to it are
    relayed only by the nodes that heard it (the others wait for their heartbeat)."""
    keys = Keys(prefix)

    def subscribers(channel: str) -> int:
        if isinstance(redis_client, redis.RedisCluster):
            master = redis_client.get_redis_connection(redis_client.get_node_from_key(channel))
            reply = master.execute_command("PUBSUB", "SHARDNUMSUB", channel)
            return int(reply[1])
        return int(redis_client.pubsub_numsub(channel)[0][1])

    for started in (1, 2):
        node = await start_node()
        assert subscribers(keys.node_inbox(node.node_id)) == 1
        assert subscribers(keys.broadcast_channel()) == started
