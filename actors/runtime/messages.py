"""Immutable messages exchanged between connections, the supervisor and actors, and
the one protocol of what receives a session's frames."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from protocol.messages import Request


class Outbox(Protocol):
    """Where everything for one session goes: a local connection, or the node that
    holds the session (``actors.cluster.RemoteOutbox``). Every method queues and
    returns at once; all run on the node's event loop."""

    @property
    def session_id(self) -> str: ...

    def reply(self, rid: int, frame: bytes, ends_sign_in: bool = False) -> None:
        """Queue the reply to request ``rid`` (which ``frame`` carries too); the request
        stops counting as pending. The session matches the reply to its request by
        ``rid`` without decoding the frame, and drops it if it has already answered
        that request itself (no answer came in time, see ``session.request_deadline``).
        ``ends_sign_in`` marks the failure reply to a sign-in request, after which the
        session may try to sign in again."""
        ...

    def push(self, frame: bytes) -> None:
        """Queue a server push."""
        ...

    def signed_in(self, rid: int, user_id: str, platform: int, token_id: str, frame: bytes) -> None:
        """Mark the session signed in (with the id of its token), then queue the reply to
        sign-in request ``rid``. A session that has already answered that request
        itself (no answer came within ``session.sign_in_deadline``) closes instead."""
        ...

    def close(self, code: int, reason: str, last_frame: bytes | None = None) -> None:
        """Queue ``last_frame`` (if any), then close the session with ``code``."""
        ...


@dataclass(frozen=True)
class SessionRef:
    """Who sent a command, and where its replies go."""

    session_id: str
    address: str
    outbox: Outbox


@dataclass(frozen=True)
class Command:
    """A decoded request from a session.

    ``user_id``/``platform`` are set once the session has signed in; before
    that they are ``None`` and only unauthenticated commands are routed.
    """

    session: SessionRef
    request: Request
    user_id: str | None = None
    platform: int | None = None
    hops: int = 0
    """How many times the command was forwarded to another node."""
    answer_by_ms: int = 0
    """For a sign-in: the wall-clock time (ms) after which it must not be carried out,
    because its session answers it ``UNAVAILABLE`` then; 0 for other commands."""


@dataclass(frozen=True)
class SessionClosed:
    """The connection of ``session_id`` has ended; forget it."""

    session_id: str
    signed_in: bool = False
    """Whether the session was signed in as the user told (not only tried to)."""
