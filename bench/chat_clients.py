"""What the client processes of the messaging scenarios (pairs, group, cluster) run.

Each signed-in session gets a reader task that hands replies to the request
waiting for them (by request id) and pushes to a callback, so one session can
have several sends in flight while it keeps receiving. Writes to a session go
through one lock, so the order in which sends are numbered is the order in
which their frames reach the server.

Every message carries its send time as wall-clock seconds (``time.time()``; the
scheduled time in an open loop) at the start of its text, so a receiver in any
process on this machine can compute send-to-receipt latency. What a receiver
got is checked against the server's per-conversation ``seq``: in order, once
each, none missing (``bench.delivery``).
"""

from __future__ import annotations

import random
import resource
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
from wsproto.events import BytesMessage

from bench.delivery import DeliveryLedger
from bench.loops import open_loop
from bench.wire import LeanSession, Received, SessionFailed, close_all
from bench.workers import WorkerLink
from protocol import messages as m

GO_TIMEOUT_S = 120.0
SIGN_IN_CONCURRENCY = 64
QUIET_S = 1.0
"""The group drain ends after this long without a new push."""
TEXT_SEPARATOR = "|"


class ChatSession(LeanSession):
    """A lean session with a reader task: many requests in flight, pushes to a callback."""

    def __init__(self, stream: trio.SocketStream) -> None:
        super().__init__(stream)
        self._write_lock = trio.Lock()
        self._waiting: dict[int, _Slot] = {}
        self.on_push: Callable[[m.ServerMessage], None] | None = None
        self.on_reply: Callable[[m.Reply], None] | None = None
        """Called by the reader as each reply arrives, in order with the pushes."""
        self.closed_reason: str | None = None

    async def _send_bytes(self, data: bytes) -> None:
        # Pings answered by the reader and sends by other tasks share the socket.
        async with self._write_lock:
            await super()._send_bytes(data)

    async def send_request(self, build: Callable[[int], m.ClientMessage]) -> _Slot:
        """Build the request (with its rid) and write it, both under the write lock, so
        requests built in this order reach the server in this order."""
        async with self._write_lock:
            message = build(self.next_rid())
            slot = _Slot()
            self._waiting[message.rid] = slot
            data = self._ws.send(BytesMessage(data=self._codec.encode(message)))
            try:
                await LeanSession._send_bytes(self, data)
            except SessionFailed:
                self._waiting.pop(message.rid, None)
                raise
        slot.rid = message.rid
        return slot

    async def wait_reply(self, slot: _Slot, timeout: float) -> m.Reply:
        with trio.move_on_after(timeout):
            await slot.event.wait()
        if slot.reply is None:
            self._waiting.pop(slot.rid, None)
            raise SessionFailed(
                "timeout" if self.closed_reason is None else "closed",
                self.closed_reason or f"no reply in {timeout} s",
            )
        return slot.reply

    async def read_forever(self) -> None:
        """Dispatch everything the server sends until the session ends."""
        try:
            while True:
                received: Received = await self.receive()
                message = received.message
                if isinstance(message, m.Reply):
                    if self.on_reply is not None:
                        self.on_reply(message)
                    slot = self._waiting.pop(message.rid, None)
                    if slot is not None:
                        slot.reply = message
                        slot.event.set()
                elif self.on_push is not None:
                    self.on_push(message)
        except SessionFailed as exc:
            self.closed_reason = str(exc)
            for slot in self._waiting.values():
                slot.event.set()
            self._waiting.clear()


@dataclass
class _Slot:
    event: trio.Event = field(default_factory=trio.Event)
    reply: m.Reply | None = None
    rid: int = 0


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


async def sign_in(url: str, token: str, timeout: float) -> ChatSession:
    session = await ChatSession.open(url, timeout)
    assert isinstance(session, ChatSession)
    try:
        await session.call(m.TokenLogin(rid=session.next_rid(), token=token), m.LoginOk, timeout)
    except BaseException:
        await session.aclose(send_close=False)
        raise
    session.keep_pushes = False
    return session


