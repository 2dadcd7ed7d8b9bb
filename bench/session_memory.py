"""Where a signed-in session's memory goes: Python heap per session, by layer.

    python bench/session_memory.py [--sessions 2000]

Starts a node in this process with its own Redis and tracemalloc on, runs the
connect scenario (token sign-ins, then a hold) against it from another process,
and during the hold attributes every allocation made since the start to the
innermost frame of either our code or the WebSocket library. The heap is what
tracemalloc sees: RSS per connection (``connect`` scenario) is a few KB higher.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import trio  # noqa: E402

import server  # noqa: E402
import settings as config  # noqa: E402
from storage import EmbeddedRedis  # noqa: E402

LAYERS = (
    ("websocket library (trio-websocket, wsproto, h11)", ("trio_websocket", "wsproto", "/h11/")),
    ("connection (our tasks, queue, state)", ("/actors/node/",)),
    ("actors (user actor task, mailbox, lease)", ("/actors/", "/protocol/")),
)


def layer_of(trace: tracemalloc.Traceback) -> str:
    for frame in reversed(list(trace)):
        for name, marks in LAYERS:
            if any(mark in frame.filename for mark in marks):
                return name
    return "other"


async def measure(sessions: int, hold_s: float) -> None:
    with tempfile.TemporaryDirectory() as data:
        redis = EmbeddedRedis(Path(data) / "redis")
        redis.start()
        try:
            settings = config.build(
                {
                    "server": {"host": "127.0.0.1", "port": 0},
                    "redis": {"url": redis.url, "prefix": "memory:"},
                    "log": {"level": "warning"},
                }
            )
            async with trio.open_nursery() as nursery:
                node: server.RunningNode = await nursery.start(server.serve, settings)
                tracemalloc.start(8)
                await trio.sleep(0.5)
                before = tracemalloc.take_snapshot()
                load = await trio.lowlevel.open_process(
                    [
                        sys.executable,
                        str(_REPO / "bench" / "load.py"),
                        "connect",
                        "--url",
                        node.url,
                        "--redis-url",
                        redis.url,
                        "--prefix",
                        "memory:",
                        "--clients",
                        str(sessions),
                        "--duration",
                        str(hold_s),
                        "--password-logins",
                        "0",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                while node.gateway.connection_count < sessions and load.poll() is None:
                    await trio.sleep(0.5)
                await trio.sleep(2)
                after = tracemalloc.take_snapshot()
                held = max(1, node.gateway.connection_count)
                by_layer: dict[str, int] = {}
                for stat in after.compare_to(before, "traceback"):
                    name = layer_of(stat.traceback)
                    by_layer[name] = by_layer.get(name, 0) + stat.size_diff
                total = sum(by_layer.values())
                print(f"{held} sessions: {total / held / 1024:.1f} KiB of Python heap each")
                for name, size in sorted(by_layer.items(), key=lambda kv: -kv[1]):
                    print(f"  {size / held / 1024:6.1f} KiB  {name}")
                await load.wait()
                await node.stop()
        finally:
            redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--hold", type=float, default=15.0, help="seconds the sessions stay")
    args = parser.parse_args()
    trio.run(measure, args.sessions, args.hold)


if __name__ == "__main__":
    main()
