"""Immutable messages exchanged between connections, the supervisor and actors."""

from __future__ import annotations

from dataclasses import dataclass

from actors.bridge import Outbox
from protocol.messages import Request


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


@dataclass(frozen=True)
class SessionClosed:
    """The connection of ``session_id`` has ended; forget it."""

    session_id: str
