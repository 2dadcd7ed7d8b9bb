"""The Redis Cluster the tests start (tests/redis_cluster.py): three masters that
share the slots, sharded pub/sub, and a replica that takes over from a killed master
with the writes its master had replicated."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import redis
from redis.cluster import ClusterNode as Seed
from redis.cluster import RedisCluster as ClusterClient
from redis.crc import key_slot

from tests.redis_cluster import INSTALL_HINT, ClusterUnavailable, RedisCluster, cluster_binaries


def test_without_redis_server_the_message_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ClusterUnavailable) as refused:
        cluster_binaries()
    assert str(refused.value) == INSTALL_HINT
    assert "apt-get install -y redis-server" in INSTALL_HINT


def client_of(cluster: RedisCluster) -> ClusterClient:
    seeds = [Seed("127.0.0.1", node.port) for node in cluster.live_nodes()]  # type: ignore[no-untyped-call]
    return ClusterClient(startup_nodes=seeds, socket_timeout=5)


def test_three_masters_share_the_slots(redis_cluster: RedisCluster) -> None:
    client = client_of(redis_cluster)
    try:
        masters = {n.port for n in redis_cluster.nodes}
        seen: set[int] = set()
        for i in range(30):
            key = f"fixture-test:{{u:user{i}}}:account"
            client.set(key, i)
            assert client.get(key) == str(i).encode()
            seen.add(redis_cluster.master_of_slot(key_slot(key.encode())).port)
        assert seen == masters
    finally:
        client.close()


def test_sharded_pubsub_reaches_the_subscriber(redis_cluster: RedisCluster) -> None:
    client = client_of(redis_cluster)
    pubsub = client.pubsub()  # type: ignore[no-untyped-call]
    try:
        channel = "fixture-test:{n:node-1}:inbox"
        pubsub.ssubscribe(channel)
        deadline = time.monotonic() + 10
        received = None
        while received is None and time.monotonic() < deadline:
            assert client.spublish(channel, b"hello") in (0, 1)
            message = pubsub.get_sharded_message(ignore_subscribe_messages=True, timeout=0.5)
            if message is not None:
                received = message
        assert received is not None and received["data"] == b"hello"
    finally:
        pubsub.close()
        client.close()


def test_a_replica_takes_over_a_killed_master(failover_cluster: RedisCluster) -> None:
    client = client_of(failover_cluster)
    key = "fixture-test:{c:si_a_b}:seq"
    try:
        client.set(key, 41)
        # WAIT: the write is on the replica before the master dies.
        master = failover_cluster.master_of_slot(key_slot(key.encode()))
        direct = master.client()
        assert direct.execute_command("WAIT", 1, 5000) == 1  # type: ignore[no-untyped-call]
        direct.close()
        failover_cluster.kill(master)
        failover_cluster.await_failover(master)
        promoted = failover_cluster.master_of_slot(key_slot(key.encode()))
        assert promoted.port != master.port
    finally:
        client.close()
    survivor = client_of(failover_cluster)
    try:
        assert survivor.incr(key) == 42
    except redis.RedisError as exc:  # pragma: no cover - shown in the failure
        raise AssertionError(f"the promoted replica does not serve {key}: {exc}") from exc
    finally:
        survivor.close()

    # Started again from a thread that then ends (as the bench's failover thread
    # does), the old master rejoins as the promoted one's replica and stays.
    restarter = threading.Thread(target=failover_cluster.restart, args=(master,))
    restarter.start()
    restarter.join(90)
    assert not restarter.is_alive()
    time.sleep(0.5)  # a server stopped with its starting thread would be gone by now
    assert master.process is not None and master.process.poll() is None
    direct = promoted.client()
    try:
        assert direct.incr(key) == 43
        assert direct.execute_command("WAIT", 1, 5000) == 1  # type: ignore[no-untyped-call]
    finally:
        direct.close()
