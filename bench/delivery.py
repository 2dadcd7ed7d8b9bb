"""Delivery checks for messaging scenarios: what each receiver actually got.

Each receiver records every message it receives as (conversation, seq), where
``seq`` is the number the sender gave the message (1, 2, 3, ... per
conversation and sender). From the receipts alone the ledger counts messages
delivered, lost (sent but never received), duplicated (received again) and
out of order (received after a later one of the same stream). Nothing is
assumed from the send side except how many were sent.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class _Stream:
    seen: set[int] = field(default_factory=set)
    highest: int = 0
    duplicates: int = 0
    out_of_order: int = 0


@dataclass(frozen=True)
class DeliveryCounts:
    sent: int
    delivered: int
    lost: int
    duplicates: int
    out_of_order: int

    def as_dict(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
        }


class DeliveryLedger:
    """Receipts of one or more receivers; a stream is one (receiver, sender) pair, say."""

    def __init__(self) -> None:
        self._streams: dict[Hashable, _Stream] = {}
        self._expected: dict[Hashable, int] = {}

    def expect(self, stream: Hashable, sent: int) -> None:
        """``sent`` messages numbered 1..sent were sent on ``stream``."""
        self._expected[stream] = sent

    def receive(self, stream: Hashable, seq: int) -> None:
        state = self._streams.setdefault(stream, _Stream())
        if seq in state.seen:
            state.duplicates += 1
            return
        if seq < state.highest:
            state.out_of_order += 1
        state.seen.add(seq)
        state.highest = max(state.highest, seq)

    def counts(self) -> DeliveryCounts:
        sent = sum(self._expected.values())
        delivered = lost = duplicates = out_of_order = 0
        for stream, expected in self._expected.items():
            state = self._streams.get(stream, _Stream())
            got = sum(1 for seq in state.seen if 1 <= seq <= expected)
            delivered += got
            lost += expected - got
        for state in self._streams.values():
            duplicates += state.duplicates
            out_of_order += state.out_of_order
        return DeliveryCounts(sent, delivered, lost, duplicates, out_of_order)

    def missing(self) -> dict[Hashable, list[int]]:
        """Per stream with losses, the numbers expected and never received."""
        found: dict[Hashable, list[int]] = {}
        for stream, expected in self._expected.items():
            seen = self._streams.get(stream, _Stream()).seen
            gaps = [seq for seq in range(1, expected + 1) if seq not in seen]
            if gaps:
                found[stream] = gaps
        return found
