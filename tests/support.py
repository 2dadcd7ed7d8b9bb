"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

from typing import Any

import trio

import settings as config
from client import ParleyClient
from settings import Settings


def test_settings(redis_url: str, prefix: str, **sections: dict[str, Any]) -> Settings:
    """Settings for a node under test: port 0, the shared Redis, a private key prefix,
    and cheap password hashing. ``sections`` override, e.g. ``session={"idle_timeout": 1}``."""
    values: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0},
        "redis": {"url": redis_url, "prefix": prefix},
        "auth": {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1},
        "log": {"level": "warning"},
    }
    for section, overrides in sections.items():
        values[section] = {**values.get(section, {}), **overrides}
    return config.build(values)


async def eventually(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> None:
    """Wait until ``predicate()`` (sync or async) is true; fail after ``timeout`` seconds."""
    with trio.fail_after(timeout):
        while True:
            result = predicate()
            if hasattr(result, "__await__"):
                result = await result
            if result:
                return
            await trio.sleep(interval)


async def drain(client: ParleyClient, quiet: float = 0.2) -> list[Any]:
    """Every event that arrives until none has come for ``quiet`` seconds."""
    events: list[Any] = []
    while True:
        with trio.move_on_after(quiet) as waited:
            events.append(await client.next_event(timeout=quiet * 2))
        if waited.cancelled_caught:
            return events


def notification_types(events: list[Any]) -> list[int]:
    from protocol.messages import Notification

    return [e.type for e in events if isinstance(e, Notification)]


async def signed_in(
    client: ParleyClient, user_id: str, platform: int = 7, password: str = "password-1"
) -> str:
    """Register ``user_id`` (if new) and sign ``client`` in; returns the token."""
    from client import ErrorCode, ParleyError

    try:
        await client.register(user_id, password, nickname=user_id.title())
    except ParleyError as exc:
        if exc.code != ErrorCode.USER_EXISTS:
            raise
    reply = await client.login(user_id, password, platform)
    return reply.token
