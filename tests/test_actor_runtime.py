"""The actor runtime without Redis or sockets: mailboxes in order, one message at a
time per actor, actors independent of each other, restart after a failure, idle and
missing-entity stops, and a drained stop at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import trio.testing

from actors.runtime.supervisor import FAIR_SHARE, Supervisor, SupervisorLink


@dataclass
class Journal:
    """What every actor of a test did, in order."""

    events: list[tuple[str, Any]] = field(default_factory=list)
    made: int = 0


class Recorder:
    """Records each message; ``("sleep", s)`` awaits, ``"boom"`` raises, ``"missing"``
    reports its entity missing; ``state`` counts messages since (re)start."""

    def __init__(self, entity_id: str, link: SupervisorLink, journal: Journal) -> None:
        self.entity_id = entity_id
        self.link = link
        self.journal = journal
        self.state = 0
        self.busy = False
        journal.made += 1

    async def receive(self, message: Any) -> None:
        assert not self.busy, "two messages at once"
        self.busy = True
        try:
            self.state += 1
            if isinstance(message, tuple) and message[0] == "sleep":
                await trio.sleep(message[1])
            if message == "boom":
                raise RuntimeError("boom")
            if message == "missing":
                self.link.entity_missing()
            self.journal.events.append((self.entity_id, (message, self.state)))
        finally:
            self.busy = False

    async def stopped(self) -> None:
        self.journal.events.append((self.entity_id, "stopped"))


@pytest.fixture
async def journal() -> Journal:
    return Journal()


@pytest.fixture
async def supervisor(nursery: trio.Nursery, journal: Journal) -> AsyncIterator[Supervisor]:
    def make(entity_id: str, link: SupervisorLink) -> Recorder:
        return Recorder(entity_id, link, journal)

    sup = Supervisor({"thing": make}, idle_timeout=0.2)
    await nursery.start(sup.run)
    yield sup
    await sup.stop_all(timeout=5)


def messages_of(journal: Journal, entity_id: str) -> list[Any]:
    return [e[1] for e in journal.events if e[0] == entity_id]


async def until(predicate: Any, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.005)


async def test_messages_are_handled_one_at_a_time_in_arrival_order(
    supervisor: Supervisor, journal: Journal
) -> None:
    for n in range(50):
        supervisor.tell("thing", "a", ("sleep", 0.001) if n % 7 == 0 else n)
    await until(lambda: len(messages_of(journal, "a")) == 50)
    states = [state for _, state in messages_of(journal, "a")]
    assert states == list(range(1, 51))
    assert supervisor.activations == 1


async def test_an_actor_waiting_does_not_hold_up_another(
    supervisor: Supervisor, journal: Journal
) -> None:
    supervisor.tell("thing", "slow", ("sleep", 1.0))
    supervisor.tell("thing", "fast", "hello")
    await until(lambda: messages_of(journal, "fast") != [])
    assert messages_of(journal, "slow") == []
    await until(lambda: messages_of(journal, "slow") != [])


async def test_a_failure_restarts_that_actor_alone_with_fresh_state(
    supervisor: Supervisor, journal: Journal
) -> None:
    for message in ("one", "two", "boom", "three"):
        supervisor.tell("thing", "a", message)
    supervisor.tell("thing", "b", "x")
    supervisor.tell("thing", "b", "y")
    await until(lambda: len(messages_of(journal, "a")) == 3 and len(messages_of(journal, "b")) == 2)
    assert messages_of(journal, "a") == [("one", 1), ("two", 2), ("three", 1)]
    assert messages_of(journal, "b") == [("x", 1), ("y", 2)]
    assert supervisor.restarts == 1
    assert supervisor.is_live("thing", "a") and supervisor.is_live("thing", "b")


async def test_idle_actors_stop_unless_attached(supervisor: Supervisor, journal: Journal) -> None:
    supervisor.tell("thing", "idle", "m")
    supervisor.tell("thing", "held", "m")
    supervisor.attach("thing", "held")
    await until(lambda: "stopped" in messages_of(journal, "idle"), timeout=5)
    assert supervisor.passivations >= 1
    assert not supervisor.is_live("thing", "idle")
    assert supervisor.is_live("thing", "held")
    supervisor.detach("thing", "held")
    await until(lambda: "stopped" in messages_of(journal, "held"), timeout=5)
    supervisor.tell("thing", "idle", "again")  # started again on use
    await until(lambda: ("again", 1) in messages_of(journal, "idle"))


async def test_missing_entity_stops_at_once_and_later_messages_start_a_new_actor(
    supervisor: Supervisor, journal: Journal
) -> None:
    supervisor.tell("thing", "ghost", "missing")
    supervisor.tell("thing", "ghost", "queued before the stop")
    await until(lambda: not supervisor.is_live("thing", "ghost"))
    supervisor.tell("thing", "ghost", "after")  # arrives while it stops, or after
    await until(lambda: any(m == ("after", 1) for m in messages_of(journal, "ghost")))
    assert messages_of(journal, "ghost") == [
        ("missing", 1),
        ("queued before the stop", 2),
        "stopped",
        ("after", 1),
    ]
    assert supervisor.missing_entity_stops == 1
    supervisor.attach("thing", "ghost")
    supervisor.tell("thing", "ghost", "missing")  # attached: not stopped
    await until(lambda: ("missing", 2) in messages_of(journal, "ghost"))
    assert supervisor.is_live("thing", "ghost")


async def test_a_busy_actor_lets_others_run(supervisor: Supervisor, journal: Journal) -> None:
    for n in range(FAIR_SHARE * 8):
        supervisor.tell("thing", "busy", n)
    supervisor.tell("thing", "other", "hi")
    await until(lambda: messages_of(journal, "other") != [])
    position = journal.events.index(("other", ("hi", 1)))
    assert position < FAIR_SHARE * 8, "the other actor waited for the whole mailbox"


async def test_stop_all_handles_the_mailbox_first(nursery: trio.Nursery, journal: Journal) -> None:
    def make(entity_id: str, link: SupervisorLink) -> Recorder:
        return Recorder(entity_id, link, journal)

    sup = Supervisor({"thing": make}, idle_timeout=60)
    await nursery.start(sup.run)
    for n in range(10):
        sup.tell("thing", "a", ("sleep", 0.001))
        sup.tell("thing", "b", n)
    await sup.stop_all(timeout=5)
    assert len(messages_of(journal, "a")) == 11 and messages_of(journal, "a")[-1] == "stopped"
    assert len(messages_of(journal, "b")) == 11 and messages_of(journal, "b")[-1] == "stopped"
    assert sup.live_actors == 0 and sup.stopping_actors == 0
    sup.tell("thing", "a", "late")  # the node is stopping: dropped, no new actor
    assert sup.live_actors == 0


async def test_a_tell_just_after_the_actors_were_cancelled_wakes_nothing(journal: Journal) -> None:
    def make(entity_id: str, link: SupervisorLink) -> Recorder:
        return Recorder(entity_id, link, journal)

    sup = Supervisor({"thing": make}, idle_timeout=60)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        sup.tell("thing", "a", "first")
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()  # the parked actor is rescheduled with Cancelled
        sup.tell("thing", "a", "second")  # so this must not reschedule it a second time
    assert messages_of(journal, "a") == [("first", 1)]
