"""The embedded Redis belongs to its node: it dies with the node however the node
ends, is started again when it dies under a running node, and is never run twice
on one data directory. Real ``redis-server`` and node processes throughout."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import trio

import server
from client import ErrorCode, ParleyError, Platform
from protocol import messages as m
from storage import EmbeddedRedis, EmbeddedRedisError
from storage import embedded as embedded_module
from storage.embedded import find_redis_server, process_alive, redis_servers_on
from tests.processes import NodeProcess
from tests.support import Connect, eventually, node_settings, signed_in


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    # Whatever happened, leave no server of this directory running.
    for pid in redis_servers_on(path / "redis.sock"):
        os.kill(pid, signal.SIGKILL)


def server_pid(data_dir: Path) -> int:
    """The pid of the redis-server answering on the data directory's socket."""
    client = redis.Redis(unix_socket_path=str(data_dir / "redis.sock"), socket_timeout=5)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


def wait_gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def text_of(message: m.ChatMessage) -> str:
    assert isinstance(message.content, m.TextContent)
    return message.content.text


# -- dies with its node -------------------------------------------------------------


async def test_sigkill_of_the_node_leaves_no_redis_and_a_restart_keeps_the_data(
    data_dir: Path, connect: Connect
) -> None:
    first = NodeProcess(f"--data-dir={data_dir}")
    try:
        alice = await connect(first.url, reconnect=False)
        bob = await connect(first.url, reconnect=False)
        await signed_in(alice, "alice", Platform.LINUX)
        await signed_in(bob, "bob", Platform.IOS)
        sent = await alice.send_text("acknowledged before the kill", to_user_id="bob")
        pid = await trio.to_thread.run_sync(server_pid, data_dir)
        assert redis_servers_on(data_dir / "redis.sock") == [pid]

        await trio.to_thread.run_sync(first.kill)
        # The kernel sends the orphan SIGTERM: a clean Redis shutdown, no file left.
        assert await trio.to_thread.run_sync(wait_gone, pid), "redis-server outlived its node"
        assert redis_servers_on(data_dir / "redis.sock") == []
        assert not (data_dir / "redis.sock").exists()
        assert not (data_dir / "redis.pid").exists()
    finally:
        if first.process.poll() is None:
            first.kill()

    second = NodeProcess(f"--data-dir={data_dir}")
    try:
        again = await connect(second.url, reconnect=False)
        await again.login("bob", "password-1", Platform.IOS)
        pulled = await again.pull_messages(sent.conversation_id)
        assert [(p.seq, text_of(p)) for p in pulled.items] == [
            (sent.seq, "acknowledged before the kill")
        ]
        assert await trio.to_thread.run_sync(server_pid, data_dir) != pid

        # A second node on the same data directory is refused, in one line.
        with pytest.raises(AssertionError) as refused:
            NodeProcess(f"--data-dir={data_dir}")
        assert f"parley: data directory {data_dir} is in use by another parley node" in str(
            refused.value
        )
        assert "Traceback" not in str(refused.value)
        await again.aclose()
    finally:
        code, _ = await trio.to_thread.run_sync(second.stop)
    assert code == 0
    assert redis_servers_on(data_dir / "redis.sock") == []


# -- restarted under a running node -------------------------------------------------


