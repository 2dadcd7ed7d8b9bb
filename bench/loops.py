"""Load shapes: closed loop (a fixed number of workers, each starting the next item as
soon as its last one finished: maximum throughput) and open loop (items started at a
fixed rate whether or not earlier ones have finished: latency at a given load).

Times passed to actions are ``time.monotonic()`` values, comparable across
processes. In an open loop an item's latency should be counted from its
*scheduled* start, so a slow server cannot hide queueing (coordinated omission).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import trio

Action = Callable[[int, float], Awaitable[None]]
"""``action(index, start)``: do item ``index``; ``start`` is when it was due."""


async def closed_loop(count: int, concurrency: int, action: Action) -> None:
    """Run ``action`` for 0..count-1 with at most ``concurrency`` in flight."""
    indices = iter(range(count))

    async def runner() -> None:
        for index in indices:
            await action(index, time.monotonic())

    async with trio.open_nursery() as nursery:
        for _ in range(max(1, min(concurrency, count))):
            nursery.start_soon(runner)


async def open_loop(count: int, rate: float, action: Action) -> None:
    """Start ``action`` for 0..count-1 at ``rate`` per second, on schedule."""
    if rate <= 0:
        raise ValueError("rate must be > 0")
    started_mono = time.monotonic()
    started_trio = trio.current_time()
    async with trio.open_nursery() as nursery:
        for index in range(count):
            offset = index / rate
            await trio.sleep_until(started_trio + offset)
            nursery.start_soon(action, index, started_mono + offset)


async def run_load(count: int, concurrency: int, rate: float | None, action: Action) -> None:
    """Open loop when ``rate`` is given, closed loop otherwise."""
    if rate:
        await open_loop(count, rate, action)
    else:
        await closed_loop(count, concurrency, action)
