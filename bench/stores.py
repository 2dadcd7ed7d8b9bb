"""The store a multi-node scenario (``cluster``) starts for its nodes: ``--store``.

* ``redis`` (default): one Redis, ``storage.EmbeddedRedis`` (the system's
  ``redis-server``, a Unix socket, AOF with ``appendfsync everysec``, or
  ``always`` with ``--appendfsync``), reached by the nodes as an external Redis.
* ``cluster``: a Redis Cluster of ``--masters`` masters (and ``--replicas``
  replicas each) from the same ``redis-server`` on loopback TCP ports below the
  ephemeral range, AOF with the same ``appendfsync``, ``cluster-node-timeout``
  2 s; started by the tests' own fixture (``tests/redis_cluster.py``), so the
  bench and the suite run the same cluster. The nodes get its seed list,
  ``redis+cluster://h1:p1,h2:p2,...``, as ``redis.url``.

CPU is read per ``redis-server`` process from ``/proc``: the masters' together
and the replicas' together, by the role each had when the store started (a
killed master started again counts with the replicas). A process that died (a
killed master) keeps the CPU it had last been seen with; ``usage`` is read right
before the kill, so nothing of it is missed.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import redis

from bench import procstat

if TYPE_CHECKING:
    from storage import EmbeddedRedis
    from tests.redis_cluster import ClusterNode, RedisCluster

StoreKind = Literal["redis", "cluster"]
STORES: tuple[StoreKind, ...] = ("redis", "cluster")
Appendfsync = Literal["everysec", "always"]
APPENDFSYNC: tuple[Appendfsync, ...] = ("everysec", "always")


class StoreError(RuntimeError):
    """The store could not be started (e.g. no redis-server 7 for a cluster)."""


@dataclass(frozen=True)
class StoreUsage:
    masters_cpu_s: float | None
    """CPU of the single Redis, or of the cluster's masters (as started) together."""
    replicas_cpu_s: float | None
    """CPU of the cluster's replicas (as started) together; None without replicas."""
    rss_kb: int | None
    """Resident memory of every live server process together."""


@dataclass(frozen=True)
class Killed:
    """A master killed by ``kill_busiest_master`` (the one Redis of ``--store redis``)."""

    address: str
    keys: int
    """Keys it held when it was killed (the most of any master)."""
    keys_by_master: dict[str, int]
    unwritten_aof_bytes: int
    """Its ``aof_buffer_length`` right before the kill: writes it had applied (and
    may have answered) but not yet written to its AOF file. With ``appendfsync
    everysec``, while a background fsync runs (a busy disk) Redis holds them back
    for up to 2 s and keeps answering, and a kill loses them; otherwise they are
    at most one round of its event loop."""


@dataclass
class _Cpu:
    """CPU seconds per server process, the last value seen kept for one that died."""

    seen: dict[int, float] = field(default_factory=dict)

    def total(self, pids: list[int]) -> float | None:
        if not pids:
            return None
        total = 0.0
        for pid in pids:
            now = procstat.usage(pid)
            if now is not None:
                self.seen[pid] = now.cpu_s
            total += self.seen.get(pid, 0.0)
        return total


