"""Fixtures: one real Redis server per test run, a fresh key prefix per test, and
in-process server nodes listening on 127.0.0.1 port 0.

The store: ``redis_url`` (and so ``start_node``, ``node``, ``redis_client``) follows
the ``store`` fixture, ``"redis"`` (the run's single Redis server) unless a test is
parametrised over it. To run a whole test module against both a single Redis and a
real Redis Cluster of three masters (``redis_cluster``, shared by the run), add one
line to the module::

    pytestmark = both_stores  # from tests.support

(the ``both_stores`` marker); each test of it that uses the store (``redis_url``,
``start_node``, ``node``, ...) then runs twice, with ids ``[redis]`` and
``[cluster]``; the others once. ``redis_client`` is a
``redis.RedisCluster`` on the cluster (it routes each command by its key)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis
import trio

import server
from client import ParleyClient
from storage import EmbeddedRedis
from storage.cluster import is_cluster_url, seed_urls
from tests.redis_cluster import ClusterUnavailable, RedisCluster, cluster_binaries
from tests.support import Connect, node_settings

StartNode = Callable[..., Awaitable[server.RunningNode]]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_stores"):
        metafunc.parametrize("store", ["redis", "cluster"], indirect=True)


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
def store(request: pytest.FixtureRequest) -> str:
    """``"redis"`` or ``"cluster"``: the store ``redis_url`` names (see the docstring)."""
    kind = str(getattr(request, "param", "redis"))
    if kind not in ("redis", "cluster"):
        raise ValueError(f"store: expected 'redis' or 'cluster', got {kind!r}")
    return kind


@pytest.fixture
def redis_url(store: str, request: pytest.FixtureRequest) -> str:
    if store == "cluster":
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        return cluster.url
    server: EmbeddedRedis = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the store; on a cluster a ``redis.RedisCluster`` (typed as the
    ``redis.Redis`` whose commands it has)."""
    if is_cluster_url(redis_url):
        cluster_client = redis.RedisCluster.from_url(seed_urls(redis_url)[0])
        yield cast(redis.Redis, cluster_client)
        cluster_client.close()
        return
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
