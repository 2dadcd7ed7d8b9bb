"""A session's outbound queue: frames from any task of the loop to the session's one
writer task, bounded so that a client that stops reading is found out.

Not a trio memory channel: a channel pair costs about 1.6 KB per session (its state
and two channel objects), this a list and three slots; it needs no more than one
consumer, ``put`` that never waits, and ``close``.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class QueueFull(Exception):
    """The queue holds ``capacity`` items: the consumer does not keep up."""


class OutboundQueue(Generic[T]):
    __slots__ = ("_capacity", "_closed", "_items", "_waiter")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: list[T] = []
        self._waiter: trio.lowlevel.Task | None = None
        self._closed = False

    def put(self, item: T) -> None:
        """Queue ``item``; raises ``QueueFull``. After ``close`` it is dropped."""
        if self._closed:
            return
        if len(self._items) >= self._capacity:
            raise QueueFull()
        self._items.append(item)
        self._wake()

    def close(self) -> None:
        """No more items; the consumer gets what is queued, then ``None``."""
        self._closed = True
        self._wake()

    async def get(self) -> T | None:
        """The next item, waiting for one; ``None`` once closed and empty."""
        while not self._items:
            if self._closed:
                return None
            self._waiter = trio.lowlevel.current_task()
            try:
                await trio.lowlevel.wait_task_rescheduled(self._abort)
            finally:
                self._waiter = None
        await trio.lowlevel.checkpoint_if_cancelled()
        return self._items.pop(0)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            trio.lowlevel.reschedule(waiter)

    def _abort(self, _raise_cancel: object) -> trio.lowlevel.Abort:
        # Cancelled: trio reschedules the consumer itself, so no put may wake it too.
        self._waiter = None
        return trio.lowlevel.Abort.SUCCEEDED
