"""Misconfigurations an operator can make, through real ``server.py serve`` processes:
each is refused before the node serves anyone, with one line on stderr naming the
setting and the cause, and exit status 2; and the backup procedure of
docs/OPERATIONS.md restores a node's data."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import trio

from client import ParleyClient, Platform
from protocol import messages as m
from storage import EmbeddedRedis
from tests.processes import NodeProcess, refused, stop_all
from tests.support import both_stores

SECRET_A = "a" * 40
SECRET_B = "b" * 40


@pytest.fixture
def nodes() -> Iterator[list[NodeProcess]]:
    started: list[NodeProcess] = []
    yield started
    for node in started:
        node.process.send_signal(signal.SIGCONT)
    stop_all(started)


def cluster_args(redis_url: str, prefix: str, *more: str) -> list[str]:
    return [f"--redis-url={redis_url}", f"--prefix={prefix}", *more]


async def serves(url: str, user_id: str) -> None:
    async with trio.open_nursery() as nursery:
        client = ParleyClient(url, request_timeout=15)
        await client.connect(nursery)
        await client.register(user_id, "password-1")
        await client.login(user_id, "password-1", Platform.LINUX)
        await client.aclose()


@both_stores
async def test_a_second_live_node_with_the_same_id_is_refused(
    nodes: list[NodeProcess], redis_url: str, prefix: str, redis_client: redis.Redis
) -> None:
    args = cluster_args(redis_url, prefix, "--node-id=twin")
    nodes.append(NodeProcess(*args))
    first = nodes[0]
    record = redis_client.get(f"{prefix}{{n:twin}}")
    assert isinstance(record, bytes) and f" {first.process.pid} " in record.decode()

    line = refused(*args)
    assert "server.node_id" in line and "'twin'" in line, line
    assert f"pid {first.process.pid}" in line, line
    # The refused node removed nothing of the running one's.
    assert redis_client.get(f"{prefix}{{n:twin}}") == record
    await serves(first.url, "tina")


@both_stores
async def test_a_node_whose_id_is_claimed_by_another_instance_stops(
    nodes: list[NodeProcess], redis_url: str, prefix: str, redis_client: redis.Redis
) -> None:
    """If another instance takes the id over anyway (e.g. it judged this one gone while
    it was frozen), this one stops at its next heartbeat and leaves the other's record."""
    nodes.append(NodeProcess(*cluster_args(redis_url, prefix, "--node-id=solo", "--set",
                                           "cluster.node_timeout=3")))  # fmt: skip
    other = "0123abcd elsewhere pid:[1] 4242 1700000000000"
    redis_client.set(f"{prefix}{{n:solo}}", other, ex=30)
    with trio.fail_after(20):
        while nodes[0].process.poll() is None:
            await trio.sleep(0.1)
    assert nodes[0].process.returncode == 2
    await trio.sleep(0.2)
    lines = [line for line in nodes[0].stderr_lines if line.startswith("parley: ")]
    assert len(lines) == 1 and "was claimed by another running node" in lines[0], lines
    assert "host elsewhere, pid 4242" in lines[0]
    assert redis_client.get(f"{prefix}{{n:solo}}") == other.encode()


@both_stores
async def test_a_restarted_node_takes_its_id_over_from_its_killed_instance(
    nodes: list[NodeProcess], redis_url: str, prefix: str
) -> None:
    args = cluster_args(redis_url, prefix, "--node-id=phoenix")
    nodes.append(NodeProcess(*args))
    nodes[0].kill()
    started = time.monotonic()
    nodes.append(NodeProcess(*args))  # no wait for the old claim to expire (15 s)
    assert time.monotonic() - started < 10
    await serves(nodes[1].url, "pia")


