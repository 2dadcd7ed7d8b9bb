"""What every load client of the messaging scenarios (pairs, group, cluster) shares,
whatever its event loop: the jobs, the message text, and the books that check each
message from the receivers' seqs and count what a client process reports.

A client (``bench.chat_clients`` on trio, ``bench.picows_clients`` on uvloop) owns
the sockets and the timing of sends; it hands each push, reply and send to the
book of its run, which keeps the figures. So both clients count, check and
report the same way, and their results merge alike in the scenario.

Every message carries its send time as wall-clock seconds (``time.time()``; the
scheduled time in an open loop) at the start of its text, so a receiver in any
process on this machine can compute send-to-receipt latency. What a receiver
got is checked against the server's per-conversation ``seq``: in order, once
each, none missing (``bench.delivery``).
"""

from __future__ import annotations

import resource
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bench.delivery import DeliveryLedger
from bench.workers import WorkerLink
from protocol import messages as m

GO_TIMEOUT_S = 120.0
SIGN_IN_CONCURRENCY = 64
QUIET_S = 1.0
"""The group drain ends after this long without a new push."""
TEXT_SEPARATOR = "|"

S = TypeVar("S")
"""A client's session type."""


def message_text(sent_wall: float, size: int) -> str:
    """``<send time>|xxxx...`` padded to ``size`` characters."""
    head = f"{sent_wall:.6f}{TEXT_SEPARATOR}"
    return head + "x" * max(1, size - len(head))


def sent_time_of(message: m.ChatMessage) -> float | None:
    content = message.content
    if not isinstance(content, m.TextContent):
        return None
    head, sep, _ = content.text.partition(TEXT_SEPARATOR)
    if not sep:
        return None
    try:
        return float(head)
    except ValueError:
        return None


def cpu_s() -> float:
    """CPU seconds of this client process so far (every thread, user and system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def sent_wall(scheduled_mono: float) -> float:
    """Wall-clock time of a moment given in ``time.monotonic()``."""
    return time.time() - (time.monotonic() - scheduled_mono)


def reply_failure(reply: m.Reply) -> str | None:
    """Why a send's reply is not a ``message_sent`` (a failure kind), or None."""
    if isinstance(reply, m.Error):
        return f"send:{reply.name}"
    if not isinstance(reply, m.MessageSent):
        return "send:unexpected reply"
    return None


async def measured_phases(
    link: WorkerLink,
    load: Callable[[], Awaitable[None]],
    drain: Callable[[], Awaitable[None]],
    all_sent_timeout_s: float | None = None,
) -> float:
    """The phases every client process goes through once its sessions are signed in:
    mark ``signed_in``, wait for ``go``, load, mark ``sent``, (wait for ``all_sent``),
    drain, mark ``drained``. Returns the client CPU seconds from go to drained."""
    link.mark("signed_in")
    if not await link.wait_for("go", GO_TIMEOUT_S):
        raise RuntimeError("no go signal")
    before = cpu_s()
    await load()
    link.mark("sent")
    if all_sent_timeout_s is not None:
        await link.wait_for("all_sent", all_sent_timeout_s)
    await drain()
    link.mark("drained")
    return cpu_s() - before


@dataclass(frozen=True, kw_only=True)
class LoadShape:
    """How a client process sends: at most ``messages``, for at most ``duration_s``."""

    messages: int
    """Most messages this process sends."""
    duration_s: float
    """No message is started after this long."""
    window: int
    """Closed loop: messages in flight per sender."""
    rate: float | None
    """Open loop: messages per second started by this process (over its senders)."""
    size: int
    timeout_s: float
    drain_s: float
    retry_for_s: float = 0.0
    """Pairs: resend a send answered ``UNAVAILABLE`` (or not at all in ``timeout_s``)
    with the same client msg id, as a Parley client recovers, for up to this long after
    its first failed attempt; 0: count the first failure and move on."""


# -- pairs (and cluster) -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PairsJob(LoadShape):
    sender_urls: list[str]
    receiver_urls: list[str]
    sender_ids: list[str]
    receiver_ids: list[str]
    sender_tokens: list[str]
    receiver_tokens: list[str]
    record_acks: bool = False
    """Return every acknowledgement (client msg id, seq) per sender, for
    ``bench.verify`` to check against what the server stored."""


