"""The trio load client of the messaging scenarios (pairs, group, cluster):
``--client trio``, a lean wsproto session per user on one trio loop per process.

Each signed-in session gets a reader task that hands replies to the request
waiting for them (by request id) and pushes to a callback, so one session can
have several sends in flight while it keeps receiving. Writes to a session go
through one lock, so the order in which sends are numbered is the order in
which their frames reach the server.

What is sent, received and checked is kept by the run's book
(``bench.chat_book``), which the picows client shares.
"""

from __future__ import annotations

import functools
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
from wsproto.events import BytesMessage

from bench.chat_book import (
    SIGN_IN_CONCURRENCY,
    GroupBook,
    GroupJob,
    Pair,
    PairsBook,
    PairsJob,
    measured_phases,
)
from bench.loops import open_loop
from bench.wire import LeanSession, Received, SessionFailed, close_all
from bench.workers import WorkerLink
from protocol import messages as m


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


# -- pairs (and cluster) -----------------------------------------------------------------


class _PairsRun:
    def __init__(self, job: PairsJob, link: WorkerLink) -> None:
        self.job = job
        self.link = link
        self.book: PairsBook[ChatSession] = PairsBook(job, link)
        self.stop_at = 0.0
        self.progress = trio.Event()

    async def run(self) -> dict[str, Any]:
        job, link, book = self.job, self.link, self.book
        urls = [*job.sender_urls, *job.receiver_urls]
        tokens = [*job.sender_tokens, *job.receiver_tokens]
        sessions = await sign_in_all(urls, tokens, job.timeout_s, book.failures)
        for pair in book.pair_up(sessions):
            pair.receiver.on_push = self._receiver_of(pair)
            pair.sender.on_push = book.unexpected_push
        try:
            async with trio.open_nursery() as readers:
                for session in sessions:
                    if session is not None:
                        readers.start_soon(session.read_forever)
                client_cpu = await measured_phases(link, self._load, self._drain)
                readers.cancel_scope.cancel()
        finally:
            await close_all(sessions)
        return book.result(sum(1 for s in sessions if s is not None), client_cpu)

    def _receiver_of(self, pair: Pair[ChatSession]) -> Callable[[m.ServerMessage], None]:
        def on_push(message: m.ServerMessage) -> None:
            if self.book.receipt(pair, message):
                self.progress.set()

        return on_push

    async def _send(self, pair: Pair[ChatSession], scheduled_mono: float) -> None:
        """One message, resent with the same client msg id while the book says so."""
        book = self.book
        outgoing = book.outgoing(pair, scheduled_mono)
        while True:
            answer: m.Reply | str
            try:
                slot = await pair.sender.send_request(functools.partial(book.request, outgoing))
                answer = await pair.sender.wait_reply(slot, self.job.timeout_s)
            except SessionFailed as exc:
                answer = exc.kind
            retry_in = book.outcome(outgoing, answer)
            if retry_in is None:
                return
            await trio.sleep(retry_in)

    async def _load(self) -> None:
        job = self.job
        pairs = self.book.pairs
        if not pairs:
            return
        self.stop_at = time.monotonic() + job.duration_s
        if job.rate:
            count = min(job.messages, int(job.rate * job.duration_s))

            async def action(index: int, start: float) -> None:
                await self._send(pairs[index % len(pairs)], start)

            await open_loop(count, job.rate, action)
            return
        budget = [job.messages]

        async def runner(pair: Pair[ChatSession]) -> None:
            while budget[0] > 0 and time.monotonic() < self.stop_at:
                budget[0] -= 1
                await self._send(pair, time.monotonic())

        # Start the pairs in a random order so no pair always goes first.
        order = list(pairs)
        random.shuffle(order)
        async with trio.open_nursery() as nursery:
            for pair in order:
                for _ in range(max(1, job.window)):
                    nursery.start_soon(runner, pair)

    async def _drain(self) -> None:
        """Wait until every pair's receiver has as many messages as were acknowledged."""
        deadline = trio.current_time() + self.job.drain_s
        while any(p.undelivered for p in self.book.pairs):
            self.progress = trio.Event()
            with trio.move_on_at(deadline) as scope:
                await self.progress.wait()
            if scope.cancelled_caught:
                return


async def run_pairs(job: PairsJob, link: WorkerLink) -> dict[str, Any]:
    """Sign the pairs in, send between them when told to go, report what arrived."""
    return await _PairsRun(job, link).run()


# -- group ---------------------------------------------------------------------------


class _GroupRun:
    def __init__(self, job: GroupJob, link: WorkerLink) -> None:
        self.job = job
        self.link = link
        self.book = GroupBook(job, link)

    async def run(self) -> dict[str, Any]:
        job, link, book = self.job, self.link, self.book
        sessions = await sign_in_all(
            [job.url] * len(job.tokens), job.tokens, job.timeout_s, book.failures
        )
        for member_id, member in book.seat(sessions):
            member.on_push = functools.partial(book.receipt, member_id)
            member.on_reply = functools.partial(book.reply_seen, member_id)
        senders = book.senders(sessions)
        try:
            async with trio.open_nursery() as readers:
                for session in sessions:
                    if session is not None:
                        readers.start_soon(session.read_forever)
                client_cpu = await measured_phases(
                    link,
                    functools.partial(self._load, senders),
                    functools.partial(book.drain, trio.sleep),
                    job.all_sent_timeout_s,
                )
                readers.cancel_scope.cancel()
        finally:
            await close_all(sessions)
        return book.result(client_cpu)

    async def _send(self, member_id: str, session: ChatSession, scheduled_mono: float) -> None:
        book = self.book
        wall = book.start(scheduled_mono)
        try:
            slot = await session.send_request(lambda rid: book.request(member_id, rid, wall))
            reply = await session.wait_reply(slot, self.job.timeout_s)
        except SessionFailed as exc:
            book.failed(f"send:{exc.kind}")
            return
        book.answered(wall, reply)

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


async def run_group(job: GroupJob, link: WorkerLink) -> dict[str, Any]:
    """Sign the members in, post when told to go, report every member's arrivals."""
    return await _GroupRun(job, link).run()
