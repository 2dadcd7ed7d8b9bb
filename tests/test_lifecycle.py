"""The server as an operator runs it: a process with its embedded Redis, stopped
by a signal, restarted on the same data directory."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from client import ParleyClient, Platform
from tests.processes import NodeProcess
from tests.support import signed_in

ROOT = Path(__file__).resolve().parents[1]


def server_process(data_dir: Path) -> NodeProcess:
    return NodeProcess(f"--data-dir={data_dir}")


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_stops_gracefully_and_data_survives_restart(
    data_dir: Path, nursery: trio.Nursery, signum: int
) -> None:
    first = server_process(data_dir)
    try:
        client = ParleyClient(first.url, reconnect=False)
        await client.connect(nursery)
        token = await signed_in(client, "vera", Platform.MACOS)
        await client.set_profile(nickname="Vera V.", ex="kept")

        code, out = await trio.to_thread.run_sync(first.stop, signum)
        assert code == 0
        assert "parley stopped" in out
        await client.wait_closed()
        assert client.close_code == 1001
        # The embedded Redis was stopped with the node.
        assert not (data_dir / "redis.sock").exists()
        # Redis 6 writes one appendonly.aof; Redis 7 a directory of AOF parts.
        assert (data_dir / "appendonly.aof").exists() or any(
            (data_dir / "appendonlydir").glob("*.aof")
        )
    finally:
        if first.process.poll() is None:
            first.process.kill()

    second = server_process(data_dir)
    try:
        again = ParleyClient(second.url, reconnect=False)
        await again.connect(nursery)
        reply = await again.login_with_token(token)
        assert reply.profile.nickname == "Vera V."
        assert reply.profile.ex == "kept"
        other = ParleyClient(second.url, reconnect=False)
        await other.connect(nursery)
        assert (await other.login("vera", "password-1", Platform.IOS)).user_id == "vera"
        await again.aclose()
        await other.aclose()
    finally:
        code, _ = await trio.to_thread.run_sync(second.stop)
        assert code == 0
