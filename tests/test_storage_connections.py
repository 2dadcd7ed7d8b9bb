"""Storage connections: blocking sockets with kernel timeouts, no readiness check
per command, and still the failures of a Redis that hangs or drops connections."""

from __future__ import annotations

import hashlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.client import PubSub
from redis.retry import Retry

from storage import EmbeddedRedis
from storage.connections import (
    LeanConnection,
    LeanUnixConnection,
    ScriptLoadingSSLConnection,
    connection_pool,
)
from storage.pubsub import Subscriptions


def _client(url: str, io_timeout: float = 5.0, retries: int = 1) -> redis.Redis:
    return redis.Redis(
        connection_pool=connection_pool(url, 4, io_timeout, Retry(NoBackoff(), retries))
    )


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP listener on 127.0.0.1 that accepts and reads but never answers: a hung Redis."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()
    accepted: list[socket.socket] = []

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    listener.close()


def test_connections_are_blocking_with_kernel_timeouts(redis_server: EmbeddedRedis) -> None:
    client = _client(redis_server.url, io_timeout=2.5)
    client.set("conn-test:a", b"1")
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        assert isinstance(connection, LeanUnixConnection)
        sock = connection._sock
        assert sock is not None
        assert sock.gettimeout() is None
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.calcsize("ll"))
        assert struct.unpack("ll", raw) == (2, 500_000)
    finally:
        pool.release(connection)
    client.delete("conn-test:a")
    client.close()


def test_tcp_urls_get_lean_connections_and_tls_keeps_its_own() -> None:
    retry = Retry(NoBackoff(), 0)
    assert connection_pool("redis://127.0.0.1:1", 1, 1, retry).connection_class is LeanConnection
    tls = connection_pool("rediss://127.0.0.1:1", 1, 1, retry).connection_class
    assert tls is ScriptLoadingSSLConnection
    assert issubclass(tls, redis.SSLConnection)


def test_new_connections_load_the_scripts(tmp_path: Path) -> None:
    """After Redis restarts (and forgets its scripts), the reconnected client finds them."""
    script = "return 'loaded'"
    sha = hashlib.sha1(script.encode()).hexdigest()
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    try:
        client = redis.Redis(
            connection_pool=connection_pool(
                server.url, 2, 5, Retry(ExponentialBackoff(cap=0.5, base=0.05), 3), (script,)
            )
        )
        assert client.evalsha(sha, 0) == b"loaded"
        server.stop()
        server.start()
        assert client.evalsha(sha, 0) == b"loaded"
        client.close()
    finally:
        server.stop()


def test_commands_pipelines_scripts_and_pubsub_work(redis_server: EmbeddedRedis) -> None:
    client = _client(redis_server.url)
    key = "conn-test:b"
    pipe = client.pipeline(transaction=True)
    pipe.set(key, b"x")
    pipe.append(key, b"y")
    pipe.get(key)
    assert pipe.execute() == [True, 2, b"xy"]
    assert client.eval("return redis.call('strlen', KEYS[1])", 1, key) == 2
    pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe("conn-test:channel")
    pubsub.get_message(timeout=0.2)  # reads the subscription's confirmation
    started = time.monotonic()
    assert pubsub.get_message(timeout=0.2) is None
    assert time.monotonic() - started >= 0.15  # the wait with a timeout still waits
    client.publish("conn-test:channel", b"hello")
    message = None
    deadline = time.monotonic() + 5
    while message is None and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
    assert message is not None and message["data"] == b"hello"
    pubsub.close()
    client.delete(key)
    client.close()


def test_one_read_takes_every_publication_already_received(
    redis_server: EmbeddedRedis,
) -> None:
    """A wait of 0 skips the kernel but still hands out what the parser holds: the
    listener gets every envelope that came in one recv in one batch, not one per
    read (which capped a node at one push per poll of its other connections)."""
    client = _client(redis_server.url)
    channels = ["conn-test:inbox", "conn-test:broadcast"]

    def single() -> PubSub:
        return cast(PubSub, client.pubsub())  # type: ignore[no-untyped-call]

    subscriptions = Subscriptions(channels, single, None)
    try:
        assert subscriptions.read(256, timeout=0.5) == []  # the confirmations
        for n in range(50):
            client.publish(channels[n % 2], b"%d" % n)
        time.sleep(0.2)  # all of them in the socket's buffer: one recv takes them
        batch = subscriptions.read(256, timeout=1)
        assert batch == [b"%d" % n for n in range(50)]
        assert subscriptions.resubscriptions == 0
    finally:
        subscriptions.close()
        client.close()


def test_a_read_wakes_for_a_publication_on_any_of_its_connections(
    redis_server: EmbeddedRedis,
) -> None:
    """Sharded subscriptions: a connection per channel. A publication on the second
    one ends the wait at once (it was held back until the first one's wait ended: a
    node's announcement reached the others after it had taken on sessions)."""
    client = _client(redis_server.url)
    channels = ["conn-test:{inbox}", "conn-test:{broadcast}"]

    def pubsub_for(_: str) -> PubSub:
        return cast(PubSub, client.pubsub())  # type: ignore[no-untyped-call]

    subscriptions = Subscriptions(channels, None, pubsub_for)
    try:
        assert subscriptions.read(256, timeout=0.5) == []  # the confirmations
        assert subscriptions.read(256, timeout=0.5) == []
        client.execute_command("SPUBLISH", channels[1], b"joined")  # type: ignore[no-untyped-call]
        started = time.monotonic()
        assert subscriptions.read(256, timeout=30) == [b"joined"]
        assert time.monotonic() - started < 15
        for n in range(20):
            client.execute_command("SPUBLISH", channels[n % 2], b"%d" % n)  # type: ignore[no-untyped-call]
        time.sleep(0.2)
        batch = subscriptions.read(256, timeout=1)
        assert sorted(batch) == sorted(b"%d" % n for n in range(20))
        assert subscriptions.resubscriptions == 0
    finally:
        subscriptions.close()
        client.close()


def test_a_redis_that_stops_answering_fails_the_command_after_the_timeout(
    silent_server: str,
) -> None:
    client = _client(silent_server, io_timeout=0.3, retries=0)
    started = time.monotonic()
    with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
        client.get("anything")
    assert time.monotonic() - started < 3
    client.close()


def test_a_dropped_connection_is_replaced_and_the_command_succeeds(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    client = _client(redis_server.url, retries=1)
    client.set("conn-test:c", b"kept")
    victim = client.client_id()
    assert redis_client.client_kill_filter(_id=str(victim)) == 1
    assert client.get("conn-test:c") == b"kept"
    client.delete("conn-test:c")
    client.close()
