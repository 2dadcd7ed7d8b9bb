"""The picows load client of the messaging scenarios (pairs, group, cluster):
``--client picows`` (the default), for load that costs the client little.

A session is a picows ``WSListener`` (a Cython WebSocket client on asyncio, run on
uvloop by ``bench.workers``); frames are decoded by ``protocol.codec`` (msgspec)
in the frame callback, replies are handed to the callback waiting for their
request id, pushes to the session's push callback. There is no task per
message: in a closed loop the reply to a send starts the pair's next send, an
open loop starts every send that is due each time its one timer fires, and one
sweep a few times a second fails the requests whose reply is overdue. The
WebSocket layer's pings are answered by picows itself.

What is sent, received and checked is kept by the run's book
(``bench.chat_book``), exactly as for the trio client: the same requests, the
same receipts and seq checks, the same result.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from picows import (
    WSCloseCode,
    WSError,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)

from bench.chat_book import (
    SIGN_IN_CONCURRENCY,
    GroupBook,
    GroupJob,
    LoadShape,
    Outgoing,
    Pair,
    PairsBook,
    PairsJob,
    measured_phases,
)
from bench.wire import SessionFailed
from bench.workers import WorkerLink
from protocol import messages as m
from protocol.codec import ClientCodec

SUBPROTOCOLS = ", ".join(m.SUPPORTED_SUBPROTOCOLS)
EXPIRE_EVERY_S = 0.25
"""How often requests are checked for an overdue reply."""
CLOSE_TIMEOUT_S = 10.0
LOAD_GRACE_S = 60.0
"""Beyond the load's own duration and request timeout, the longest wait for it to end."""

Answer = m.Reply | str
"""What a request's callback gets: the reply, or why there is none (``timeout``,
``closed``)."""
OnAnswer = Callable[[Answer], None]
T = TypeVar("T")