async def sign_in_all(
    urls: Sequence[str], tokens: Sequence[str], timeout: float, failures: Counter[str]
) -> list[ChatSession | None]:
    """A signed-in session per (url, token); None where it failed (counted in ``failures``)."""
    sessions: list[ChatSession | None] = [None] * len(tokens)
    limit = trio.Semaphore(SIGN_IN_CONCURRENCY)

    async def one(index: int) -> None:
        async with limit:
            try:
                sessions[index] = await sign_in(urls[index], tokens[index], timeout)
            except SessionFailed as exc:
                failures[f"sign_in:{exc.kind}"] += 1

    async with trio.open_nursery() as nursery:
        for index in range(len(tokens)):
            nursery.start_soon(one, index)
    return sessions


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sent_wall(scheduled_mono: float) -> float:
    """Wall-clock time of a moment given in ``time.monotonic()``."""
    return time.time() - (time.monotonic() - scheduled_mono)


# -- pairs (and cluster) -----------------------------------------------------------------


@dataclass(frozen=True)
class PairsJob:
    sender_urls: list[str]
    receiver_urls: list[str]
    sender_ids: list[str]
    receiver_ids: list[str]
    sender_tokens: list[str]
    receiver_tokens: list[str]
    messages: int
    """Most messages this process sends."""
    duration_s: float
    """No message is started after this long."""
    window: int
    """Closed loop: messages in flight per pair."""
    rate: float | None
    """Open loop: messages per second started by this process (over its pairs)."""
    size: int
    timeout_s: float
    drain_s: float


@dataclass
class _Pair:
    index: int
    sender_id: str
    receiver_id: str
    sender: ChatSession
    receiver: ChatSession
    conversation_id: str = ""
    acked: int = 0
    max_acked_seq: int = 0
    received: int = 0


