"""Fixtures: one real Redis server per test run, a fresh key prefix per test, and
in-process server nodes listening on 127.0.0.1 port 0."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import trio

import server
from client import ParleyClient
from storage import EmbeddedRedis
from tests.redis_cluster import ClusterUnavailable, RedisCluster, cluster_binaries
from tests.support import Connect, node_settings

StartNode = Callable[..., Awaitable[server.RunningNode]]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    instance = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    instance.start()
    yield instance
    instance.stop()


def _cluster(directory: Path, replicas: int) -> RedisCluster:
    try:
        cluster_binaries()
    except ClusterUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    cluster = RedisCluster(directory, masters=3, replicas=replicas)
    cluster.start()
    return cluster


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A Redis Cluster of three masters for the whole run (fails, saying how to install
    redis-server, when there is none)."""
    cluster = _cluster(tmp_path_factory.mktemp("redis-cluster"), replicas=0)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def slot_checking_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A one-master Redis Cluster holding every slot, reached through
    ``plain_url`` (a plain ``redis://`` URL): what runs on a single Redis runs on it,
    except a step whose keys span slots, which Redis refuses ("Keys in request don't
    hash to the same slot")."""
    try:
        cluster_binaries()
    except ClusterUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    cluster = RedisCluster(tmp_path_factory.mktemp("slot-checking-redis"), masters=1)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def failover_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """Three masters with one replica each, for one test that may kill masters."""
    cluster = _cluster(tmp_path / "redis-cluster", replicas=1)
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
async def start_node(
    nursery: trio.Nursery, redis_url: str, prefix: str
) -> AsyncIterator[StartNode]:
    """Start a node with ``node_settings`` plus overrides; all are stopped at teardown."""
    nodes: list[server.RunningNode] = []

    async def start(**sections: dict[str, Any]) -> server.RunningNode:
        settings = node_settings(redis_url, prefix, **sections)
        node: server.RunningNode = await nursery.start(server.serve, settings)
        nodes.append(node)
        return node

    yield start
    with trio.fail_after(30):
        for node in nodes:
            await node.stop()


@pytest.fixture
async def node(start_node: StartNode) -> server.RunningNode:
    return await start_node()


@pytest.fixture
async def connect(nursery: trio.Nursery) -> AsyncIterator[Connect]:
    """Open SDK clients that are closed at teardown: ``client = await connect(node.url)``."""
    clients: list[ParleyClient] = []

    async def open_one(url: str, **options: Any) -> ParleyClient:
        options.setdefault("request_timeout", 15.0)
        client = ParleyClient(url, **options)
        await client.connect(nursery)
        clients.append(client)
        return client

    yield open_one
    for client in clients:
        await client.aclose()
