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
from collections.abc import Callable, Sequence
from typing import Any, cast

import redis
from redis.client import PubSub

POLL_S = 0.001
"""How long the connections after the first are waited on in each ``read``."""


class SubscriptionLost(redis.ConnectionError):
    """The server ended a sharded subscription (its slot moved to another master)."""


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
        """Wait (at most ``timeout``) for a publication on the first channel's
        connection, then take every one already here on each (at most ``limit``)."""
        batch: list[bytes] = []
        for position in range(len(self._pubsubs)):
            # A timeout of 0 reads only what is buffered already (the connections skip
            # their readiness check, storage.connections): the others are polled.
            message = self._next(position, timeout if position == 0 else POLL_S)
            while message is not None:
                batch.append(message)
                if len(batch) >= limit:
                    return batch
                message = self._next(position, 0)
        return batch

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