class _PairsRun:
    def __init__(self, job: PairsJob, link: WorkerLink) -> None:
        self.job = job
        self.link = link
        self.failures: Counter[str] = Counter()
        self.ledger = DeliveryLedger()
        self.latency_s: list[float] = []
        self.ack_s: list[float] = []
        self.pairs: list[_Pair] = []
        self.started = 0
        self.acked = 0
        self.received = 0
        self.first_send_wall: float | None = None
        self.last_ack_wall: float | None = None
        self.last_receipt_wall: float | None = None
        self.stop_at = 0.0
        self.progress = trio.Event()

    async def run(self) -> dict[str, Any]:
        job, link = self.job, self.link
        urls = [*job.sender_urls, *job.receiver_urls]
        tokens = [*job.sender_tokens, *job.receiver_tokens]
        sessions = await sign_in_all(urls, tokens, job.timeout_s, self.failures)
        count = len(job.sender_ids)
        for i in range(count):
            sender, receiver = sessions[i], sessions[count + i]
            if sender is not None and receiver is not None:
                pair = _Pair(i, job.sender_ids[i], job.receiver_ids[i], sender, receiver)
                receiver.on_push = self._receiver_of(pair)
                sender.on_push = self._unexpected_push
                self.pairs.append(pair)
        try:
            async with trio.open_nursery() as readers:
                for session in sessions:
                    if session is not None:
                        readers.start_soon(session.read_forever)
                link.mark("signed_in")
                if not await link.wait_for("go", GO_TIMEOUT_S):
                    raise RuntimeError("no go signal")
                cpu_before = _cpu_s()
                await self._load()
                link.mark("sent")
                await self._drain()
                link.mark("drained")
                client_cpu = _cpu_s() - cpu_before
                readers.cancel_scope.cancel()
        finally:
            await close_all(sessions)
        for pair in self.pairs:
            if pair.conversation_id:
                self.ledger.expect(pair.conversation_id, pair.max_acked_seq)
        return {
            "pairs": len(self.pairs),
            "sessions": sum(1 for s in sessions if s is not None),
            "started": self.started,
            "acked": self.acked,
            "counts": self.ledger.counts().as_dict(),
            "failures": dict(self.failures),
            "latency_s": self.latency_s,
            "ack_s": self.ack_s,
            "first_send_wall": self.first_send_wall,
            "last_ack_wall": self.last_ack_wall,
            "last_receipt_wall": self.last_receipt_wall,
            "client_cpu_s": client_cpu,
        }

    def _unexpected_push(self, message: m.ServerMessage) -> None:
        if isinstance(message, m.NewMessage):
            self.failures["push to the sending session"] += 1

    def _receiver_of(self, pair: _Pair) -> Callable[[m.ServerMessage], None]:
        def on_push(message: m.ServerMessage) -> None:
            if not isinstance(message, m.NewMessage):
                return
            now = time.time()
            chat = message.message
            if chat.send_id != pair.sender_id:
                self.failures["message from someone else"] += 1
                return
            self.ledger.receive(chat.conversation_id, chat.seq)
            pair.conversation_id = chat.conversation_id
            pair.received += 1
            self.received += 1
            self.link.progress()
            sent = sent_time_of(chat)
            if sent is not None:
                self.latency_s.append(now - sent)
            self.last_receipt_wall = now
            self.progress.set()

        return on_push

    async def _send(self, pair: _Pair, scheduled_mono: float) -> None:
        job = self.job
        sent_wall = _sent_wall(scheduled_mono)
        if self.first_send_wall is None:
            self.first_send_wall = sent_wall
        self.started += 1

        def build(rid: int) -> m.ClientMessage:
            return m.SendMessage(
                rid=rid,
                client_msg_id=f"{pair.index}-{rid}",
                content=m.TextContent(text=message_text(sent_wall, job.size)),
                to_user_id=pair.receiver_id,
            )

        try:
            slot = await pair.sender.send_request(build)
            reply = await pair.sender.wait_reply(slot, job.timeout_s)
        except SessionFailed as exc:
            self.failures[f"send:{exc.kind}"] += 1
            return
        if isinstance(reply, m.Error):
            self.failures[f"send:{reply.name}"] += 1
            return
        if not isinstance(reply, m.MessageSent):
            self.failures["send:unexpected reply"] += 1
            return
        now = time.time()
        self.ack_s.append(now - sent_wall)
        self.last_ack_wall = now
        self.acked += 1
        pair.acked += 1
        pair.conversation_id = reply.conversation_id
        pair.max_acked_seq = max(pair.max_acked_seq, reply.seq)

    async def _load(self) -> None:
        job = self.job
        if not self.pairs:
            return
        self.stop_at = time.monotonic() + job.duration_s
        if job.rate:
            count = min(job.messages, int(job.rate * job.duration_s))
            pairs = self.pairs

            async def action(index: int, start: float) -> None:
                await self._send(pairs[index % len(pairs)], start)

            await open_loop(count, job.rate, action)
            return
        budget = [job.messages]

        async def runner(pair: _Pair) -> None:
            while budget[0] > 0 and time.monotonic() < self.stop_at:
                budget[0] -= 1
                await self._send(pair, time.monotonic())

        # Start the pairs in a random order so no pair always goes first.
        order = list(self.pairs)
        random.shuffle(order)
        async with trio.open_nursery() as nursery:
            for pair in order:
                for _ in range(max(1, job.window)):
                    nursery.start_soon(runner, pair)

    async def _drain(self) -> None:
        """Wait until every pair's receiver has as many messages as were acknowledged."""
        deadline = trio.current_time() + self.job.drain_s
        while any(p.received < p.max_acked_seq for p in self.pairs):
            self.progress = trio.Event()
            with trio.move_on_at(deadline) as scope:
                await self.progress.wait()
            if scope.cancelled_caught:
                return


async def run_pairs(job: PairsJob, link: WorkerLink) -> dict[str, Any]:
    """Sign the pairs in, send between them when told to go, report what arrived."""
    return await _PairsRun(job, link).run()


# -- group ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupJob:
    url: str
    group_id: str
    member_ids: list[str]
    tokens: list[str]
    sender_count: int
    """The first ``sender_count`` members of this process post."""
    messages: int
    """Messages posted by this process's senders in all."""
    duration_s: float
    window: int
    rate: float | None
    size: int
    timeout_s: float
    drain_s: float