class PicowsSession(WSListener):
    """One WebSocket session: requests by rid with a callback each, pushes to ``on_push``."""

    codec = ClientCodec()

    def __init__(self) -> None:
        super().__init__()
        self.transport: WSTransport | None = None
        self._rid = 0
        self._waiting: dict[int, tuple[float, OnAnswer]] = {}
        """rid -> (deadline, callback)"""
        self._partial: bytearray | None = None
        self.on_push: Callable[[m.ServerMessage], None] | None = None
        self.on_reply: Callable[[m.Reply], None] | None = None
        """Called as each reply arrives, before its request's callback, in order with pushes."""
        self.closed_reason: str | None = None
        self.disconnected = asyncio.get_running_loop().create_future()

    # -- picows callbacks -----------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.BINARY:
            if frame.fin:
                self._dispatch(frame.get_payload_as_bytes())
            else:
                self._partial = bytearray(frame.get_payload_as_memoryview())
        elif kind == WSMsgType.CONTINUATION and self._partial is not None:
            self._partial += frame.get_payload_as_memoryview()
            if frame.fin:
                payload, self._partial = bytes(self._partial), None
                self._dispatch(payload)
        elif kind == WSMsgType.CLOSE:
            self.closed_reason = f"closed: server closed with {frame.get_close_code()}"
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif kind in (WSMsgType.TEXT, WSMsgType.CONTINUATION):
            self.closed_reason = "unexpected: text frame from the server"
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.closed_reason is None:
            self.closed_reason = "closed: connection closed"
        waiting, self._waiting = self._waiting, {}
        for _, callback in waiting.values():
            callback("closed")
        if not self.disconnected.done():
            self.disconnected.set_result(None)

    def _dispatch(self, payload: bytes) -> None:
        message = self.codec.decode(payload)
        if isinstance(message, m.Reply):
            if self.on_reply is not None:
                self.on_reply(message)
            waiting = self._waiting.pop(message.rid, None)
            if waiting is not None:
                waiting[1](message)
        elif self.on_push is not None:
            self.on_push(message)

    # -- requests --------------------------------------------------------------------

    def request(
        self, build: Callable[[int], m.ClientMessage], on_answer: OnAnswer, timeout: float
    ) -> None:
        """Build the request with the next rid and send it; ``on_answer`` gets the reply,
        or (a failure kind) ``timeout`` or ``closed``, never during this call."""
        transport = self.transport
        if self.closed_reason is not None or transport is None:
            asyncio.get_running_loop().call_soon(on_answer, "closed")
            return
        self._rid += 1
        message = build(self._rid)
        self._waiting[self._rid] = (time.monotonic() + timeout, on_answer)
        transport.send(WSMsgType.BINARY, self.codec.encode(message))

    async def call(
        self, build: Callable[[int], m.ClientMessage], expect: type[m.Reply], timeout: float
    ) -> m.Reply:
        """Send one request and wait for its reply; a server error is a failure."""
        answered: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()

        def on_answer(answer: Answer) -> None:
            if not answered.done():
                answered.set_result(answer)

        self.request(build, on_answer, timeout)
        try:
            answer = await asyncio.wait_for(answered, timeout)
        except TimeoutError:
            raise SessionFailed("timeout", f"no {expect.__name__} in {timeout} s") from None
        if isinstance(answer, str):
            raise SessionFailed(answer, self.closed_reason or "")
        if isinstance(answer, m.Error):
            raise SessionFailed(answer.name, answer.message)
        if not isinstance(answer, expect):
            raise SessionFailed("unexpected", f"expected {expect.__name__}, got {answer!r}")
        return answer

    def expire(self, now: float) -> None:
        """Fail the requests whose reply is overdue."""
        if not self._waiting:
            return
        overdue = [rid for rid, (deadline, _) in self._waiting.items() if deadline < now]
        for rid in overdue:
            self._waiting.pop(rid)[1]("timeout")

    def close(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_disconnected:
            if not transport.is_close_frame_sent:
                transport.send_close(WSCloseCode.OK)
            transport.disconnect()


async def open_session(url: str, timeout: float) -> PicowsSession:
    """TCP connect and WebSocket handshake with the ``parley.v1`` subprotocol."""
    try:
        _, listener = await asyncio.wait_for(
            ws_connect(
                PicowsSession,
                url,
                extra_headers={"Sec-WebSocket-Protocol": SUBPROTOCOLS},
                websocket_handshake_timeout=timeout,
                use_aiofastnet=False,
            ),
            timeout,
        )
    except TimeoutError:
        raise SessionFailed("timeout", f"connect and handshake took over {timeout} s") from None
    except WSError as exc:
        raise SessionFailed("handshake", str(exc)) from None
    except OSError as exc:
        raise SessionFailed("connect", str(exc)) from None
    assert isinstance(listener, PicowsSession)
    return listener


async def sign_in(url: str, token: str, timeout: float) -> PicowsSession:
    session = await open_session(url, timeout)
    try:
        await session.call(lambda rid: m.TokenLogin(rid=rid, token=token), m.LoginOk, timeout)
    except BaseException:
        session.close()
        raise
    return session


async def sign_in_all(
    urls: Sequence[str], tokens: Sequence[str], timeout: float, failures: Counter[str]
) -> list[PicowsSession | None]:
    """A signed-in session per (url, token); None where it failed (counted in ``failures``)."""
    sessions: list[PicowsSession | None] = [None] * len(tokens)
    limit = asyncio.Semaphore(SIGN_IN_CONCURRENCY)

    async def one(index: int) -> None:
        async with limit:
            try:
                sessions[index] = await sign_in(urls[index], tokens[index], timeout)
            except SessionFailed as exc:
                failures[f"sign_in:{exc.kind}"] += 1

    await asyncio.gather(*(one(i) for i in range(len(tokens))))
    return sessions


async def close_all(sessions: Sequence[PicowsSession | None]) -> None:
    """Close every session and wait (at most ``CLOSE_TIMEOUT_S``) until they are gone."""
    open_ones = [s for s in sessions if s is not None]
    for session in open_ones:
        session.close()
    if open_ones:
        await asyncio.wait([s.disconnected for s in open_ones], timeout=CLOSE_TIMEOUT_S)


async def _expire_forever(sessions: Sequence[PicowsSession | None]) -> None:
    live = [s for s in sessions if s is not None]
    while True:
        await asyncio.sleep(EXPIRE_EVERY_S)
        now = time.monotonic()
        for session in live:
            session.expire(now)


async def _open_loop(count: int, rate: float, action: Callable[[int, float], None]) -> None:
    """Call ``action(index, due)`` for 0..count-1 at ``rate`` per second, on schedule:
    each time the timer fires, every item that is due starts (``due`` in monotonic time)."""
    started = time.monotonic()
    index = 0
    while index < count:
        now = time.monotonic()
        while index < count and started + index / rate <= now:
            action(index, started + index / rate)
            index += 1
        if index < count:
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))


class _Load(Generic[T]):
    """The sends of one client process, over its senders (a pair, a group member):
    a closed loop (``window`` in flight per sender, the answer to one starting the
    next) or an open loop (``rate`` per second, round robin), at most ``messages``
    and none started after ``duration_s``.

    ``send(sender, due)`` makes one send; its answer must call :meth:`answered`."""

    def __init__(self, shape: LoadShape, send: Callable[[T, float], None]) -> None:
        self._shape = shape
        self._send = send
        self._budget = shape.messages
        self._stop_at = 0.0
        self._in_flight = 0
        self._ending = False
        self._idle: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def sending(self) -> None:
        """A send has begun (before its request is written)."""
        self._in_flight += 1

    def answered(self, sender: T) -> None:
        """A send's answer (or failure) has been recorded."""
        if not self._shape.rate:
            self._next(sender)
        self._in_flight -= 1
        self._check_idle()

    def _next(self, sender: T) -> None:
        now = time.monotonic()
        if self._budget > 0 and now < self._stop_at:
            self._budget -= 1
            self._send(sender, now)

    def _check_idle(self) -> None:
        if self._ending and self._in_flight == 0 and not self._idle.done():
            self._idle.set_result(None)

    async def run(self, senders: Sequence[T]) -> None:
        shape = self._shape
        if not senders or shape.messages <= 0:
            return
        self._stop_at = time.monotonic() + shape.duration_s
        if shape.rate:
            count = min(shape.messages, int(shape.rate * shape.duration_s))
            await _open_loop(
                count, shape.rate, lambda index, due: self._send(senders[index % len(senders)], due)
            )
        else:
            for sender in senders:
                for _ in range(max(1, shape.window)):
                    self._next(sender)
        # No more sends start, except (closed loop) by an answer before it ends: the load
        # is over once none is in flight.
        self._ending = True
        self._check_idle()
        await asyncio.wait_for(
            self._idle, shape.duration_s + shape.timeout_s + shape.retry_for_s + LOAD_GRACE_S
        )