RETRYABLE = frozenset({"send:UNAVAILABLE", "send:INTERNAL", "send:timeout"})
"""Failures after which a Parley client resends with the same client msg id (both
errors are "retry later", and a send is idempotent by its client msg id)."""
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 1.0


@dataclass(eq=False)
class Outgoing(Generic[S]):
    """One message of a pair, over its attempts (same client msg id each time)."""

    pair: Pair[S]
    wall: float
    """Its send time (the first attempt's)."""
    client_msg_id: str
    attempts: int = 0
    first_failure_mono: float | None = None


@dataclass(eq=False)
class Pair(Generic[S]):
    index: int
    sender_id: str
    receiver_id: str
    sender: S
    receiver: S
    conversation_id: str = ""
    acked: int = 0
    max_acked_seq: int = 0
    received: int = 0

    @property
    def undelivered(self) -> bool:
        """Fewer messages received than the highest acknowledged seq."""
        return self.received < self.max_acked_seq


class PairsBook(Generic[S]):
    """One client process's pairs: what was sent, acknowledged and received."""

    def __init__(self, job: PairsJob, link: WorkerLink) -> None:
        self.job = job
        self.link = link
        self.failures: Counter[str] = Counter()
        self.ledger = DeliveryLedger()
        self.latency_s: list[float] = []
        self.ack_s: list[float] = []
        self.pairs: list[Pair[S]] = []
        self.started = 0
        self.acked = 0
        self.received = 0
        self.first_send_wall: float | None = None
        self.last_ack_wall: float | None = None
        self.last_receipt_wall: float | None = None
        self.retries: Counter[str] = Counter()
        self.recovered = 0
        """Messages acknowledged after one or more resends."""
        self.longest_recovery_s = 0.0
        """Longest time from a message's first failed attempt to its acknowledgement."""
        self.first_failure_wall: float | None = None
        self.last_failure_wall: float | None = None
        self.acks: dict[str, dict[str, Any]] = {}
        """With ``record_acks``, per sender: its ``conversation_id`` and its ``acks``,
        [client msg id, seq] in the order acknowledged."""
        self._numbered = 0

    def pair_up(self, sessions: list[S | None]) -> list[Pair[S]]:
        """Pairs of the sessions that signed in (senders first, then receivers)."""
        job = self.job
        count = len(job.sender_ids)
        for i in range(count):
            sender, receiver = sessions[i], sessions[count + i]
            if sender is not None and receiver is not None:
                self.pairs.append(Pair(i, job.sender_ids[i], job.receiver_ids[i], sender, receiver))
        return self.pairs

    def unexpected_push(self, message: m.ServerMessage) -> None:
        """A push to a sending session (it should get replies only)."""
        if isinstance(message, m.NewMessage):
            self.failures["push to the sending session"] += 1

    def receipt(self, pair: Pair[S], message: m.ServerMessage) -> bool:
        """A push to ``pair``'s receiver; True when it was one of the pair's messages."""
        if not isinstance(message, m.NewMessage):
            return False
        now = time.time()
        chat = message.message
        if chat.send_id != pair.sender_id:
            self.failures["message from someone else"] += 1
            return False
        self.ledger.receive(chat.conversation_id, chat.seq)
        pair.conversation_id = chat.conversation_id
        pair.received += 1
        self.received += 1
        self.link.progress()
        sent = sent_time_of(chat)
        if sent is not None:
            self.latency_s.append(now - sent)
        self.last_receipt_wall = now
        return True

    def start(self, scheduled_mono: float) -> float:
        """A send begins (due at ``scheduled_mono``); returns its wall-clock send time."""
        wall = sent_wall(scheduled_mono)
        if self.first_send_wall is None:
            self.first_send_wall = wall
        self.started += 1
        return wall

    def outgoing(self, pair: Pair[S], scheduled_mono: float) -> Outgoing[S]:
        """A new message of ``pair`` (due at ``scheduled_mono``), with its client msg id."""
        wall = self.start(scheduled_mono)
        self._numbered += 1
        client_msg_id = f"{self.link.worker_id}-{pair.index}-{self._numbered}"
        return Outgoing(pair, wall, client_msg_id)

    def request(self, outgoing: Outgoing[S], rid: int) -> m.SendMessage:
        """The request of the next attempt at ``outgoing``."""
        outgoing.attempts += 1
        return m.SendMessage(
            rid=rid,
            client_msg_id=outgoing.client_msg_id,
            content=m.TextContent(text=message_text(outgoing.wall, self.job.size)),
            to_user_id=outgoing.pair.receiver_id,
        )

    def failed(self, kind: str) -> None:
        self.failures[kind] += 1

    def outcome(self, outgoing: Outgoing[S], answer: m.Reply | str) -> float | None:
        """An attempt's answer (a reply, or ``timeout`` / ``closed``): None when the
        message is done with (acknowledged, or failed for good: counted), else the
        seconds to wait before resending it."""
        failure = f"send:{answer}" if isinstance(answer, str) else reply_failure(answer)
        if failure is None:
            assert isinstance(answer, m.MessageSent)
            self._acknowledged(outgoing, answer)
            return None
        now = time.monotonic()
        if outgoing.first_failure_mono is None:
            outgoing.first_failure_mono = now
        wall = time.time()
        if self.first_failure_wall is None:
            self.first_failure_wall = wall
        self.last_failure_wall = wall
        retrying = failure in RETRYABLE and now - outgoing.first_failure_mono < self.job.retry_for_s
        if not retrying:
            self.failures[failure] += 1
            return None
        self.retries[failure] += 1
        return min(RETRY_MAX_S, RETRY_FIRST_S * 2.0 ** (outgoing.attempts - 1))

    def _acknowledged(self, outgoing: Outgoing[S], reply: m.MessageSent) -> None:
        pair = outgoing.pair
        now = time.time()
        self.ack_s.append(now - outgoing.wall)
        self.last_ack_wall = now
        self.acked += 1
        if outgoing.first_failure_mono is not None:
            self.recovered += 1
            recovery = time.monotonic() - outgoing.first_failure_mono
            self.longest_recovery_s = max(self.longest_recovery_s, recovery)
        if self.job.record_acks:
            conversation = self.acks.setdefault(
                pair.sender_id, {"conversation_id": reply.conversation_id, "acks": []}
            )
            conversation["acks"].append((reply.client_msg_id, reply.seq))
        pair.acked += 1
        pair.conversation_id = reply.conversation_id
        pair.max_acked_seq = max(pair.max_acked_seq, reply.seq)

    def result(self, sessions: int, client_cpu_s: float) -> dict[str, Any]:
        for pair in self.pairs:
            if pair.conversation_id:
                self.ledger.expect(pair.conversation_id, pair.max_acked_seq)
        return {
            "pairs": len(self.pairs),
            "sessions": sessions,
            "started": self.started,
            "acked": self.acked,
            "counts": self.ledger.counts().as_dict(),
            "failures": dict(self.failures),
            "latency_s": self.latency_s,
            "ack_s": self.ack_s,
            "first_send_wall": self.first_send_wall,
            "last_ack_wall": self.last_ack_wall,
            "last_receipt_wall": self.last_receipt_wall,
            "client_cpu_s": client_cpu_s,
            "retries": dict(self.retries),
            "recovered": self.recovered,
            "longest_recovery_s": self.longest_recovery_s,
            "first_failure_wall": self.first_failure_wall,
            "last_failure_wall": self.last_failure_wall,
            "acks": self.acks,
            "missed": {str(k): v for k, v in self.ledger.missing().items()}
            if self.job.record_acks
            else {},
        }


