"""The one crossing between pykka actor threads and the trio event loop.

Into pykka: ``tell()`` only (see :mod:`actors.supervisor`). Back into trio:
:class:`SessionOutbox` schedules a callback on the trio loop with
``TrioToken.run_sync_soon``; it never blocks the actor thread and never waits
for the loop. Frames cross as encoded ``bytes``: a message is encoded once, in
the actor thread, and the same bytes can be queued to many sessions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import trio

log = logging.getLogger(__name__)


class OutboundSink(Protocol):
    """What a connection exposes to actors. Every method runs in the trio thread."""

    def deliver_reply(self, frame: bytes, ends_sign_in: bool) -> None: ...

    def deliver_push(self, frame: bytes) -> None: ...

    def deliver_signed_in(
        self, user_id: str, platform: int, token_id: str, frame: bytes
    ) -> None: ...

    def deliver_close(self, code: int, reason: str, last_frame: bytes | None) -> None: ...


def call_in_trio(token: trio.lowlevel.TrioToken, fn: Callable[..., Any], *args: Any) -> None:
    """Schedule ``fn(*args)`` on the trio loop; a no-op once the loop has finished."""
    try:
        token.run_sync_soon(fn, *args)
    except trio.RunFinishedError:
        log.debug("trio loop finished; dropped %r", fn)


class Outbox(Protocol):
    """Where an actor sends what is for one session. Safe to call from any thread."""

    @property
    def session_id(self) -> str: ...

    def reply(self, frame: bytes, ends_sign_in: bool = False) -> None: ...

    def push(self, frame: bytes) -> None: ...

    def signed_in(self, user_id: str, platform: int, token_id: str, frame: bytes) -> None: ...

    def close(self, code: int, reason: str, last_frame: bytes | None = None) -> None: ...


@dataclass(frozen=True, eq=False)
class SessionOutbox:
    """Thread-safe handle to one session's outbound queue, held by actors."""

    session_id: str
    token: trio.lowlevel.TrioToken
    sink: OutboundSink

    def reply(self, frame: bytes, ends_sign_in: bool = False) -> None:
        """Queue the reply to a request (the session's pending count drops by one).

        ``ends_sign_in`` marks the failure reply to a sign-in request, after which
        the session may try to sign in again.
        """
        call_in_trio(self.token, self.sink.deliver_reply, frame, ends_sign_in)

    def push(self, frame: bytes) -> None:
        """Queue a server push."""
        call_in_trio(self.token, self.sink.deliver_push, frame)

    def signed_in(self, user_id: str, platform: int, token_id: str, frame: bytes) -> None:
        """Mark the session signed in (with the id of its token), then queue the reply."""
        call_in_trio(self.token, self.sink.deliver_signed_in, user_id, platform, token_id, frame)

    def close(self, code: int, reason: str, last_frame: bytes | None = None) -> None:
        """Queue ``last_frame`` (if any), then close the session with ``code``."""
        call_in_trio(self.token, self.sink.deliver_close, code, reason, last_frame)