class SingleRedis:
    """``--store redis``: one ``storage.EmbeddedRedis`` in a temporary directory."""

    kind: StoreKind = "redis"

    def __init__(self, appendfsync: Appendfsync = "everysec") -> None:
        from storage import EmbeddedRedis

        self._directory = Path(tempfile.mkdtemp(prefix="parley-bench-redis-"))
        self._redis: EmbeddedRedis = EmbeddedRedis(self._directory, appendfsync=appendfsync)
        self._cpu = _Cpu()

    def start(self) -> None:
        self._redis.start()

    @property
    def url(self) -> str:
        return self._redis.url

    @property
    def description(self) -> str:
        return f"one Redis (redis-server on a Unix socket, AOF {self._redis.appendfsync})"

    def usage(self) -> StoreUsage:
        pid = self._redis.pid
        pids = [pid] if pid is not None else []
        rss = procstat.usage(pid) if pid is not None else None
        return StoreUsage(self._cpu.total(pids), None, rss.rss_kb if rss else None)

    def kill_busiest_master(self) -> Killed:
        """SIGKILL the Redis; its supervisor (``EmbeddedRedis``) starts it again on the
        same AOF after a quarter of a second."""
        pid = self._redis.pid
        if pid is None:
            raise StoreError("the Redis is not running")
        client = redis.Redis.from_url(self.url)
        try:
            keys = int(client.dbsize())
            unwritten = _unwritten_aof_bytes(client)
        finally:
            client.close()
        self.usage()
        os.kill(pid, signal.SIGKILL)
        return Killed(self.url, keys, {self.url: keys}, unwritten)

    def restart(self, killed: Killed, timeout: float = 60.0) -> None:
        """Nothing to do: its supervisor has started it again."""

    def await_failover(self, killed: Killed, timeout: float = 60.0) -> None:
        """Until the Redis started again answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            client = redis.Redis.from_url(self.url, socket_timeout=1)
            try:
                if client.ping():
                    return
            except redis.RedisError:
                pass
            finally:
                client.close()
            time.sleep(0.05)
        raise StoreError(f"the Redis did not answer again within {timeout} s")

    def stop(self) -> None:
        self._redis.stop()
        shutil.rmtree(self._directory, ignore_errors=True)


class ClusterStore:
    """``--store cluster``: a Redis Cluster started with the tests' fixture."""

    kind: StoreKind = "cluster"

    def __init__(
        self, masters: int = 3, replicas: int = 0, appendfsync: Appendfsync = "everysec"
    ) -> None:
        from tests.redis_cluster import RedisCluster

        self._directory = Path(tempfile.mkdtemp(prefix="parley-bench-cluster-"))
        self.cluster: RedisCluster = RedisCluster(
            self._directory, masters, replicas, appendfsync=appendfsync
        )
        self._cpu = _Cpu()
        self._masters: list[int] = []
        self._replicas: list[int] = []

    def start(self) -> None:
        from tests.redis_cluster import ClusterUnavailable

        try:
            self.cluster.start()
        except (ClusterUnavailable, RuntimeError) as exc:
            shutil.rmtree(self._directory, ignore_errors=True)
            raise StoreError(f"the Redis Cluster did not start: {exc}") from None
        for node in self.cluster.nodes:
            assert node.process is not None
            client = node.client()
            try:
                role = client.info("replication")["role"]
            finally:
                client.close()
            (self._masters if role == "master" else self._replicas).append(node.process.pid)

    @property
    def url(self) -> str:
        return self.cluster.url

    @property
    def description(self) -> str:
        cluster = self.cluster
        replicas = f", {cluster.replicas} replica each" if cluster.replicas else ""
        return (
            f"Redis Cluster of {cluster.masters} masters{replicas} (redis-server on loopback "
            f"TCP, AOF {cluster.appendfsync})"
        )

    def usage(self) -> StoreUsage:
        rss = [procstat.usage(p) for p in self._masters + self._replicas]
        return StoreUsage(
            self._cpu.total(self._masters),
            self._cpu.total(self._replicas),
            sum(u.rss_kb for u in rss if u is not None) or None,
        )

    def keys_by_master(self) -> dict[str, int]:
        """Keys held by each live master now (``DBSIZE``), by address."""
        counts: dict[str, int] = {}
        for node in self.cluster.live_nodes():
            client = node.client()
            try:
                if client.info("replication")["role"] == "master":
                    counts[node.address] = int(client.dbsize())
            finally:
                client.close()
        return counts

    def kill_busiest_master(self) -> Killed:
        """SIGKILL the master holding the most keys: the conversations' messages are
        most of the keys, so it is the master of the slots of the most traffic."""
        counts = self.keys_by_master()
        if not counts:
            raise StoreError("no live master to kill")
        busiest = max(counts, key=lambda address: counts[address])
        node = self._node(busiest)
        client = node.client()
        try:
            unwritten = _unwritten_aof_bytes(client)
        finally:
            client.close()
        self.usage()  # its CPU up to the kill is kept
        self.cluster.kill(node)
        return Killed(busiest, counts[busiest], counts, unwritten)

    def await_failover(self, killed: Killed, timeout: float = 60.0) -> None:
        """Until a replica serves the killed master's slots."""
        self.cluster.await_failover(self._node(killed.address), timeout)

    def restart(self, killed: Killed, timeout: float = 60.0) -> None:
        """Start the killed master again, and wait until it has rejoined as a replica
        (every master has its replicas again)."""
        node = self._node(killed.address)
        self.cluster.restart(node, timeout)
        assert node.process is not None
        self._replicas.append(node.process.pid)

    def _node(self, address: str) -> ClusterNode:
        return next(n for n in self.cluster.nodes if n.address == address)

    def stop(self) -> None:
        self.cluster.stop()
        shutil.rmtree(self._directory, ignore_errors=True)


Store = SingleRedis | ClusterStore


def _unwritten_aof_bytes(client: redis.Redis) -> int:
    return int(client.info("persistence")["aof_buffer_length"])


def open_store(
    kind: StoreKind, masters: int = 3, replicas: int = 0, appendfsync: Appendfsync = "everysec"
) -> Store:
    """Start the store ``kind``; the caller stops it."""
    store: Store = (
        SingleRedis(appendfsync)
        if kind == "redis"
        else ClusterStore(masters, replicas, appendfsync)
    )
    store.start()
    return store