# -- group ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class GroupJob(LoadShape):
    url: str
    group_id: str
    member_ids: list[str]
    tokens: list[str]
    sender_count: int
    """The first ``sender_count`` members of this process post (``messages`` in all)."""

    @property
    def all_sent_timeout_s(self) -> float:
        """Longest wait for the other processes to finish sending."""
        return self.duration_s + self.timeout_s * 2 + 60


class GroupBook:
    """One client process's members of the group: every member's arrivals in order."""

    def __init__(self, job: GroupJob, link: WorkerLink) -> None:
        self.job = job
        self.link = link
        self.conversation_id = f"sg_{job.group_id}"
        self.failures: Counter[str] = Counter()
        self.arrivals: dict[str, list[int]] = {u: [] for u in job.member_ids}
        """Per member, the seqs of the conversation in the order they arrived (pushes, and
        a sender's own acknowledgements: the reply is what the sending device gets)."""
        self.per_seq: dict[int, list[float]] = {}
        """seq -> [receipts by push, latest receipt latency]"""
        self.delivery_s: list[float] = []
        self.acked_seqs: list[int] = []
        self.ack_s: list[float] = []
        self.first_send_wall: float | None = None
        self.last_receipt_wall: float | None = None
        self.last_push_mono = time.monotonic()
        self.online: list[str] = []

    def seat(self, sessions: list[S | None]) -> list[tuple[str, S]]:
        """Record who is online; returns (member, session) of every signed-in member."""
        seated = [
            (u, s) for u, s in zip(self.job.member_ids, sessions, strict=True) if s is not None
        ]
        self.online = [u for u, _ in seated]
        return seated

    def senders(self, sessions: list[S | None]) -> list[tuple[str, S]]:
        job = self.job
        return [
            (job.member_ids[i], s)
            for i, s in enumerate(sessions[: job.sender_count])
            if s is not None
        ]

    def receipt(self, member_id: str, message: m.ServerMessage) -> None:
        """A push to ``member_id``'s session."""
        if not isinstance(message, m.NewMessage):
            return
        now = time.time()
        chat = message.message
        if chat.conversation_id != self.conversation_id:
            return
        self.arrivals[member_id].append(chat.seq)
        self.last_push_mono = time.monotonic()
        self.last_receipt_wall = now
        self.link.progress()
        sent = sent_time_of(chat)
        latency = now - sent if sent is not None else 0.0
        self.delivery_s.append(latency)
        entry = self.per_seq.get(chat.seq)
        if entry is None:
            self.per_seq[chat.seq] = [1.0, latency]
        else:
            entry[0] += 1
            entry[1] = max(entry[1], latency)

    def reply_seen(self, member_id: str, reply: m.Reply) -> None:
        """Every reply a member's session gets, in order with its pushes."""
        # The reply is what the sending device gets instead of the push: it counts as
        # that device's receipt of the seq, in order with the pushes around it.
        if isinstance(reply, m.MessageSent) and reply.conversation_id == self.conversation_id:
            self.arrivals[member_id].append(reply.seq)

    def start(self, scheduled_mono: float) -> float:
        wall = sent_wall(scheduled_mono)
        if self.first_send_wall is None:
            self.first_send_wall = wall
        return wall

    def request(self, member_id: str, rid: int, wall: float) -> m.SendMessage:
        return m.SendMessage(
            rid=rid,
            client_msg_id=f"{member_id}-{rid}",
            content=m.TextContent(text=message_text(wall, self.job.size)),
            group_id=self.job.group_id,
        )

    def failed(self, kind: str) -> None:
        self.failures[kind] += 1

    def answered(self, wall: float, reply: m.Reply) -> None:
        failure = reply_failure(reply)
        if failure is not None:
            self.failures[failure] += 1
            return
        assert isinstance(reply, m.MessageSent)
        self.acked_seqs.append(reply.seq)
        self.ack_s.append(time.time() - wall)

    def settled(self) -> bool:
        """No push for ``QUIET_S`` and every member here has as many messages as the others."""
        quiet = time.monotonic() - self.last_push_mono >= QUIET_S
        return quiet and len({len(self.arrivals[u]) for u in self.online}) <= 1

    async def drain(self, sleep: Callable[[float], Awaitable[None]]) -> None:
        """Every process has sent: wait (with the loop's ``sleep``) until pushes stop
        arriving and every member here has as many messages as the others (bounded by
        ``drain_s``)."""
        deadline = time.monotonic() + self.job.drain_s
        while time.monotonic() < deadline and not self.settled():
            await sleep(0.1)

    def result(self, client_cpu_s: float) -> dict[str, Any]:
        return {
            "members_online": len(self.online),
            "arrivals": {u: self.arrivals[u] for u in self.online},
            "per_seq": {seq: (v[0], v[1]) for seq, v in self.per_seq.items()},
            "delivery_s": self.delivery_s,
            "acked_seqs": self.acked_seqs,
            "ack_s": self.ack_s,
            "failures": dict(self.failures),
            "first_send_wall": self.first_send_wall,
            "last_receipt_wall": self.last_receipt_wall,
            "client_cpu_s": client_cpu_s,
        }
