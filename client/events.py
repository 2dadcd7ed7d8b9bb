"""Connection-state events the SDK adds to the stream of server pushes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Disconnected:
    """The connection ended. ``reconnecting`` says whether the SDK will try again."""

    close_code: int | None
    reason: str | None
    reconnecting: bool


@dataclass(frozen=True)
class Reconnected:
    """A new connection is up and, if the client had signed in, signed in again."""

    attempt: int