@both_stores
async def test_a_node_with_other_cluster_settings_is_refused(
    nodes: list[NodeProcess], redis_url: str, prefix: str
) -> None:
    nodes.append(NodeProcess(*cluster_args(redis_url, prefix, f"--set=auth.secret={SECRET_A}")))
    line = refused(*cluster_args(redis_url, prefix, f"--set=auth.secret={SECRET_B}"))
    assert "auth.secret" in line and "values not shown" in line, line
    assert SECRET_A not in line and SECRET_B not in line and "aaaa" not in line
    line = refused(
        *cluster_args(
            redis_url, prefix, f"--set=auth.secret={SECRET_A}", "--set=session.multi_login=all"
        )
    )
    expected = "session.multi_login (this node 'all', the cluster 'one_per_platform_except_web')"
    assert expected in line, line
    assert "auth.secret" not in line
    # A node with the cluster's settings joins.
    nodes.append(NodeProcess(*cluster_args(redis_url, prefix, f"--set=auth.secret={SECRET_A}")))
    await serves(nodes[1].url, "sid")


@both_stores
async def test_settings_may_change_while_no_node_runs(
    nodes: list[NodeProcess], redis_url: str, prefix: str, redis_client: redis.Redis
) -> None:
    nodes.append(NodeProcess(*cluster_args(redis_url, prefix, "--set=messaging.friends_only=true")))
    nodes[0].stop()
    changed = NodeProcess(*cluster_args(redis_url, prefix), env={"PARLEY_LOG_LEVEL": "info"})
    nodes.append(changed)
    fingerprint = redis_client.hgetall(f"{prefix}{{cluster}}:fingerprint")
    assert fingerprint[b"messaging.friends_only"] == b"False"
    await trio.sleep(0.3)
    assert any("cluster settings changed" in line for line in changed.stderr_lines)


def test_a_short_secret_is_a_configuration_error() -> None:
    line = refused("--set=auth.secret=eighteen-bytes-xx")
    assert line.startswith("parley: configuration error: auth.secret: expected at least 32"), line


def test_an_unreachable_redis_is_named() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    line = refused(f"--redis-url=redis://:hunter2@127.0.0.1:{port}/0")
    assert line.startswith(f"parley: redis.url: cannot reach redis://127.0.0.1:{port}/0"), line
    assert "hunter2" not in line


def test_a_redis_refusing_the_password_is_named(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "locked")
    server.start()
    admin = redis.Redis(unix_socket_path=str(server.socket_path))
    try:
        admin.config_set("requirepass", "right-password")
        admin = redis.Redis(unix_socket_path=str(server.socket_path), password="right-password")
        line = refused(f"--redis-url=unix://{server.socket_path}?password=wrong-password")
        assert line.startswith("parley: redis.url: ") and "refused" in line, line
        assert "wrong-password" not in line
        line = refused(f"--redis-url=unix://{server.socket_path}")
        assert line.endswith("requires a password, and the URL gives none"), line
    finally:
        admin.config_set("requirepass", "")
        server.stop()


