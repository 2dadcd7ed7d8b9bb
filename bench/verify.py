"""After a pairs run: what the server stored, read back through the protocol, against
what it acknowledged (``--verify``; always on with ``--failover-at``).

The receipts check of a run (``bench.delivery``) sees what was pushed; a failover
can lose a write that was pushed and acknowledged but not yet on the replica that
took over, and the next send then reuses its seq. So each sender signs in again
after the run and pulls its conversation (``pull_messages`` from seq 1, pages of
``MAX_PAGE``), and each acknowledged message (client msg id, seq) is looked up:

* ``lost``: no message with its client msg id is stored;
* ``renumbered``: it is stored, but not at the seq it was acknowledged with;
* ``duplicated``: its client msg id is stored at more than one seq;
* ``reordered``: (one message in flight per sender) it was acknowledged with a seq
  lower than the sender's message before it;
* ``seq_gaps``: seqs missing between 1 and the conversation's highest;
* ``stored_unacknowledged``: stored messages no acknowledgement named (sends that
  failed for good after being stored: allowed, they were not acknowledged);
* ``pushes_missed``: seqs the receiver was not pushed but that are stored, so a
  pull fills them (a client finds them by the seq gap). A resend answered from the
  stored message pushes nothing, so a send that was stored but answered
  ``UNAVAILABLE`` is one; ``missed_not_stored``: the others, really lost;
  ``conversations_missing_pushes`` and ``conversations_missing_the_last_push``
  (pushes still not arriving at the end: a subscription not restored) say where.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import trio

from bench.chat_clients import sign_in
from bench.wire import SessionFailed
from protocol import messages as m
from protocol.base import MAX_PAGE

CONCURRENT = 32
RETRYABLE = frozenset({"UNAVAILABLE", "INTERNAL", "timeout", "closed", "connect"})
RETRY_EVERY_S = 0.5
CHECKS = ("lost", "renumbered", "duplicated", "reordered", "seq_gaps")
"""Counts that must be zero."""
COUNTS = (
    *CHECKS, "stored_unacknowledged", "pushes_missed", "missed_not_stored", "acknowledged",
    "stored", "conversations_missing_pushes", "conversations_missing_the_last_push",
)  # fmt: skip


@dataclass(frozen=True)
class Sender:
    url: str
    token: str
    conversation_id: str
    acks: list[tuple[str, int]]
    """(client msg id, seq) in the order acknowledged."""
    missed: list[int]
    """Seqs up to the highest acknowledged that the receiver was not pushed."""


async def _stored(sender: Sender, timeout: float) -> list[tuple[int, str]]:
    """(seq, client msg id) of every message of the sender's conversation."""
    session = await sign_in(sender.url, sender.token, timeout)
    stored: list[tuple[int, str]] = []
    try:
        from_seq = 1
        while True:
            request = m.PullMessages(
                rid=session.next_rid(), conversation_id=sender.conversation_id,
                from_seq=from_seq, limit=MAX_PAGE,
            )  # fmt: skip
            page = await session.call(request, m.Messages, timeout)
            stored += [(item.seq, item.client_msg_id) for item in page.items]
            if page.is_end or not page.items:
                return stored
            from_seq = page.items[-1].seq + 1
    finally:
        await session.aclose()


def check(sender: Sender, stored: list[tuple[int, str]], in_order: bool) -> Counter[str]:
    """The counts of one conversation (``in_order``: one message in flight per sender)."""
    counts: Counter[str] = Counter()
    seqs_of: dict[str, list[int]] = {}
    for seq, client_msg_id in stored:
        seqs_of.setdefault(client_msg_id, []).append(seq)
    seqs = {seq for seq, _ in stored}
    counts["seq_gaps"] = (max(seqs) - len(seqs)) if seqs else 0
    acknowledged = {client_msg_id for client_msg_id, _ in sender.acks}
    previous = 0
    for client_msg_id, seq in sender.acks:
        found = seqs_of.get(client_msg_id)
        if not found:
            counts["lost"] += 1
        elif seq not in found:
            counts["renumbered"] += 1
        if in_order and seq <= previous:
            counts["reordered"] += 1
        previous = max(previous, seq)
    counts["duplicated"] = sum(len(v) - 1 for k, v in seqs_of.items() if k in acknowledged)
    counts["stored_unacknowledged"] = sum(1 for k in seqs_of if k not in acknowledged)
    counts["pushes_missed"] = sum(1 for seq in sender.missed if seq in seqs)
    highest = max((seq for _, seq in sender.acks), default=0)
    counts["conversations_missing_pushes"] = 1 if sender.missed else 0
    counts["conversations_missing_the_last_push"] = 1 if highest in sender.missed else 0
    counts["missed_not_stored"] = len(sender.missed) - counts["pushes_missed"]
    counts["acknowledged"] = len(sender.acks)
    counts["stored"] = len(stored)
    return counts


def verify(
    senders: Sequence[Sender], in_order: bool, timeout: float, retry_for: float
) -> dict[str, Any]:
    """Every sender's conversation checked; the counts summed, plus ``verify_failures``
    (conversations that could not be read: the server still failing after
    ``retry_for`` seconds of sign-ins and pulls tried again) and ``verify_retries``."""
    totals: Counter[str] = Counter({name: 0 for name in COUNTS})
    failures: Counter[str] = Counter()
    retries: Counter[str] = Counter()

    async def one(sender: Sender, limit: trio.Semaphore) -> None:
        deadline = trio.current_time() + retry_for
        async with limit:
            while True:
                try:
                    stored = await _stored(sender, timeout)
                    break
                except SessionFailed as exc:
                    if exc.kind not in RETRYABLE or trio.current_time() > deadline:
                        failures[exc.kind] += 1
                        return
                    retries[exc.kind] += 1
                await trio.sleep(RETRY_EVERY_S)
        totals.update(check(sender, stored, in_order))

    async def main() -> None:
        limit = trio.Semaphore(CONCURRENT)
        async with trio.open_nursery() as nursery:
            for sender in senders:
                nursery.start_soon(one, sender, limit)

    trio.run(main)
    return {
        **dict(totals),
        "conversations": len(senders),
        "verify_failures": dict(failures),
        "verify_retries": dict(retries),
    }
