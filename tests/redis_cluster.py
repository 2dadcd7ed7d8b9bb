"""A real Redis Cluster on loopback for the tests: masters (and replicas) started from
the system's ``redis-server`` (7.0 or later, for sharded pub/sub) with
``--cluster-enabled yes``, joined with ``redis-cli --cluster create``.

Ports come from below the kernel's ephemeral range, together with their cluster bus
ports (port + 10000), so no outgoing connection of this machine can be holding a
port when a server that was stopped starts on it again.

Every server is started from one thread the cluster keeps until ``stop()``: a server
gets SIGTERM when the thread that started it ends (``die_with_parent``), and a
``restart`` called from a short-lived thread (the bench's failover thread) would
otherwise see its server stopped as soon as that thread returns.
"""

from __future__ import annotations

import random
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from storage.embedded import die_with_parent

MIN_VERSION = (7, 0)
INSTALL_HINT = (
    "the Redis Cluster tests need redis-server >= 7.0 and redis-cli on PATH: "
    "apt-get install -y redis-server (Debian bookworm has 7.0.15; .ci/run installs it)"
)
BUS_OFFSET = 10000
"""Redis Cluster's bus port is the client port + 10000."""
LOWEST_PORT = 10000
NODE_TIMEOUT_MS = 2000
"""``cluster-node-timeout``: how long a master may be unreachable before its replica
is promoted (short, for the failover test)."""


class ClusterUnavailable(RuntimeError):
    """No suitable redis-server / redis-cli: the message says how to install them."""


def cluster_binaries() -> tuple[str, str]:
    """``(redis-server, redis-cli)`` of version 7.0 or later, or ClusterUnavailable."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        raise ClusterUnavailable(INSTALL_HINT)
    printed = subprocess.run(
        [server, "--version"], capture_output=True, text=True, check=False
    ).stdout
    found = re.search(r"v=(\d+)\.(\d+)", printed)
    if found is None or (int(found.group(1)), int(found.group(2))) < MIN_VERSION:
        raise ClusterUnavailable(f"{server} is {printed.strip()!r}; {INSTALL_HINT}")
    return server, cli


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """``count`` consecutive ports whose bus ports are free too, below the ephemeral range."""
    highest = _ephemeral_low() - BUS_OFFSET - count
    for _ in range(200):
        base = random.randrange(LOWEST_PORT, highest)
        ports = list(range(base, base + count))
        if all(_port_free(p) and _port_free(p + BUS_OFFSET) for p in ports):
            return ports
    raise RuntimeError("no free ports for a Redis Cluster below the ephemeral range")


@dataclass(frozen=True)
class ClusterTls:
    """PEM files: every server's certificate and key, and the CA that signed them."""

    cert: str
    key: str
    ca: str


@dataclass
class ClusterNode:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    password: str = ""
    tls: ClusterTls | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        tls: dict[str, Any] = {}
        if self.tls is not None:
            tls = {"ssl": True, "ssl_ca_certs": self.tls.ca}
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password or None,
            socket_timeout=5,
            **tls,
        )