# -- pairs (and cluster) -----------------------------------------------------------------


class _PairsRun:
    def __init__(self, job: PairsJob, link: WorkerLink) -> None:
        self.job = job
        self.link = link
        self.book: PairsBook[PicowsSession] = PairsBook(job, link)
        self.load: _Load[Pair[PicowsSession]] = _Load(job, self._send)
        self.unfinished: set[Pair[PicowsSession]] | None = None
        """While draining: the pairs whose receiver still misses messages."""
        self.drained: asyncio.Future[None] | None = None

    async def run(self) -> dict[str, Any]:
        job, link, book = self.job, self.link, self.book
        urls = [*job.sender_urls, *job.receiver_urls]
        tokens = [*job.sender_tokens, *job.receiver_tokens]
        sessions = await sign_in_all(urls, tokens, job.timeout_s, book.failures)
        for pair in book.pair_up(sessions):
            pair.receiver.on_push = functools.partial(self._receipt, pair)
            pair.sender.on_push = book.unexpected_push
        # Start the pairs in a random order so no pair always goes first.
        order = list(book.pairs)
        random.shuffle(order)
        expiry = asyncio.create_task(_expire_forever(sessions))
        try:
            client_cpu = await measured_phases(
                link, functools.partial(self.load.run, order), self._drain
            )
        finally:
            expiry.cancel()
            await close_all(sessions)
        return book.result(sum(1 for s in sessions if s is not None), client_cpu)

    def _receipt(self, pair: Pair[PicowsSession], message: m.ServerMessage) -> None:
        if not self.book.receipt(pair, message) or self.unfinished is None:
            return
        if not pair.undelivered and pair in self.unfinished:
            self.unfinished.discard(pair)
            if not self.unfinished and self.drained is not None and not self.drained.done():
                self.drained.set_result(None)

    def _send(self, pair: Pair[PicowsSession], scheduled_mono: float) -> None:
        self.load.sending()
        self._attempt(self.book.outgoing(pair, scheduled_mono))

    def _attempt(self, outgoing: Outgoing[PicowsSession]) -> None:
        """Send (or resend, same client msg id) ``outgoing``; the pair's next message
        starts once it is done with."""
        book = self.book

        def answered(answer: Answer) -> None:
            retry_in = book.outcome(outgoing, answer)
            if retry_in is None:
                self.load.answered(outgoing.pair)
            else:
                asyncio.get_running_loop().call_later(retry_in, self._attempt, outgoing)

        outgoing.pair.sender.request(
            functools.partial(book.request, outgoing), answered, self.job.timeout_s
        )

    async def _drain(self) -> None:
        """Wait until every pair's receiver has as many messages as were acknowledged."""
        self.unfinished = {p for p in self.book.pairs if p.undelivered}
        if not self.unfinished:
            return
        self.drained = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self.drained, self.job.drain_s)
        except TimeoutError:
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
        self.load: _Load[tuple[str, PicowsSession]] = _Load(job, self._send)

    async def run(self) -> dict[str, Any]:
        job, link, book = self.job, self.link, self.book
        sessions = await sign_in_all(
            [job.url] * len(job.tokens), job.tokens, job.timeout_s, book.failures
        )
        for member_id, session in book.seat(sessions):
            session.on_push = functools.partial(book.receipt, member_id)
            session.on_reply = functools.partial(book.reply_seen, member_id)
        senders = book.senders(sessions)
        expiry = asyncio.create_task(_expire_forever(sessions))
        try:
            client_cpu = await measured_phases(
                link,
                functools.partial(self.load.run, senders),
                functools.partial(book.drain, asyncio.sleep),
                job.all_sent_timeout_s,
            )
        finally:
            expiry.cancel()
            await close_all(sessions)
        return book.result(client_cpu)

    def _send(self, sender: tuple[str, PicowsSession], scheduled_mono: float) -> None:
        book = self.book
        member_id, session = sender
        wall = book.start(scheduled_mono)
        self.load.sending()

        def answered(answer: Answer) -> None:
            if isinstance(answer, str):
                book.failed(f"send:{answer}")
            else:
                book.answered(wall, answer)
            self.load.answered(sender)

        timeout = self.job.timeout_s
        session.request(lambda rid: book.request(member_id, rid, wall), answered, timeout)


async def run_group(job: GroupJob, link: WorkerLink) -> dict[str, Any]:
    """Sign the members in, post when told to go, report every member's arrivals."""
    return await _GroupRun(job, link).run()