def test_a_port_in_use_is_named(redis_url: str, prefix: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = refused(*cluster_args(redis_url, prefix, f"--port={port}"))
    expected = f"server.port: cannot listen on 127.0.0.1:{port}: the address is already in use"
    assert line == f"parley: {expected}", line


def test_an_unusable_data_dir_is_named(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    line = refused(f"--data-dir={not_a_dir / 'data'}")
    assert line.startswith(f"parley: redis.data_dir: cannot use '{not_a_dir / 'data'}'"), line
    if os.geteuid() != 0:  # root may write anywhere
        read_only = tmp_path / "read-only"
        read_only.mkdir(mode=0o500)
        line = refused(f"--data-dir={read_only / 'data'}")
        assert line.startswith("parley: redis.data_dir: ") and "Permission denied" in line, line


def test_a_missing_redis_server_is_named(tmp_path: Path) -> None:
    line = refused(f"--data-dir={tmp_path}", "--set=redis.server_binary=/nonexistent/redis-server")
    assert line.startswith("parley: redis.server_binary: /nonexistent/redis-server"), line


def copy_aof(source: redis.Redis, into: Path) -> None:
    """The backup of docs/OPERATIONS.md: the AOF directory of a running Redis, copied
    while no AOF rewrite runs (automatic ones are held back meanwhile)."""
    settings = source.config_get("*")
    directory = Path(str(settings["dir"])) / str(settings["appenddirname"])
    percentage = str(settings["auto-aof-rewrite-percentage"])
    source.config_set("auto-aof-rewrite-percentage", 0)
    try:
        deadline = time.monotonic() + 30
        while source.info("persistence")["aof_rewrite_in_progress"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        shutil.copytree(directory, into / directory.name)
    finally:
        source.config_set("auto-aof-rewrite-percentage", percentage)


async def test_a_node_reads_the_data_of_a_restored_backup(tmp_path: Path) -> None:
    original = EmbeddedRedis(tmp_path / "original")
    original.start()
    try:
        node = NodeProcess(f"--redis-url={original.url}", "--node-id=backed-up")
        async with trio.open_nursery() as nursery:
            alice = ParleyClient(node.url, request_timeout=15)
            await alice.connect(nursery)
            await alice.register("bob", "password-2")
            await alice.register("alice", "password-1")
            await alice.login("alice", "password-1", Platform.LINUX)
            sent = await alice.send_text("kept in the backup", to_user_id="bob")
            await alice.aclose()
        # Taken while the node and Redis run.
        copy_aof(
            redis.Redis(unix_socket_path=str(original.socket_path), decode_responses=True),
            tmp_path / "restored",
        )
        stop_all([node])
    finally:
        original.stop()

    restored = EmbeddedRedis(tmp_path / "restored")
    restored.start()
    try:
        node = NodeProcess(f"--redis-url={restored.url}", "--node-id=restored")
        async with trio.open_nursery() as nursery:
            bob = ParleyClient(node.url, request_timeout=15)
            await bob.connect(nursery)
            await bob.login("bob", "password-2", Platform.IOS)
            pulled = await bob.pull_messages(sent.conversation_id, 1, sent.seq)
            assert [(p.seq, p.content) for p in pulled.items] == [
                (sent.seq, m.TextContent(text="kept in the backup"))
            ]
            await bob.aclose()
        stop_all([node])
    finally:
        restored.stop()


async def test_sessions_and_nodes_are_logged_one_json_line_per_event(
    nodes: list[NodeProcess], redis_url: str, prefix: str
) -> None:
    env = {"PARLEY_LOG_LEVEL": "info", "PARLEY_LOG_FORMAT": "json"}
    args = cluster_args(redis_url, prefix)
    nodes.append(NodeProcess(*args, "--node-id=logger-a", env=env))
    async with trio.open_nursery() as nursery:
        first = ParleyClient(nodes[0].url, request_timeout=15, reconnect=False)
        await first.connect(nursery)
        await first.register("lou", "password-1")
        await first.login("lou", "password-1", Platform.IOS)
        second = ParleyClient(nodes[0].url, request_timeout=15, reconnect=False)
        await second.connect(nursery)
        await second.login("lou", "password-1", Platform.IOS)  # kicks the first
        await first.wait_closed()
        await second.aclose()
    nodes.append(NodeProcess(*args, "--node-id=logger-b"))
    await trio.sleep(0.5)
    nodes[1].stop()
    await trio.sleep(0.5)

    events: dict[str, list[dict[str, object]]] = {}
    for line in nodes[0].stderr_lines:
        record = json.loads(line)
        if "event" in record:
            events.setdefault(str(record["event"]), []).append(record)
    sign_ins = events["sign-in"]
    assert len(sign_ins) == 2
    assert {(r["user"], r["platform"], r["node"]) for r in sign_ins} == {
        ("lou", Platform.IOS, "logger-a")
    }
    (kick,) = events["kick"]
    assert kick["user"] == "lou" and kick["session"] != kick["by_session"]
    assert len(events["sign-out"]) == 2
    assert {r["session"] for r in events["sign-out"]} == {r["session"] for r in sign_ins}
    assert [r["node"] for r in events["node-join"]] == ["logger-b"]
    assert [r["node"] for r in events["node-leave"]] == ["logger-b"]