class _GroupRun:
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

    async def run(self) -> dict[str, Any]:
        job, link = self.job, self.link
        sessions = await sign_in_all(
            [job.url] * len(job.tokens), job.tokens, job.timeout_s, self.failures
        )
        self.online = [u for u, s in zip(job.member_ids, sessions, strict=True) if s is not None]
        for member_id, session in zip(job.member_ids, sessions, strict=True):
            if session is not None:
                session.on_push = self._receiver_of(member_id)
                session.on_reply = self._acks_of(member_id)
        senders = [
            (job.member_ids[i], s)
            for i, s in enumerate(sessions[: job.sender_count])
            if s is not None
        ]
        try:
            async with trio.open_nursery() as readers:
                for session in sessions:
                    if session is not None:
                        readers.start_soon(session.read_forever)
                link.mark("signed_in")
                if not await link.wait_for("go", GO_TIMEOUT_S):
                    raise RuntimeError("no go signal")
                cpu_before = _cpu_s()
                await self._load(senders)
                link.mark("sent")
                await link.wait_for("all_sent", job.duration_s + job.timeout_s * 2 + 60)
                await self._drain()
                link.mark("drained")
                client_cpu = _cpu_s() - cpu_before
                readers.cancel_scope.cancel()
        finally:
            await close_all(sessions)
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
            "client_cpu_s": client_cpu,
        }

    def _receiver_of(self, member_id: str) -> Callable[[m.ServerMessage], None]:
        arrivals = self.arrivals[member_id]

        def on_push(message: m.ServerMessage) -> None:
            if not isinstance(message, m.NewMessage):
                return
            now = time.time()
            chat = message.message
            if chat.conversation_id != self.conversation_id:
                return
            arrivals.append(chat.seq)
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

        return on_push

    def _acks_of(self, member_id: str) -> Callable[[m.Reply], None]:
        arrivals = self.arrivals[member_id]

        def on_reply(reply: m.Reply) -> None:
            # The reply is what the sending device gets instead of the push: it counts as
            # that device's receipt of the seq, in order with the pushes around it.
            if isinstance(reply, m.MessageSent) and reply.conversation_id == self.conversation_id:
                arrivals.append(reply.seq)

        return on_reply

    async def _send(self, member_id: str, session: ChatSession, scheduled_mono: float) -> None:
        job = self.job
        sent_wall = _sent_wall(scheduled_mono)
        if self.first_send_wall is None:
            self.first_send_wall = sent_wall

        def build(rid: int) -> m.ClientMessage:
            return m.SendMessage(
                rid=rid,
                client_msg_id=f"{member_id}-{rid}",
                content=m.TextContent(text=message_text(sent_wall, job.size)),
                group_id=job.group_id,
            )

        try:
            slot = await session.send_request(build)
            reply = await session.wait_reply(slot, job.timeout_s)
        except SessionFailed as exc:
            self.failures[f"send:{exc.kind}"] += 1
            return
        if isinstance(reply, m.Error):
            self.failures[f"send:{reply.name}"] += 1
            return
        if not isinstance(reply, m.MessageSent):
            self.failures["send:unexpected reply"] += 1
            return
        self.acked_seqs.append(reply.seq)
        self.ack_s.append(time.time() - sent_wall)

    async def _load(self, senders: list[tuple[str, ChatSession]]) -> None:
        job = self.job
        if not senders or job.messages <= 0:
            return
        stop_at = time.monotonic() + job.duration_s
        if job.rate:
            count = min(job.messages, int(job.rate * job.duration_s))

            async def action(index: int, start: float) -> None:
                member_id, session = senders[index % len(senders)]
                await self._send(member_id, session, start)

            await open_loop(count, job.rate, action)
            return
        budget = [job.messages]

        async def runner(member_id: str, session: ChatSession) -> None:
            while budget[0] > 0 and time.monotonic() < stop_at:
                budget[0] -= 1
                await self._send(member_id, session, time.monotonic())

        async with trio.open_nursery() as nursery:
            for member_id, session in senders:
                for _ in range(max(1, job.window)):
                    nursery.start_soon(runner, member_id, session)

    async def _drain(self) -> None:
        """Every process has sent: wait until pushes stop arriving and every member here
        has as many messages as the others (bounded by ``drain_s``)."""
        deadline = time.monotonic() + self.job.drain_s
        online = [self.arrivals[u] for u in self.online]
        while time.monotonic() < deadline:
            quiet = time.monotonic() - self.last_push_mono >= QUIET_S
            if quiet and len({len(a) for a in online}) <= 1:
                return
            await trio.sleep(0.1)


async def run_group(job: GroupJob, link: WorkerLink) -> dict[str, Any]:
    """Sign the members in, post when told to go, report every member's arrivals."""
    return await _GroupRun(job, link).run()
