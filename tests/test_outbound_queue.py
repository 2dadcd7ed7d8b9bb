"""A session's outbound queue, without sockets: order, the bound, close, and a
consumer that waits."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors.node.outbound import OutboundQueue, QueueFull


async def test_items_come_out_in_order_and_close_ends_the_consumer() -> None:
    queue = OutboundQueue[int](capacity=10)
    got: list[int] = []

    async def consume() -> None:
        while (item := await queue.get()) is not None:
            got.append(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await trio.sleep(0.01)  # the consumer waits on an empty queue
        for n in range(5):
            queue.put(n)
        await trio.sleep(0.01)
        queue.put(5)
        queue.close()
        queue.put(6)  # after close: dropped
    assert got == [0, 1, 2, 3, 4, 5]


async def test_a_full_queue_refuses_and_keeps_what_it_holds() -> None:
    queue = OutboundQueue[str](capacity=2)
    queue.put("a")
    queue.put("b")
    with pytest.raises(QueueFull):
        queue.put("c")
    assert await queue.get() == "a"
    queue.put("c")
    assert [await queue.get(), await queue.get()] == ["b", "c"]


async def test_a_cancelled_consumer_leaves_the_items() -> None:
    queue = OutboundQueue[int](capacity=2)
    with trio.move_on_after(0.01):
        await queue.get()
    queue.put(1)
    assert await queue.get() == 1


async def test_a_put_just_after_the_consumer_was_cancelled_wakes_nothing() -> None:
    queue = OutboundQueue[int](capacity=2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.get)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()  # trio reschedules the consumer with Cancelled
        queue.put(1)  # so this must not reschedule it a second time
    assert await queue.get() == 1
