"""Redis memory per account and per stored single-chat message, for sizing Redis.

    python bench/redis_memory.py [--users 100] [--messages 10000] [--text-bytes 60]

Starts its own Redis (AOF on, as embedded) and a node in this process, registers
``--users`` accounts, then sends ``--messages`` texts from the first user to the
others (one conversation per pair) through the SDK, and reports Redis'
``used_memory`` growth per account and per message.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import redis  # noqa: E402
import trio  # noqa: E402

import server  # noqa: E402
import settings as config  # noqa: E402
from client import ParleyClient, Platform  # noqa: E402
from storage import EmbeddedRedis  # noqa: E402

IN_FLIGHT = 50


def _used(admin: redis.Redis) -> int:
    return int(admin.info("memory")["used_memory"])


async def measure(users: int, messages: int, text_bytes: int) -> dict[str, float]:
    embedded = EmbeddedRedis(tempfile.mkdtemp(prefix="parley-redis-memory-"))
    embedded.start()
    try:
        admin = redis.Redis(unix_socket_path=str(embedded.socket_path))
        settings = config.build(
            {
                "server": {"port": 0},
                "redis": {"url": embedded.url},
                "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 1024},
                "log": {"level": "warning"},
            }
        )
        async with trio.open_nursery() as nursery:
            node: server.RunningNode = await nursery.start(server.serve, settings)
            client = ParleyClient(node.url, request_timeout=60)
            await client.connect(nursery)
            empty = _used(admin)
            for n in range(users):
                await client.register(f"user{n:05d}", "password-1")
            with_accounts = _used(admin)
            await client.login("user00000", "password-1", Platform.LINUX)
            before = _used(admin)
            text = "x" * text_bytes
            limiter = trio.Semaphore(IN_FLIGHT)

            async def send(i: int) -> None:
                async with limiter:
                    await client.send_text(text, to_user_id=f"user{1 + i % (users - 1):05d}")

            async with trio.open_nursery() as senders:
                for i in range(messages):
                    senders.start_soon(send, i)
            after = _used(admin)
            await client.aclose()
            await node.stop()
    finally:
        embedded.stop()
    return {
        "bytes_per_account": (with_accounts - empty) / users,
        "bytes_per_message": (after - before) / messages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--text-bytes", type=int, default=60)
    args = parser.parse_args()
    figures = trio.run(measure, args.users, args.messages, args.text_bytes)
    print(
        f"{figures['bytes_per_account']:.0f} bytes per account, "
        f"{figures['bytes_per_message']:.0f} bytes per message of {args.text_bytes} bytes "
        f"({args.messages} messages in {args.users - 1} conversations)"
    )


if __name__ == "__main__":
    main()
