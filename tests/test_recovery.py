"""How fast service comes back, with real processes: a node SIGKILLed and restarted
under the same node id serves every sender again at once; after Redis restarts
under two nodes, sends are acknowledged again soon after it is back, and no request
waits for ``session.request_deadline``."""

from __future__ import annotations

import random
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from client import ConnectionLost, ErrorCode, ParleyClient, ParleyError, Platform
from protocol import messages as m
from storage import EmbeddedRedis
from tests.processes import NodeProcess, start_nodes, stop_all
from tests.support import eventually, signed_in

FAST = ("--set", "cluster.node_timeout=2", "--set", "cluster.lease_time=2")
SENDERS = 12
RESTARTED_NODE_SERVES_WITHIN_S = 2.0
ACKS_AFTER_REDIS_RETURNS_WITHIN_S = 2.0
REQUEST_TIMEOUT_S = 10.0
"""The clients' own limit per request: well under the server's request deadline (30 s)."""


def free_port() -> int:
    """A free port below the ephemeral range, so a restarted node can take it again."""
    for _ in range(200):
        port = random.randint(20000, 30000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port")


@pytest.fixture
async def clients(nursery: trio.Nursery) -> AsyncIterator[list[ParleyClient]]:
    opened: list[ParleyClient] = []
    yield opened
    # Together: a client whose node has stopped waits up to 5 s for its close.
    async with trio.open_nursery() as closing:
        for client in opened:
            closing.start_soon(client.aclose)


async def open_sender(
    nursery: trio.Nursery, opened: list[ParleyClient], url: str, user_id: str, peer: str
) -> ParleyClient:
    """A signed-in sender whose peer has an account."""
    client = ParleyClient(
        url, request_timeout=REQUEST_TIMEOUT_S, backoff_initial=0.05, backoff_max=0.2
    )
    await client.connect(nursery)
    opened.append(client)
    try:
        await client.register(peer, "password-1")
    except ParleyError as exc:
        assert exc.code == ErrorCode.USER_EXISTS, exc
    await signed_in(client, user_id, Platform.IOS)
    return client


class Traffic:
    """Each sender sends to its peer in a loop, retrying under one client msg id, and
    records when each send was acknowledged and how long the slowest attempt took."""

    def __init__(self) -> None:
        self.acks: dict[str, list[float]] = {}
        self.seqs: dict[str, list[int]] = {}
        self.longest_attempt = 0.0
        self.stop = False

    async def run(self, sender: ParleyClient, user_id: str, peer: str) -> None:
        self.acks[user_id] = []
        self.seqs[user_id] = []
        n = 0
        while not self.stop and n < 2000:
            n += 1
            client_msg_id = uuid.uuid4().hex
            for _ in range(200):
                started = trio.current_time()
                try:
                    sent = await sender.send_message(
                        m.TextContent(text=f"{user_id}-{n}"),
                        to_user_id=peer,
                        client_msg_id=client_msg_id,
                    )
                except (ConnectionLost, trio.TooSlowError):
                    await trio.sleep(0.02)
                except ParleyError as exc:
                    assert exc.code == ErrorCode.UNAVAILABLE, exc
                    await trio.sleep(0.02)
                else:
                    self.acks[user_id].append(trio.current_time())
                    self.seqs[user_id].append(sent.seq)
                    break
                finally:
                    self.longest_attempt = max(self.longest_attempt, trio.current_time() - started)
            await trio.sleep(0.01)

    def first_ack_after(self, moment: float) -> dict[str, float]:
        """Per sender, how long after ``moment`` its first acknowledgement came."""
        return {
            user: min((t for t in times if t >= moment), default=float("inf")) - moment
            for user, times in self.acks.items()
        }


@pytest.mark.parametrize("setup", ["external-redis-fixed-node-id", "embedded-redis-defaults"])
async def test_a_node_restarted_after_sigkill_serves_every_sender_at_once(
    setup: str,
    redis_url: str,
    prefix: str,
    tmp_path: Path,
    nursery: trio.Nursery,
    clients: list[ParleyClient],
) -> None:
    """Restarted with the same node id on an external Redis, or with the default
    settings (a new random node id) on the same data directory: every sender signs
    in again and is acknowledged within the bound, and no acknowledged message is
    lost (each conversation's seqs stay gap-free and unique across the restart)."""
    port = free_port()
    if setup == "embedded-redis-defaults":
        args: tuple[str, ...] = (f"--data-dir={tmp_path / 'data'}",)
    else:
        args = (f"--redis-url={redis_url}", f"--prefix={prefix}", "--node-id=steady", *FAST)
    node = NodeProcess(*args, f"--port={port}")
    restarted: NodeProcess | None = None
    try:
        traffic = Traffic()
        async with trio.open_nursery() as senders:
            for n in range(SENDERS):
                sender = await open_sender(nursery, clients, node.url, f"snd{n}", f"rcv{n}")
                senders.start_soon(traffic.run, sender, f"snd{n}", f"rcv{n}")
            with trio.fail_after(60):
                await eventually(lambda: all(len(a) >= 3 for a in traffic.acks.values()), 60)
                node.kill()
                restarted = await trio.to_thread.run_sync(
                    lambda: NodeProcess(*args, f"--port={port}")
                )
                back = trio.current_time()
                await eventually(
                    lambda: all(w < float("inf") for w in traffic.first_ack_after(back).values()),
                    30,
                )
            traffic.stop = True
        waits = traffic.first_ack_after(back)
        slowest = max(waits.values())
        assert slowest <= RESTARTED_NODE_SERVES_WITHIN_S, sorted(waits.values())
        for user, seqs in traffic.seqs.items():
            assert seqs == list(range(1, len(seqs) + 1)), (user, seqs)
    finally:
        stop_all([n for n in (node, restarted) if n is not None])


async def test_sends_are_acknowledged_soon_after_redis_returns(
    tmp_path: Path, prefix: str, nursery: trio.Nursery, clients: list[ParleyClient]
) -> None:
    redis = EmbeddedRedis(tmp_path / "redis")
    await trio.to_thread.run_sync(redis.start)
    nodes: list[NodeProcess] = []
    try:
        nodes = start_nodes(2, f"--redis-url={redis.url}", f"--prefix={prefix}", *FAST)
        traffic = Traffic()
        async with trio.open_nursery() as senders:
            for n in range(SENDERS):
                url = nodes[n % 2].url
                sender = await open_sender(nursery, clients, url, f"snd{n}", f"rcv{n}")
                senders.start_soon(traffic.run, sender, f"snd{n}", f"rcv{n}")
            with trio.fail_after(90):
                await eventually(lambda: all(len(a) >= 3 for a in traffic.acks.values()), 60)
                await trio.to_thread.run_sync(redis.stop)
                await trio.sleep(2.0)
                await trio.to_thread.run_sync(redis.start)
                back = trio.current_time()
                await eventually(
                    lambda: all(w < float("inf") for w in traffic.first_ack_after(back).values()),
                    60,
                )
            traffic.stop = True
        waits = traffic.first_ack_after(back)
        assert max(waits.values()) <= ACKS_AFTER_REDIS_RETURNS_WITHIN_S, sorted(waits.values())
        assert traffic.longest_attempt < REQUEST_TIMEOUT_S
    finally:
        stop_all(nodes)
        await trio.to_thread.run_sync(redis.stop)
