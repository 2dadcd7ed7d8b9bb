"""The stored data's layout (storage/layout.py): a fresh store is recorded as the
current layout, a store of layout 1 (before Redis Cluster) has its has-read and
cleared-up-to seqs moved to the conversations' slots by the first node that starts,
and a store of a later layout or with a layout-1 node running is refused, with one
line naming why."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis
import trio

from storage import LAYOUT_VERSION, LayoutRefused, Storage
from tests.conftest import StartNode
from tests.processes import refused
from tests.test_operator_safety import cluster_args


@pytest.fixture
async def storage(nursery: trio.Nursery, redis_url: str, prefix: str) -> AsyncIterator[Storage]:
    storage = Storage(redis_url, prefix, "node-l")
    await nursery.start(storage.run)
    yield storage
    storage.close()


async def test_a_fresh_store_is_recorded_as_the_current_layout(
    storage: Storage, redis_client: redis.Redis
) -> None:
    assert await storage.layout.current() is None
    assert await storage.layout.ensure() == 0
    assert redis_client.get(storage.keys.layout()) == str(LAYOUT_VERSION).encode()


async def test_read_seqs_of_layout_1_move_to_their_conversations(
    storage: Storage, redis_client: redis.Redis, prefix: str
) -> None:
    redis_client.hset(f"{prefix}{{u:alice}}:reads", mapping={"si_alice_bob": 5, "sg_g1": 9})
    redis_client.hset(f"{prefix}{{u:alice}}:cleared", mapping={"si_alice_bob": 2})
    redis_client.hset(f"{prefix}{{u:bob}}:reads", mapping={"si_alice_bob": 3})
    # written since by a node of layout 2: a move never lowers it
    redis_client.hset(f"{prefix}{{c:sg_g1}}:reads", "alice", 12)
    assert await storage.layout.ensure() == 3
    assert redis_client.hgetall(f"{prefix}{{c:si_alice_bob}}:reads") == {
        b"alice": b"5",
        b"cleared:alice": b"2",
        b"bob": b"3",
    }
    assert redis_client.hget(f"{prefix}{{c:sg_g1}}:reads", "alice") == b"12"
    assert not redis_client.exists(
        f"{prefix}{{u:alice}}:reads", f"{prefix}{{u:alice}}:cleared", f"{prefix}{{u:bob}}:reads"
    )
    state = await storage.conversations.read_state("alice", ["si_alice_bob", "sg_g1"])
    assert state == [(5, 2), (12, 0)]
    assert await storage.layout.ensure() == 0  # recorded: no second scan


async def test_a_store_of_a_later_layout_is_refused(
    storage: Storage, redis_client: redis.Redis
) -> None:
    redis_client.set(storage.keys.layout(), LAYOUT_VERSION + 1)
    with pytest.raises(LayoutRefused, match="later Parley version"):
        await storage.layout.ensure()
    assert redis_client.get(storage.keys.layout()) == str(LAYOUT_VERSION + 1).encode()


async def test_a_running_layout_1_node_stops_the_start(
    start_node: StartNode, redis_client: redis.Redis, redis_url: str, prefix: str
) -> None:
    redis_client.hset(f"{prefix}{{u:alice}}:reads", "si_alice_bob", 5)
    redis_client.zadd(f"{prefix}nodes", {"old-node": 1})
    redis_client.set(f"{prefix}node:old-node", "1", ex=60)
    line = refused(*cluster_args(redis_url, prefix))
    assert line.startswith("parley: redis.prefix: node 'old-node' of an earlier"), line
    assert "stop every node" in line
    assert redis_client.hget(f"{prefix}{{u:alice}}:reads", "si_alice_bob") == b"5"  # untouched
    redis_client.delete(f"{prefix}node:old-node")  # stopped: now the start moves the data
    await start_node()
    assert redis_client.hget(f"{prefix}{{c:si_alice_bob}}:reads", "alice") == b"5"
