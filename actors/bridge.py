"""The one crossing between pykka actor threads and the trio event loop.

Into pykka: ``tell()`` only (see :mod:`actors.supervisor`). Back into trio:
:class:`SessionOutbox` schedules a callback on the trio loop with
``TrioToken.run_sync_soon``; it never blocks the actor thread and never waits
for the loop. Frames cross as encoded ``bytes``: a message is encoded once, in
the actor thread, and the same bytes can be queued to many sessions.

Crossings are coalesced. An actor handling a command holds its calls back until
the command is done (:func:`one_crossing`), so a chat message's push and reply
cross together; and calls from all actor threads join one queue per trio loop
that is drained by a single scheduled callback, so the loop's wake-up socket is
written once per drain, not once per call. Each wake-up is a system call that
lets the GIL go in the middle of the actor's work; under load those hand-offs
cost more CPU than the calls themselves (bench/FINDINGS.md). The order of calls
made by one thread is kept.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import trio

log = logging.getLogger(__name__)


class OutboundSink(Protocol):
    """What a connection exposes to actors. Every method runs in the trio thread."""

    def deliver_reply(self, rid: int, frame: bytes, ends_sign_in: bool) -> None: ...

    def deliver_push(self, frame: bytes) -> None: ...

    def deliver_signed_in(
        self, user_id: str, platform: int, token_id: str, frame: bytes
    ) -> None: ...

    def deliver_close(self, code: int, reason: str, last_frame: bytes | None) -> None: ...


_Job = tuple[Callable[..., Any], tuple[Any, ...]]
_held = threading.local()


def call_in_trio(token: trio.lowlevel.TrioToken, fn: Callable[..., Any], *args: Any) -> None:
    """Schedule ``fn(*args)`` on the trio loop; a no-op once the loop has finished.

    Calls run in the order each thread made them. Inside :func:`one_crossing` the call
    is held back until the block ends."""
    held: list[tuple[trio.lowlevel.TrioToken, _Job]] | None = getattr(_held, "jobs", None)
    if held is not None:
        held.append((token, (fn, args)))
        return
    _inbound_of(token).post(token, [(fn, args)])


@contextlib.contextmanager
def one_crossing() -> Iterator[None]:
    """Hold back the trio calls this thread makes inside the block and hand them over
    together when it ends, in the order they were made (even if the block raises).
    Actors wrap the handling of each command in it; nested blocks join the outer one."""
    if getattr(_held, "jobs", None) is not None:
        yield
        return
    jobs: list[tuple[trio.lowlevel.TrioToken, _Job]] = []
    _held.jobs = jobs
    try:
        yield
    finally:
        _held.jobs = None
        while jobs:
            token = jobs[0][0]
            _inbound_of(token).post(token, [job for t, job in jobs if t is token])
            jobs = [(t, job) for t, job in jobs if t is not token]


class _Inbound:
    """Calls waiting for one trio loop, with at most one drain scheduled at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: list[_Job] = []
        self._scheduled = False

    def post(self, token: trio.lowlevel.TrioToken, jobs: list[_Job]) -> None:
        """Queue ``jobs``; wake the loop only if no drain is scheduled yet. Any thread."""
        with self._lock:
            self._jobs.extend(jobs)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            token.run_sync_soon(self._drain)
        except trio.RunFinishedError:
            with self._lock:
                dropped, self._jobs, self._scheduled = len(self._jobs), [], False
            log.debug("trio loop finished; dropped %d calls", dropped)

    def _drain(self) -> None:
        """Runs in the trio thread: every queued call, in the order they were posted.
        An exception ends the trio run, as it would from ``run_sync_soon`` itself."""
        with self._lock:
            jobs, self._jobs, self._scheduled = self._jobs, [], False
        for fn, args in jobs:
            fn(*args)


_inbounds: weakref.WeakKeyDictionary[trio.lowlevel.TrioToken, _Inbound] = (
    weakref.WeakKeyDictionary()
)
_inbounds_lock = threading.Lock()


def _inbound_of(token: trio.lowlevel.TrioToken) -> _Inbound:
    inbound = _inbounds.get(token)
    if inbound is None:
        with _inbounds_lock:
            inbound = _inbounds.setdefault(token, _Inbound())
    return inbound


class Outbox(Protocol):
    """Where an actor sends what is for one session. Safe to call from any thread."""

    @property
    def session_id(self) -> str: ...

    def reply(self, rid: int, frame: bytes, ends_sign_in: bool = False) -> None: ...

    def push(self, frame: bytes) -> None: ...

    def signed_in(self, user_id: str, platform: int, token_id: str, frame: bytes) -> None: ...

    def close(self, code: int, reason: str, last_frame: bytes | None = None) -> None: ...


@dataclass(frozen=True, eq=False)
class SessionOutbox:
    """Thread-safe handle to one session's outbound queue, held by actors."""

    session_id: str
    token: trio.lowlevel.TrioToken
    sink: OutboundSink

    def reply(self, rid: int, frame: bytes, ends_sign_in: bool = False) -> None:
        """Queue the reply to request ``rid`` (which ``frame`` carries too); the request
        stops counting as pending. The session matches the reply to its request by
        ``rid`` without decoding the frame, and drops it if it has already answered
        that request itself (no answer came in time, see ``session.request_deadline``).

        ``ends_sign_in`` marks the failure reply to a sign-in request, after which
        the session may try to sign in again.
        """
        call_in_trio(self.token, self.sink.deliver_reply, rid, frame, ends_sign_in)

    def push(self, frame: bytes) -> None:
        """Queue a server push."""
        call_in_trio(self.token, self.sink.deliver_push, frame)

    def signed_in(self, user_id: str, platform: int, token_id: str, frame: bytes) -> None:
        """Mark the session signed in (with the id of its token), then queue the reply."""
        call_in_trio(self.token, self.sink.deliver_signed_in, user_id, platform, token_id, frame)

    def close(self, code: int, reason: str, last_frame: bytes | None = None) -> None:
        """Queue ``last_frame`` (if any), then close the session with ``code``."""
        call_in_trio(self.token, self.sink.deliver_close, code, reason, last_frame)
