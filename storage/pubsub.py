"""The node's subscriptions to its pub/sub channels, for the cluster link's listener
thread (blocking: never used on the loop).

On one Redis server: ``SUBSCRIBE`` to every channel on one connection. On a Redis
Cluster: sharded pub/sub (Redis 7.0+), ``SSUBSCRIBE`` to each channel on a
connection to the master of the channel's slot (publications are ``SPUBLISH``ed,
routed the same way, ``Storage.publish``). When the slot moves (a failover, a
resharding) the server unsubscribes the channel (a ``sunsubscribe`` it sends by
itself) or the connection drops: ``read`` raises :class:`SubscriptionLost` or the
connection error, and the listener subscribes again, through the slot's new master.

redis-py may also reconnect a dropped pub/sub connection by itself (its retry) and
subscribe again without a word: ``read`` notices the extra confirmation that then
comes and counts it in ``resubscriptions``, since what was published between the
drop and the new subscription is lost and the listener must know it.
"""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import Callable, Sequence
from typing import Any, cast

import redis
from redis.client import PubSub

POLL_S = 0.001
"""How long a connection found readable is waited on for its first publication."""


class SubscriptionLost(redis.ConnectionError):
    """The server ended a sharded subscription (its slot moved to another master)."""


class NotMaster(redis.ConnectionError):
    """The slot map named a server as a channel's master that is a replica now."""


class Subscriptions:
    """Subscriptions to ``channels``: one ``PubSub`` on a single server, one per
    channel (``pubsub_for(channel)``: on the master of its slot) on a cluster."""

    def __init__(
        self,
        channels: Sequence[str],
        single: Callable[[], PubSub] | None,
        pubsub_for: Callable[[str], PubSub] | None,
    ) -> None:
        self._sharded = pubsub_for is not None
        self._pubsubs: list[PubSub] = []
        self._confirmations_due: list[int] = []
        """Per connection: subscriptions Redis has still to confirm."""
        self.resubscriptions = 0
        """Times redis-py reconnected a connection and subscribed again by itself."""
        try:
            if pubsub_for is not None:
                for channel in channels:
                    pubsub = pubsub_for(channel)
                    self._pubsubs.append(pubsub)
                    self._confirmations_due.append(1)
                    pubsub.ssubscribe(channel)
            else:
                assert single is not None
                pubsub = single()
                self._pubsubs.append(pubsub)
                self._confirmations_due.append(len(channels))
                pubsub.subscribe(*channels)
        except BaseException:
            self.close()
            raise

    def read(self, limit: int, timeout: float = 0.1) -> list[bytes]:
        """Wait (at most ``timeout``) for a publication on any of the connections,
        then take every one already here on each that has some (at most ``limit``)."""
        batch: list[bytes] = []
        if len(self._pubsubs) == 1:
            self._take(0, timeout, batch, limit)
            return batch
        for position in self._readable(timeout):
            if self._take(position, POLL_S, batch, limit):
                break
        return batch

    def _take(self, position: int, timeout: float, batch: list[bytes], limit: int) -> bool:
        """Add to ``batch`` the publications on connection ``position``, waiting at
        most ``timeout`` for the first; whether ``limit`` was reached."""
        # A timeout of 0 reads only what is buffered already (the connections skip
        # their readiness check, storage.connections).
        message = self._next(position, timeout)
        while message is not None:
            batch.append(message)
            if len(batch) >= limit:
                return True
            message = self._next(position, 0)
        return False

    def _readable(self, timeout: float) -> list[int]:
        """The connections with something to read: held in their parser (or TLS
        layer) already, else, waiting at most ``timeout`` on all of them at once, in
        the kernel's buffer. (Waiting on one connection and then polling the others
        held a publication on the others back for up to ``timeout``: a node's
        announcement reached the others after the sessions it had taken on.)"""
        waiting = [p for p, pubsub in enumerate(self._pubsubs) if _holds_data(pubsub)]
        if waiting:
            return waiting
        poller = select.poll()
        positions: dict[int, int] = {}
        for position, pubsub in enumerate(self._pubsubs):
            connection = pubsub.connection
            # Connected: a connection without a socket holds data (_holds_data).
            assert connection is not None and connection._sock is not None
            sock = cast(socket.socket, connection._sock)
            positions[sock.fileno()] = position
            poller.register(sock, select.POLLIN | select.POLLPRI)
        return sorted(positions[fd] for fd, _ in poller.poll(timeout * 1000))

    def _next(self, position: int, timeout: float) -> bytes | None:
        """The next publication's payload on connection ``position``, or None; skips
        the confirmations of its subscriptions."""
        pubsub = self._pubsubs[position]
        while True:
            message = cast(dict[str, Any] | None, pubsub.get_message(timeout=timeout))
            if message is None:
                return None
            kind = message["type"]
            if kind in ("message", "smessage"):
                return cast(bytes, message["data"])
            if kind in ("subscribe", "ssubscribe"):
                if self._confirmations_due[position] == 0:
                    self.resubscriptions += 1
                else:
                    self._confirmations_due[position] -= 1
            if kind == "sunsubscribe" and self._sharded:
                channel = message["channel"]
                name = channel.decode() if isinstance(channel, bytes) else str(channel)
                raise SubscriptionLost(f"the server ended the subscription to {name}")
            timeout = 0

    def close(self) -> None:
        for pubsub in self._pubsubs:
            with contextlib.suppress(redis.RedisError):
                pubsub.close()
        self._pubsubs.clear()
        self._confirmations_due.clear()


def _holds_data(pubsub: PubSub) -> bool:
    """Whether a read would find data without asking the kernel (or cannot tell: not
    connected, get_message connects it again)."""
    connection = pubsub.connection
    if connection is None or connection._sock is None:
        return True
    try:
        return bool(connection.can_read(0))
    except redis.ConnectionError:
        return True  # get_message reconnects and subscribes again
