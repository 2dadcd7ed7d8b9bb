"""The base of user and group actors: a pykka ``ThreadingActor`` made cheaper to
keep by the thousand.

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

if TYPE_CHECKING:
    from pykka._actor import ActorInbox


class EntityActor(pykka.ThreadingActor):
    """A ``ThreadingActor`` on a daemon thread with a light inbox."""

    use_daemon_thread = True

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        return inbox