async def test_redis_killed_under_a_running_node_is_restarted_and_keeps_acked_messages(
    data_dir: Path,
    nursery: trio.Nursery,
    connect: Connect,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A first restart delay long enough that requests surely meet the outage.
    monkeypatch.setattr(embedded_module, "RESTART_DELAY_FIRST", 1.5)
    settings = node_settings("", prefix, redis={"data_dir": str(data_dir)})
    node: server.RunningNode = await nursery.start(server.serve, settings)
    try:
        alice = await connect(node.url, reconnect=False)
        bob = await connect(node.url, reconnect=False)
        await signed_in(alice, "alice", Platform.LINUX)
        await signed_in(bob, "bob", Platform.IOS)
        before = await alice.send_text("acknowledged before the kill", to_user_id="bob")
        pid = await trio.to_thread.run_sync(server_pid, data_dir)

        os.kill(pid, signal.SIGKILL)
        assert await trio.to_thread.run_sync(wait_gone, pid)
        with pytest.raises(ParleyError) as outage:
            await alice.send_text("during the outage", to_user_id="bob")
        assert outage.value.code == ErrorCode.UNAVAILABLE

        # The same client message id on every try: a send is stored at most once.
        started = trio.current_time()
        with trio.fail_after(30):
            while True:
                try:
                    after = await alice.send_message(
                        m.TextContent(text="after the restart"),
                        to_user_id="bob",
                        client_msg_id="after-1",
                    )
                    break
                except ParleyError as exc:
                    assert exc.code == ErrorCode.UNAVAILABLE, exc
                    await trio.sleep(0.1)
        assert trio.current_time() - started < 20
        assert after.seq == before.seq + 1

        pulled = await bob.pull_messages(before.conversation_id)
        assert [(p.seq, text_of(p)) for p in pulled.items] == [
            (before.seq, "acknowledged before the kill"),
            (after.seq, "after the restart"),
        ]
        assert await trio.to_thread.run_sync(server_pid, data_dir) != pid

        def logged() -> list[str]:
            return [
                r.getMessage()
                for r in caplog.records
                if r.name == "storage.embedded" and r.levelno >= logging.WARNING
            ]

        # The supervisor logs the restart once the server answers, maybe after the send.
        await eventually(lambda: any("started again" in line for line in logged()))
        assert any(f"(pid {pid}) was killed by SIGKILL" in line for line in logged()), logged()
    finally:
        with trio.fail_after(30):
            await node.stop()
    assert redis_servers_on(data_dir / "redis.sock") == []


def test_stop_during_the_restart_back_off_stops_for_good(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedded_module, "RESTART_DELAY_FIRST", 60.0)
    instance = EmbeddedRedis(data_dir)
    instance.start()
    try:
        pid = instance.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert wait_gone(pid)
    finally:
        began = time.monotonic()
        instance.stop()
    assert time.monotonic() - began < 10  # the back-off wait ends at once
    assert redis_servers_on(data_dir / "redis.sock") == []
    assert instance.restarts == 0


# -- one server per data directory --------------------------------------------------


def test_a_second_instance_on_the_same_data_dir_is_refused(data_dir: Path) -> None:
    with EmbeddedRedis(data_dir) as running:
        with pytest.raises(EmbeddedRedisError, match="in use by another parley node"):
            EmbeddedRedis(data_dir).start()
        assert redis_servers_on(data_dir / "redis.sock") == [running.pid]
    # Stopping released the lock.
    with EmbeddedRedis(data_dir):
        pass


def test_a_live_server_without_a_node_is_refused(data_dir: Path) -> None:
    """A redis-server that outlived its node (e.g. one started before parent-death
    signals) still serves the socket: no second server on the same AOF."""
    data_dir.mkdir()
    args = [
        find_redis_server(),
        "--port", "0",
        "--unixsocket", str(data_dir / "redis.sock"),
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--save", "",
        "--logfile", str(data_dir / "orphan.log"),
    ]  # fmt: skip
    orphan = subprocess.Popen(args, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (data_dir / "redis.sock").exists():
            assert orphan.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        began = time.monotonic()
        with pytest.raises(EmbeddedRedisError) as refused:
            EmbeddedRedis(data_dir, orphan_grace=0.5).start()
        assert time.monotonic() - began >= 0.5  # it waited for a shutdown under way
        assert f"pid {orphan.pid}" in str(refused.value)
        assert "is still serving data directory" in str(refused.value)
        assert redis_servers_on(data_dir / "redis.sock") == [orphan.pid]
    finally:
        orphan.kill()
        orphan.wait(timeout=10)


def test_stale_socket_and_pid_files_are_removed(data_dir: Path) -> None:
    data_dir.mkdir()
    # A socket file nobody listens on, as a killed server leaves it.
    left = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    left.bind(str(data_dir / "redis.sock"))
    left.close()
    # A pid file naming a process that has gone.
    gone = subprocess.Popen(["true"])
    gone.wait(timeout=10)
    (data_dir / "redis.pid").write_text(f"{gone.pid}\n")
    with EmbeddedRedis(data_dir, orphan_grace=0.5) as instance:
        assert instance.pid is not None
        assert server_pid(data_dir) == instance.pid
        assert (data_dir / "redis.pid").read_text().strip() == str(instance.pid)
