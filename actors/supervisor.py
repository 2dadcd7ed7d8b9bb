"""Routes messages to the actor that owns each entity, and manages actor lifetimes.

Activation on first use, passivation after an idle timeout (or as soon as an
actor finds that its entity does not exist), and restart after a crash all
happen here. The supervisor runs entirely in the trio thread; it reaches
actors only with ``tell()`` (non-blocking) and hears back from them only
through the bridge (``run_sync_soon``), by the calls of a :class:`SupervisorLink`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pykka
import trio

from actors.bridge import call_in_trio

log = logging.getLogger(__name__)

EntityKey = tuple[str, str]


@dataclass(frozen=True)
class SupervisorLink:
    """How an actor reaches its supervisor. An actor calls both from its own thread,
    with its urn; they only queue the supervisor's handling on the trio loop
    (:func:`actors.bridge.call_in_trio`) and return at once."""

    stopped: Callable[[str], None]
    """The actor has stopped (asked to, or because it failed)."""
    entity_missing: Callable[[str], None]
    """The actor answered a command and found that its entity does not exist (a made-up
    user or group id): the supervisor stops it now, unless a session depends on it,
    instead of letting it hold a thread until the idle timeout."""


ActorFactory = Callable[[str, SupervisorLink], "pykka.ActorRef[Any]"]
"""Starts the actor for an entity id, given its link to the supervisor; returns its ref."""


@dataclass
class _Live:
    ref: pykka.ActorRef[Any]
    last_used: float
    attached: int = 0


@dataclass
class _Stopping:
    urn: str
    waiting: list[Any] = field(default_factory=list)


class Supervisor:
    """One per node. Every method runs in the trio thread."""

    def __init__(
        self,
        trio_token: trio.lowlevel.TrioToken,
        factories: Mapping[str, ActorFactory],
        idle_timeout: float,
    ) -> None:
        self._token = trio_token
        self._factories = dict(factories)
        self._idle_timeout = idle_timeout
        self._live: dict[EntityKey, _Live] = {}
        self._stopping: dict[EntityKey, _Stopping] = {}
        self.activations = 0
        self.restarts = 0
        self.passivations = 0
        """Actors stopped after the idle timeout."""
        self.missing_entity_stops = 0
        """Actors stopped early because their entity does not exist."""

    # -- routing ------------------------------------------------------------

    def tell(self, kind: str, entity_id: str, message: Any) -> None:
        """Deliver ``message`` to the owner of (kind, entity_id), activating it if needed."""
        key = (kind, entity_id)
        stopping = self._stopping.get(key)
        if stopping is not None:
            stopping.waiting.append(message)
            return
        live = self._live.get(key) or self._activate(key)
        live.last_used = trio.current_time()
        try:
            live.ref.tell(message)
        except pykka.ActorDeadError:
            log.warning("actor %s/%s was dead; restarting it", kind, entity_id)
            self.restarts += 1
            self._live.pop(key, None)
            self._activate(key).ref.tell(message)

    def attach(self, kind: str, entity_id: str) -> None:
        """Keep the entity's actor alive while something (a session) depends on it."""
        live = self._live.get((kind, entity_id))
        if live is not None:
            live.attached += 1

    def detach(self, kind: str, entity_id: str) -> None:
        live = self._live.get((kind, entity_id))
        if live is not None and live.attached > 0:
            live.attached -= 1
            live.last_used = trio.current_time()

    @property
    def live_actors(self) -> int:
        return len(self._live)

    @property
    def stopping_actors(self) -> int:
        """Actors asked to stop that have not stopped yet."""
        return len(self._stopping)

    def is_live(self, kind: str, entity_id: str) -> bool:
        """Whether the entity has a running actor (not one that is stopping)."""
        return (kind, entity_id) in self._live

    def _activate(self, key: EntityKey) -> _Live:
        kind, entity_id = key

        def stopped(urn: str) -> None:
            call_in_trio(self._token, self._on_actor_stopped, key, urn)

        def entity_missing(urn: str) -> None:
            call_in_trio(self._token, self._on_entity_missing, key, urn)

        ref = self._factories[kind](entity_id, SupervisorLink(stopped, entity_missing))
        live = _Live(ref, trio.current_time())
        self._live[key] = live
        self.activations += 1
        return live

    def _on_actor_stopped(self, key: EntityKey, urn: str) -> None:
        live = self._live.get(key)
        if live is not None and live.ref.actor_urn == urn:
            # Stopped without being asked to: it failed. The next message restarts it.
            log.warning("actor %s/%s stopped unexpectedly", *key)
            del self._live[key]
            self.restarts += 1
        stopping = self._stopping.get(key)
        if stopping is not None and stopping.urn == urn:
            del self._stopping[key]
            for message in stopping.waiting:
                self.tell(*key, message)

    # -- lifetimes ----------------------------------------------------------

    def _on_entity_missing(self, key: EntityKey, urn: str) -> None:
        """An actor found that its entity does not exist: stop it now unless a session
        depends on it. As with an idle actor, it first handles what is already in its
        inbox (pykka queues the stop behind it), and commands that arrive while it
        stops wait and then start a new actor (e.g. one registering that user id)."""
        live = self._live.get(key)
        if live is None or live.ref.actor_urn != urn or live.attached > 0:
            return  # already stopping, restarted since, or a session depends on it
        self.missing_entity_stops += 1
        self._passivate(key, live)

    def _passivate(self, key: EntityKey, live: _Live) -> None:
        """Stop a live actor; messages for its entity wait until it has stopped."""
        del self._live[key]
        self._stopping[key] = _Stopping(live.ref.actor_urn)
        try:
            live.ref.stop(block=False)
        except pykka.ActorDeadError:
            self._on_actor_stopped(key, live.ref.actor_urn)

    async def run_passivation(self) -> None:
        """Stop actors idle for longer than the timeout. Runs until cancelled."""
        interval = max(self._idle_timeout / 4, 0.05)
        while True:
            await trio.sleep(interval)
            self.passivate_idle()

    def passivate_idle(self) -> None:
        now = trio.current_time()
        for key, live in list(self._live.items()):
            if live.attached == 0 and now - live.last_used >= self._idle_timeout:
                self.passivations += 1
                self._passivate(key, live)

    async def stop_all(self, timeout: float = 10.0) -> None:
        """Stop every actor after it has handled what is already in its inbox."""
        refs = [live.ref for live in self._live.values()]
        self._live.clear()
        futures = []
        for ref in refs:
            try:
                futures.append(ref.stop(block=False))
            except pykka.ActorDeadError:
                continue

        def join() -> None:
            for future in futures:
                try:
                    future.get(timeout=timeout)
                except (pykka.Timeout, pykka.ActorDeadError):
                    log.warning("an actor did not stop within %.1f s", timeout)

        await trio.to_thread.run_sync(join)
