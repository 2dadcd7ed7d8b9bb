"""Requests of this node's sessions that were forwarded to the node owning their
entity, from the forward until their reply comes back over pub/sub.

Pub/sub delivers at most once: a reply published while this node's subscription was
down (Redis restarting, the inbox channel's master failing over) is lost. The
session would then answer the request ``UNAVAILABLE`` only after
``session.request_deadline`` (30 s by default). Instead, whenever the listener loses
its subscription or subscribes again, every request still waiting here is answered
``UNAVAILABLE`` at once: the client resends it (a send with the same client message
id, which is idempotent), and a reply that still comes later is dropped by the
session, as after the deadline.

Only requests forwarded from this node are kept (a command forwarded again by a node
that was not the owner any more is answered straight to the session's node); an
entry older than ``session.request_deadline`` is dropped, since its session has
answered it by then.
"""

from __future__ import annotations

import logging

import trio

from actors.runtime.messages import Command
from actors.runtime.replies import refuse
from protocol.errors import ErrorCode

log = logging.getLogger(__name__)

REPLY_LOST = "the reply may have been lost while this node was reconnecting to Redis; try again"


class ForwardedRequests:
    """Used on the node's event loop only."""

    def __init__(self, deadline_s: float) -> None:
        self._deadline_s = deadline_s
        self._waiting: dict[tuple[str, int], tuple[float, Command]] = {}
        """(session id, rid) -> (when forwarded, the command), oldest first."""
        self.answered_unavailable = 0
        """Requests answered ``UNAVAILABLE`` because their reply may have been lost."""

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, command: Command) -> None:
        now = trio.current_time()
        waiting = self._waiting
        cutoff = now - self._deadline_s
        while waiting:
            key, (forwarded_at, _) = next(iter(waiting.items()))
            if forwarded_at > cutoff:
                break
            del waiting[key]
        key = (command.session.session_id, command.request.rid)
        waiting.pop(key, None)  # a request forwarded again goes to the end
        waiting[key] = (now, command)

    def replied(self, session_id: str, rid: int) -> None:
        self._waiting.pop((session_id, rid), None)

    def reply_path_lost(self, why: str) -> None:
        """The subscription was lost or made again: answer every waiting request."""
        waiting, self._waiting = self._waiting, {}
        if not waiting:
            return
        log.warning(
            "answering %d forwarded requests UNAVAILABLE: their replies may be lost (%s)",
            len(waiting),
            why,
        )
        self.answered_unavailable += len(waiting)
        for _, command in waiting.values():
            refuse(command, ErrorCode.UNAVAILABLE, REPLY_LOST)
