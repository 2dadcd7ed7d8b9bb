"""Building, storing and pushing typed notifications.

A notification is stored with seq 0 as a placeholder (the Lua step that stores
it assigns the real per-user seq) and pushed with its real seq once stored.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from actors.node.hub import Hub
from protocol.notifications import Notification, NotificationDetail, NotificationType

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Notification)


def stored_form(kind: NotificationType, detail: NotificationDetail, now_ms: int) -> bytes:
    """The bytes to store; the seq is set when read back or pushed."""
    return _encoder.encode(Notification(seq=0, type=int(kind), send_time=now_ms, detail=detail))


def from_stored(seq: int, payload: bytes) -> Notification:
    return msgspec.structs.replace(_decoder.decode(payload), seq=seq)


def push_stored(
    hub: Hub,
    kind: NotificationType,
    detail: NotificationDetail,
    now_ms: int,
    recipients: Iterable[tuple[str, int]],
    exclude_session: str | None,
) -> None:
    """Push a stored notification to every device of each (user, seq) recipient, on
    this node and (through the hub) on the others.

    A seq of 0 means the notification was not stored for that user; nothing is sent."""
    for user_id, seq in recipients:
        if seq:
            frame = _encoder.encode(
                Notification(seq=seq, type=int(kind), send_time=now_ms, detail=detail)
            )
            hub.push_soon([user_id], frame, exclude_session)
