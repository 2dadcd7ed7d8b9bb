"""The base of user and group actors: a pykka ``ThreadingActor`` made cheaper to
keep by the thousand, holding its entity's lease while it runs and telling the
supervisor when it stops.

- A daemon thread: Python walks the list of all non-daemon threads whenever one
  starts, which made starting thousands of actors quadratic. The node stops every
  actor itself before it exits.
- A ``queue.SimpleQueue`` inbox instead of ``queue.Queue``: pykka needs only
  ``put``, ``get`` and ``empty``, and the C queue holds no condition variables
  (``queue.Queue`` has three, each with its own lock and deque): about 4 KB less
  per actor (bench/FINDINGS.md).
"""

from __future__ import annotations

import queue
from typing import TYPE_CHECKING, Any

import pykka

from actors.ownership import Ownership
from actors.services import NodeServices
from actors.supervisor import SupervisorLink

if TYPE_CHECKING:
    from pykka._actor import ActorInbox


class EntityActor(pykka.ThreadingActor):
    """A ``ThreadingActor`` on a daemon thread with a light inbox, owning one entity
    (a user or a group) of ``kind``. Its hooks run in the actor's thread."""

    use_daemon_thread = True

    def __init__(
        self, kind: str, entity_id: str, services: NodeServices, supervisor: SupervisorLink
    ) -> None:
        super().__init__()
        self._supervisor = supervisor
        self._ownership = Ownership(kind, entity_id, services)

    def on_stop(self) -> None:
        self._ownership.release()
        self._supervisor.stopped(self.actor_urn)

    def on_failure(self, *_exc: object) -> None:
        self._supervisor.stopped(self.actor_urn)

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        return inbox
