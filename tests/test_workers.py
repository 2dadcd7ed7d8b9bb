"""``parley serve --workers N``: worker processes share one port and the supervisor's
embedded Redis, serve each other's users, are restarted when they die, and all stop
on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from client import ParleyClient, Platform
from protocol import messages as m
from storage import Keys
from storage.embedded import process_alive
from tests.processes import ROOT, NodeProcess
from tests.support import Connect, eventually, signed_in

PREFIX = "parley:"
CLIENTS = 16
"""Connections opened at once: the kernel hashes each to a worker, so 16 all landing on
one of two workers would happen once in 2**15 runs."""


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def worker_pids(supervisor: NodeProcess) -> dict[str, int]:
    """Node id -> pid of each running worker of ``supervisor``."""
    found: dict[str, int] = {}
    for pid in children(supervisor.process.pid):
        line = command_line(pid)
        for node_id in supervisor.node_ids:
            if f"server.node_id={node_id} " in line and process_alive(pid):
                found[node_id] = pid
    return found


class Service:
    """The supervisor under test, its Redis and a way to tell which worker holds a
    user's session."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.supervisor = NodeProcess("--workers=2", f"--data-dir={data_dir}")
        self.redis = redis.Redis(unix_socket_path=str(data_dir / "redis.sock"))
        self.keys = Keys(PREFIX)

    def node_of(self, user_id: str) -> set[str]:
        sessions: list[bytes] = self.redis.hkeys(self.keys.presence(user_id))  # type: ignore[assignment]
        return {s.decode().split(":")[0] for s in sessions}

    def redis_pid(self) -> int:
        return int(self.redis.info("server")["process_id"])


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    started = Service(tmp_path / "data")
    yield started
    started.redis.close()
    if started.supervisor.process.poll() is None:
        started.supervisor.stop(timeout=40)


async def sign_in_many(
    service: Service, connect: Connect, names: list[str]
) -> dict[str, ParleyClient]:
    """One client per name, all signed in; fails unless they are on both workers."""
    clients: dict[str, ParleyClient] = {}
    for name in names:
        client = await connect(service.supervisor.url, reconnect=False)
        await signed_in(client, name, Platform.LINUX)
        clients[name] = client
    nodes = {name: service.node_of(name) for name in names}
    assert all(len(n) == 1 for n in nodes.values()), nodes
    assert set().union(*nodes.values()) == set(service.supervisor.node_ids), nodes
    return clients


def on_node(service: Service, names: list[str], node_id: str) -> list[str]:
    return [n for n in names if service.node_of(n) == {node_id}]


async def exchange(sender: ParleyClient, receiver: ParleyClient, to_user: str, text: str) -> None:
    sent = await sender.send_text(text, to_user_id=to_user)
    pushed = await receiver.next_event(m.NewMessage, timeout=10)
    assert pushed.message.seq == sent.seq
    assert isinstance(pushed.message.content, m.TextContent)
    assert pushed.message.content.text == text


async def test_workers_serve_one_service_restart_and_stop(
    service: Service, connect: Connect
) -> None:
    first, second = service.supervisor.node_ids
    pids = worker_pids(service.supervisor)
    assert set(pids) == {first, second}
    redis_pid = service.redis_pid()
    assert parent_of(redis_pid) == service.supervisor.process.pid  # the supervisor's Redis

    names = [f"user{i}" for i in range(CLIENTS)]
    clients = await sign_in_many(service, connect, names)
    here, there = on_node(service, names, first)[0], on_node(service, names, second)[0]
    await exchange(clients[here], clients[there], there, "across workers")
    await exchange(clients[there], clients[here], here, "and back")

    # A worker killed outright is started again under its node id, and serves.
    doomed = on_node(service, names, first)
    os.kill(pids[first], signal.SIGKILL)
    restarted = f"worker 1 (node {first}, pid"

    def serves_again() -> bool:
        lines = service.supervisor.stderr_lines
        return any(restarted in line and "serves again" in line for line in lines)

    await eventually(serves_again, timeout=60)
    assert worker_pids(service.supervisor)[first] != pids[first]
    # Its users sign in again; new connections go to both workers again.
    survivor = clients[there]
    again = await sign_in_many(service, connect, doomed + [f"late{i}" for i in range(12)])
    back = doomed[0]
    await exchange(again[back], survivor, there, "after the restart")
    await exchange(survivor, again[back], back, "welcome back")

    # SIGTERM: every worker shuts down gracefully, then the supervisor's Redis.
    workers = list(worker_pids(service.supervisor).values())
    status, printed = service.supervisor.stop(signal.SIGTERM, timeout=40)
    assert status == 0, service.supervisor.stderr_lines
    assert printed.strip().splitlines()[-1] == "parley stopped"
    for pid in [*workers, redis_pid]:
        assert not process_alive(pid), command_line(pid)


def test_workers_and_redis_end_with_a_killed_supervisor(service: Service) -> None:
    workers = list(worker_pids(service.supervisor).values())
    redis_pid = service.redis_pid()
    service.supervisor.kill()
    deadline = time.monotonic() + 30
    while any(process_alive(p) for p in [*workers, redis_pid]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in [*workers, redis_pid]:
        assert not process_alive(pid), command_line(pid)


def run_server(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "server.py", "serve", *args],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_port_in_use_stops_the_supervisor_with_a_message(redis_url: str, prefix: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = run_server("--workers=2", f"--port={port}", f"--redis-url={redis_url}")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"parley: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    assert "listening" not in done.stdout


def test_workers_must_be_at_least_one() -> None:
    done = run_server("--workers=0")
    assert done.returncode == 2
    assert done.stderr.strip() == "parley: --workers: expected 1 or more, got 0"


def free_port_pair() -> int:
    """A port p, below the ephemeral range, with p and p + 1 free on 127.0.0.1."""
    for port in range(20000 + os.getpid() % 5000 * 2, 30000, 2):
        with contextlib.ExitStack() as held:
            try:
                for each in (port, port + 1):
                    held.enter_context(socket.create_server(("127.0.0.1", each)))
            except OSError:
                continue
        return port
    raise AssertionError("no two free ports")


def test_each_worker_has_its_own_http_port(tmp_path: Path) -> None:
    base = free_port_pair()
    supervisor = NodeProcess(
        "--workers=2",
        f"--data-dir={tmp_path / 'data'}",
        "--set",
        "http.enabled=true",
        "--set",
        f"http.port={base}",
    )
    try:
        nodes = set()
        for port in (base, base + 1):
            ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10)
            assert ready.status_code == 200, ready.text
            nodes.add(ready.json()["node_id"])
        assert len(nodes) == 2, nodes
    finally:
        supervisor.stop(timeout=40)
