"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import trio

import settings as config
from client import ErrorCode, ParleyClient, ParleyError, Platform
from settings import Settings

both_stores = pytest.mark.both_stores
"""``pytestmark = both_stores``: run every test of a module that uses the store on a
single Redis and on a Redis Cluster (tests/conftest.py, ``pytest_generate_tests``)."""


def node_settings(redis_url: str, prefix: str, **sections: dict[str, Any]) -> Settings:
    """Settings for a node under test: port 0, the shared Redis, a private key prefix,
    and cheap password hashing. ``sections`` override, e.g. ``session={"idle_timeout": 1}``."""
    values: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0},
        "http": {"host": "127.0.0.1", "port": 0},
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
    try:
        await client.register(user_id, password, nickname=user_id.title())
    except ParleyError as exc:
        if exc.code != ErrorCode.USER_EXISTS:
            raise
    reply = await client.login(user_id, password, platform)
    return reply.token


Snapshot = dict[bytes, tuple[str, Any]]


def is_operational_key(key: bytes, prefix: str) -> bool:
    """Keys that change while nothing is stored: node heartbeats and membership, the
    leases naming which node owns an entity's actor, and the token buckets of the
    rate limits (a refused send takes a token too)."""
    return (
        key.startswith(f"{prefix}{{n:".encode())
        or key == f"{prefix}{{cluster}}:nodes".encode()
        or key.endswith(b":owner")
        or key.endswith(b":send_bucket")
    )


def stored_state(client: redis.Redis, prefix: str) -> Snapshot:
    """Every stored key under ``prefix`` with its type and value."""
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"
    state: Snapshot = {}
    key: bytes
    for key in client.scan_iter(match=pattern, count=1000):
        if is_operational_key(key, prefix):
            continue
        kind_raw: Any = client.type(key)
        kind = kind_raw.decode() if isinstance(kind_raw, bytes) else str(kind_raw)
        value: Any
        if kind == "none":
            continue  # deleted since SCAN saw it
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = client.smembers(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        else:
            value = client.dump(key)
        state[key] = (kind, value)
    return state


Connect = Callable[..., Awaitable[ParleyClient]]
"""The ``connect`` fixture: opens an SDK client to a URL."""


@dataclass
class User:
    """A signed-in user with two devices: a phone (iOS) and a desktop (Windows)."""

    user_id: str
    phone: ParleyClient
    desktop: ParleyClient

    @property
    def devices(self) -> tuple[ParleyClient, ParleyClient]:
        return self.phone, self.desktop


async def user(node: Any, connect: Connect, user_id: str) -> User:
    """Register ``user_id`` (if new) and sign it in on two devices of ``node``."""
    phone = await connect(node.url)
    await signed_in(phone, user_id, Platform.IOS)
    desktop = await connect(node.url)
    await desktop.login(user_id, "password-1", Platform.WINDOWS)
    return User(user_id, phone, desktop)


async def expect_error(code: ErrorCode, awaitable: Awaitable[object]) -> ParleyError:
    """The awaitable must fail with ``code``; returns the error."""
    with pytest.raises(ParleyError) as caught:
        await awaitable
    assert caught.value.code == code, caught.value
    assert caught.value.name == code.name
    return caught.value