@dataclass
class RedisCluster:
    """``masters`` masters with ``replicas`` replicas each, in ``directory``; with
    ``password``, every server requires it (``requirepass``, and ``masterauth`` for
    its replication)."""

    directory: Path
    masters: int = 3
    replicas: int = 0
    password: str = ""
    tls: ClusterTls | None = None
    """With it, the servers speak only TLS, to clients, to each other (the cluster
    bus) and to their replicas."""
    appendfsync: str = "everysec"
    nodes: list[ClusterNode] = field(default_factory=list)
    _launcher: ThreadPoolExecutor | None = field(default=None, repr=False)

    @property
    def plain_url(self) -> str:
        """``redis://`` of the first node: with one master holding every slot, a plain
        client reaches every key through it, and Redis still refuses any step whose
        keys span slots, as a cluster of several masters would."""
        return f"redis://{self.nodes[0].address}"

    @property
    def url(self) -> str:
        """The seed list Parley's ``redis.url`` takes for a cluster."""
        credentials = f":{self.password}@" if self.password else ""
        scheme, options = "redis+cluster", ""
        if self.tls is not None:
            scheme, options = "rediss+cluster", f"?ssl_ca_certs={self.tls.ca}"
        hosts = ",".join(n.address for n in self.nodes)
        return f"{scheme}://{credentials}{hosts}{options}"

    def start(self, timeout: float = 60.0) -> None:
        server, cli = cluster_binaries()
        count = self.masters * (1 + self.replicas)
        for attempt in range(3):
            self.nodes = [
                ClusterNode(p, self.directory / str(p), password=self.password, tls=self.tls)
                for p in free_ports(count)
            ]
            try:
                for node in self.nodes:
                    self._launch(server, node)
                self._await(lambda n: bool(n.client().ping()), timeout)
                break
            except (RuntimeError, redis.RedisError):
                self.stop()  # a port was taken meanwhile: try others
                if attempt == 2:
                    raise
        if self.masters == 1 and self.replicas == 0:
            # redis-cli --cluster create wants three masters; one takes every slot itself.
            with self.nodes[0].client() as client:
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            self.await_healthy(timeout=timeout)
            return
        created = subprocess.run(
            [
                cli, "--cluster", "create", *(n.address for n in self.nodes),
                "--cluster-replicas", str(self.replicas), "--cluster-yes",
                *(("-a", self.password, "--no-auth-warning") if self.password else ()),
                *(("--tls", "--cacert", self.tls.ca) if self.tls else ()),
            ],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if created.returncode != 0:
            self.stop()
            raise RuntimeError(
                f"redis-cli --cluster create failed: {created.stdout}{created.stderr}"
            )
        self.await_healthy(timeout=timeout)

    def _launch(self, server: str, node: ClusterNode) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        args = [
            server,
            "--port", str(node.port),
            "--bind", "127.0.0.1",
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            "--dir", str(node.directory),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--logfile", "redis.log",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password, "--masterauth", self.password]
        if self.tls is not None:
            args[args.index("--port") + 1] = "0"
            args += [
                "--tls-port", str(node.port),
                "--tls-cert-file", self.tls.cert,
                "--tls-key-file", self.tls.key,
                "--tls-ca-cert-file", self.tls.ca,
                "--tls-auth-clients", "no",
                "--tls-cluster", "yes",
                "--tls-replication", "yes",
            ]  # fmt: skip
        if self._launcher is None:
            self._launcher = ThreadPoolExecutor(1, thread_name_prefix="redis-cluster-launcher")
        node.process = self._launcher.submit(
            subprocess.Popen,
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(),  # takes no lock: storage.embedded
        ).result()

    def _await(self, check: Callable[[ClusterNode], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for node in [n for n in self.nodes if n.process is not None]:
            while True:
                assert node.process is not None
                if node.process.poll() is not None:
                    raise RuntimeError(
                        f"redis-server on {node.address} exited with {node.process.returncode}"
                    )
                try:
                    if check(node):
                        break
                except redis.RedisError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {node.address} not ready in time")
                time.sleep(0.05)

    def await_healthy(self, replicas: int | None = None, timeout: float = 60.0) -> None:
        """Until every live node reports ``cluster_state:ok`` with every slot served,
        every master has ``replicas`` replicas attached (default: as started) and every
        replica's link to its master is up."""
        expected = self.replicas if replicas is None else replicas

        def healthy(node: ClusterNode) -> bool:
            client = node.client()
            try:
                state = client.cluster("INFO")
                if state.get("cluster_state") != "ok" or state.get("cluster_slots_ok") != "16384":
                    return False
                replication = client.info("replication")
                if replication["role"] == "master":
                    return int(replication["connected_slaves"]) >= expected
                return bool(replication.get("master_link_status") == "up")
            finally:
                client.close()

        self._await(healthy, timeout)

    def await_failover(self, dead: ClusterNode, timeout: float = 60.0) -> None:
        """After ``kill(dead)`` of a master: until every live node has stopped naming it
        as a slot's master (its replica was promoted), then ``await_healthy`` without
        replicas. Right after the kill the cluster still reports ``cluster_state:ok``
        with the dead master: failure detection takes ``cluster-node-timeout``."""

        def promoted(node: ClusterNode) -> bool:
            client = node.client()
            try:
                slots = client.cluster("SLOTS")
                return all(int(master[1]) != dead.port for _, _, master, *_ in slots)
            finally:
                client.close()

        self._await(promoted, timeout)
        self.await_healthy(replicas=0, timeout=timeout)

    def master_of_slot(self, slot: int) -> ClusterNode:
        """The node serving ``slot`` now, as the first live node that answers sees it."""
        for node in self.live_nodes():
            client = node.client()
            try:
                ranges = client.cluster("SLOTS")
            except redis.RedisError:
                continue
            finally:
                client.close()
            for start, end, master, *_ in ranges:
                if start <= slot <= end:
                    return next(n for n in self.nodes if n.port == int(master[1]))
        raise RuntimeError(f"no master serves slot {slot}")

    def replica_of(self, master: ClusterNode) -> ClusterNode:
        """The live replica of ``master``, as the replicas themselves say."""
        for node in self.live_nodes():
            client = node.client()
            try:
                role = client.role()
            finally:
                client.close()
            if role[0] == b"slave" and int(role[2]) == master.port:
                return node
        raise RuntimeError(f"{master.address} has no replica")

    def live_nodes(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def kill(self, node: ClusterNode) -> None:
        """SIGKILL one server: no AOF flush, no goodbye to the others."""
        assert node.process is not None
        node.process.kill()
        node.process.wait(10)
        node.process = None

    def restart(self, node: ClusterNode, timeout: float = 60.0) -> None:
        """Start a killed server again on its port and directory: it keeps its cluster
        identity (``nodes.conf``) and, its slots having moved to its promoted replica,
        rejoins as that master's replica; returns once every master has its replica
        again."""
        assert node.process is None
        server, _ = cluster_binaries()
        self._launch(server, node)
        self.await_healthy(timeout=timeout)

    def stop(self) -> None:
        """Stop every server (SIGTERM, then SIGKILL after 10 s) and wait for it."""
        running = [n.process for n in self.nodes if n.process is not None]
        for node in self.nodes:
            node.process = None
        for process in running:
            if process.poll() is None:
                process.terminate()
        for process in running:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self._launcher is not None:
            self._launcher.shutdown()
            self._launcher = None
