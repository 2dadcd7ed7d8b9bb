"""The actor runtime: entity actors as trio tasks on the node's one event loop.

Each user and each group is owned by an actor: a trio task with its own mailbox
that handles one message at a time, in arrival order, and is the only code that
touches its state. The :class:`Supervisor` routes every message to the actor of
its entity and manages lifetimes:

- **started on first use**: ``tell`` starts the entity's actor if none runs;
- **stopped when idle**: after ``idle_timeout`` without messages, unless something
  (a signed-in session) is attached to it; or at once when the actor reports that
  its entity does not exist (``entity_missing``). A stopping actor first handles
  what is already in its mailbox; messages that arrive meanwhile wait and then go
  to a new actor;
- **restarted after a failure**: an exception out of ``receive`` is logged, and the
  actor is made afresh by its factory (its state reset) and goes on with the rest
  of its mailbox. Only that actor is affected.

``tell`` never blocks and never waits: it appends to the mailbox and wakes the
actor's task if it is parked. Handlers are ``async def`` and await storage; an
actor waiting on Redis lets every other actor run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

log = logging.getLogger(__name__)

EntityKey = tuple[str, str]
FAIR_SHARE = 16
"""Messages an actor handles in a row before it lets other tasks run."""


class Actor(Protocol):
    """What the runtime runs: one instance per entity, used by one task only."""

    async def receive(self, message: Any) -> None:
        """Handle one message; may await. An exception restarts the actor."""
        ...

    async def stopped(self) -> None:
        """The actor is stopping (idle, entity missing, node shutdown): release what it
        holds (its lease). Not called after a failure."""
        ...


@dataclass(frozen=True)
class SupervisorLink:
    """How an actor reaches its supervisor (from its own task, synchronously)."""

    entity_missing: Callable[[], None]
    """The actor found that its entity does not exist (a made-up user or group id):
    stop it now unless something is attached to it."""


ActorFactory = Callable[[str, SupervisorLink], Actor]
"""Makes the actor of an entity id, given its link to the supervisor."""


@dataclass(eq=False)
class _Cell:
    """A running actor: its mailbox and the bookkeeping of its task."""

    key: EntityKey
    mailbox: list[Any] = field(default_factory=list)
    """A list, not a deque: a deque's first block alone is 600 bytes, and most
    mailboxes hold a message or two."""
    last_used: float = 0.0
    attached: int = 0
    stopping: bool = False
    task: trio.lowlevel.Task | None = None
    parked: bool = False
    waiting: list[Any] = field(default_factory=list)
    """Messages that arrived after the stop was asked; they go to the next actor."""

    def wake(self) -> None:
        if self.parked and self.task is not None:
            self.parked = False
            trio.lowlevel.reschedule(self.task)

    def abort_parked(self, _raise_cancel: Any) -> trio.lowlevel.Abort:
        # Cancelled: trio reschedules the task itself, so no tell may wake it too.
        self.parked = False
        return trio.lowlevel.Abort.SUCCEEDED


class Supervisor:
    """One per node; every method runs on the node's trio loop. ``run`` must be
    running (it holds the nursery of the actor tasks) before ``tell`` is called."""

    def __init__(self, factories: Mapping[str, ActorFactory], idle_timeout: float) -> None:
        self._factories = dict(factories)
        self._idle_timeout = idle_timeout
        self._live: dict[EntityKey, _Cell] = {}
        self._stopping: dict[EntityKey, _Cell] = {}
        self._nursery: trio.Nursery | None = None
        self._all_stopped = trio.Event()
        self._all_stopped.set()
        self._closing = False
        self.activations = 0
        self.restarts = 0
        """Actors made afresh after an exception."""
        self.passivations = 0
        """Actors stopped after the idle timeout."""
        self.missing_entity_stops = 0
        """Actors stopped early because their entity does not exist."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the actors' nursery and stop idle actors; runs until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                interval = max(self._idle_timeout / 4, 0.05)
                while True:
                    await trio.sleep(interval)
                    self.passivate_idle()
            finally:
                self._nursery = None

    # -- routing ------------------------------------------------------------

    def tell(self, kind: str, entity_id: str, message: Any) -> None:
        """Deliver ``message`` to the actor of (kind, entity_id), starting it if needed."""
        key = (kind, entity_id)
        if self._closing:
            log.debug("node stopping: dropped a message for %s/%s", kind, entity_id)
            return
        stopping = self._stopping.get(key)
        if stopping is not None:
            stopping.waiting.append(message)
            return
        cell = self._live.get(key) or self._activate(key)
        cell.last_used = trio.current_time()
        cell.mailbox.append(message)
        cell.wake()

    def attach(self, kind: str, entity_id: str) -> None:
        """Keep the entity's actor running while something (a session) depends on it."""
        cell = self._live.get((kind, entity_id))
        if cell is not None:
            cell.attached += 1

    def detach(self, kind: str, entity_id: str) -> None:
        cell = self._live.get((kind, entity_id))
        if cell is not None and cell.attached > 0:
            cell.attached -= 1
            cell.last_used = trio.current_time()

    @property
    def live_actors(self) -> int:
        return len(self._live)

    def live_by_kind(self) -> dict[str, int]:
        """Running actors (not stopping ones) per kind; every kind is listed."""
        counts = dict.fromkeys(self._factories, 0)
        for kind, _ in self._live:
            counts[kind] = counts.get(kind, 0) + 1
        return counts

    @property
    def stopping_actors(self) -> int:
        """Actors asked to stop that have not stopped yet."""
        return len(self._stopping)

    def is_live(self, kind: str, entity_id: str) -> bool:
        """Whether the entity has a running actor (not one that is stopping)."""
        return (kind, entity_id) in self._live

    # -- lifetimes ----------------------------------------------------------

    def _activate(self, key: EntityKey) -> _Cell:
        if self._nursery is None:
            raise RuntimeError("the supervisor is not running")
        cell = _Cell(key, last_used=trio.current_time())
        self._live[key] = cell
        self.activations += 1
        self._all_stopped = trio.Event() if self._all_stopped.is_set() else self._all_stopped
        self._nursery.start_soon(self._run_cell, cell, name=f"actor {key[0]}/{key[1]}")
        return cell

    def _make(self, cell: _Cell) -> Actor:
        kind, entity_id = cell.key
        return self._factories[kind](entity_id, SupervisorLink(lambda: self._missing(cell)))

    async def _run_cell(self, cell: _Cell) -> None:
        cell.task = trio.lowlevel.current_task()
        actor = self._make(cell)
        in_a_row = 0
        try:
            while True:
                if not cell.mailbox:
                    if cell.stopping:
                        break
                    in_a_row = 0
                    cell.parked = True
                    await trio.lowlevel.wait_task_rescheduled(cell.abort_parked)
                    continue
                message = cell.mailbox.pop(0)
                try:
                    await actor.receive(message)
                except Exception:
                    log.exception("actor %s/%s failed; restarting it", *cell.key)
                    self.restarts += 1
                    actor = self._make(cell)
                in_a_row += 1
                if in_a_row >= FAIR_SHARE:
                    in_a_row = 0
                    await trio.lowlevel.cancel_shielded_checkpoint()
            try:
                await actor.stopped()
            except Exception:
                log.exception("actor %s/%s failed while stopping", *cell.key)
        finally:
            cell.task = None
            self._on_stopped(cell)

    def _on_stopped(self, cell: _Cell) -> None:
        if self._live.get(cell.key) is cell:
            del self._live[cell.key]
        if self._stopping.get(cell.key) is cell:
            del self._stopping[cell.key]
        if not self._live and not self._stopping:
            self._all_stopped.set()
        if cell.waiting and not self._closing and self._nursery is not None:
            for message in cell.waiting:
                self.tell(*cell.key, message)

    def _missing(self, cell: _Cell) -> None:
        """An actor found that its entity does not exist: stop it unless something is
        attached. It first handles what is already in its mailbox."""
        if self._live.get(cell.key) is not cell or cell.attached > 0:
            return  # already stopping, restarted since, or a session depends on it
        self.missing_entity_stops += 1
        self._stop(cell)

    def _stop(self, cell: _Cell) -> None:
        del self._live[cell.key]
        self._stopping[cell.key] = cell
        cell.stopping = True
        cell.wake()

    def passivate_idle(self) -> None:
        """Stop the actors idle for ``idle_timeout`` with nothing attached."""
        now = trio.current_time()
        for cell in list(self._live.values()):
            if cell.attached == 0 and now - cell.last_used >= self._idle_timeout:
                self.passivations += 1
                self._stop(cell)

    async def stop_all(self, timeout: float = 10.0) -> None:
        """Stop every actor after it has handled what is already in its mailbox; wait at
        most ``timeout`` seconds for them. Messages told after this are dropped."""
        self._closing = True
        for cell in list(self._live.values()):
            self._stop(cell)
        with trio.move_on_after(timeout):
            await self._all_stopped.wait()
        if self._stopping:
            log.warning("%d actors did not stop within %.1f s", len(self._stopping), timeout)
