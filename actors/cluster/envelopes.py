"""What nodes send each other over Redis pub/sub: one tagged msgpack array each."""

from __future__ import annotations

import msgspec


class Deliver(msgspec.Struct, frozen=True, tag="deliver", array_like=True):
    user_ids: list[str]
    frame: bytes
    exclude_session: str | None


class CloseSession(msgspec.Struct, frozen=True, tag="close", array_like=True):
    session_id: str
    code: int
    reason: str
    last_frame: bytes | None


class Forward(msgspec.Struct, frozen=True, tag="forward", array_like=True):
    """A command for an entity owned by the receiving node."""

    kind: str
    entity_id: str
    request: bytes
    session_id: str
    address: str
    origin: str
    user_id: str | None
    platform: int | None
    hops: int
    answer_by_ms: int = 0


class SessionReply(msgspec.Struct, frozen=True, tag="reply", array_like=True):
    session_id: str
    rid: int
    frame: bytes
    ends_sign_in: bool


class SessionPush(msgspec.Struct, frozen=True, tag="push", array_like=True):
    session_id: str
    frame: bytes


class SessionSignedIn(msgspec.Struct, frozen=True, tag="signed_in", array_like=True):
    session_id: str
    user_id: str
    platform: int
    token_id: str
    frame: bytes
    rid: int = 0
    """The sign-in's request id; 0 from a node of a version before it was sent."""


class Membership(msgspec.Struct, frozen=True, tag="membership", array_like=True):
    """Broadcast by a node when it starts (``joined``) and when it stops."""

    node_id: str
    joined: bool


class InboxProbe(msgspec.Struct, frozen=True, tag="probe", array_like=True):
    """Published by a node to its own inbox at each heartbeat: Redis's count of the
    subscribers that got it tells whether the node's subscription is where
    publications to its inbox go (the receiver ignores it)."""


Envelope = (
    Deliver
    | CloseSession
    | Forward
    | SessionReply
    | SessionPush
    | SessionSignedIn
    | Membership
    | InboxProbe
)
encode_envelope = msgspec.msgpack.Encoder().encode
decode_envelope = msgspec.msgpack.Decoder(Envelope).decode
