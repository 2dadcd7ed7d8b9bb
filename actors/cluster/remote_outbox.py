"""The outbox of a session held by another node: everything for it is published to
that node, which hands it to the session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from actors.cluster.envelopes import (
    CloseSession,
    Envelope,
    SessionPush,
    SessionReply,
    SessionSignedIn,
)


class Publisher(Protocol):
    def publish_or_drop(self, node_id: str, envelope: Envelope) -> None:
        """Publish without waiting; a publish that fails is dropped with a log line."""
        ...


@dataclass(frozen=True, eq=False)
class RemoteOutbox:
    """An ``Outbox`` (``actors.runtime.messages``) for a session of node ``origin``."""

    session_id: str
    origin: str
    link: Publisher

    def reply(self, rid: int, frame: bytes, ends_sign_in: bool = False) -> None:
        envelope = SessionReply(self.session_id, rid, frame, ends_sign_in)
        self.link.publish_or_drop(self.origin, envelope)

    def push(self, frame: bytes) -> None:
        self.link.publish_or_drop(self.origin, SessionPush(self.session_id, frame))

    def signed_in(self, rid: int, user_id: str, platform: int, token_id: str, frame: bytes) -> None:
        envelope = SessionSignedIn(self.session_id, user_id, platform, token_id, frame, rid)
        self.link.publish_or_drop(self.origin, envelope)

    def close(self, code: int, reason: str, last_frame: bytes | None = None) -> None:
        envelope = CloseSession(self.session_id, code, reason, last_frame)
        self.link.publish_or_drop(self.origin, envelope)
