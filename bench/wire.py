"""A lean Parley client for load generation: wsproto over a trio socket, one task.

Unlike the SDK it runs no background reader, keeps no reconnection state and
hands back each reply with the size of its frame, so thousands of sessions fit
in one process and the frame sizes the server sends can be measured. It reads
only while it waits for a reply (or for pushes, when asked); WebSocket pings
that arrive meanwhile are answered then.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import trio
import wsproto
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from protocol import messages as m
from protocol.codec import ClientCodec

RECEIVE_CHUNK = 65536
R = TypeVar("R", bound=m.Reply)


class SessionFailed(Exception):
    """The session could not be opened, or ended, or a reply did not come in time.

    ``kind`` is a short category for failure counts, e.g. ``connect``, ``handshake``,
    ``closed``, ``timeout``, or an error name from the server such as ``TOKEN_REVOKED``.
    """

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass(frozen=True)
class Received:
    message: m.ServerMessage
    frame_bytes: int
    """Size of the message payload as sent by the server (the msgpack frame)."""


class LeanSession:
    _codec = ClientCodec()

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self._rids: Iterator[int] = itertools.count(1)
        self._partial = bytearray()
        self._ready: list[bytes] = []
        self.pushes: list[Received] = []
        """Server pushes that arrived while waiting for replies (when kept)."""
        self.keep_pushes = True
        self.pushes_seen = 0
        self.pings_answered = 0

    # -- opening and closing -------------------------------------------------------

    @classmethod
    async def open(cls, url: str, timeout: float) -> LeanSession:
        """TCP connect and WebSocket handshake with the ``parley.v1`` subprotocol."""
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise SessionFailed("connect", f"bad url {url!r}")
        try:
            with trio.fail_after(timeout):
                try:
                    stream = await trio.open_tcp_stream(parts.hostname, parts.port)
                except OSError as exc:
                    raise SessionFailed("connect", str(exc)) from None
                session = cls(stream)
                try:
                    await session._handshake(f"{parts.hostname}:{parts.port}", parts.path or "/")
                except BaseException:
                    await session.aclose(send_close=False)
                    raise
                return session
        except trio.TooSlowError:
            raise SessionFailed("timeout", f"connect and handshake took over {timeout} s") from None

    async def _handshake(self, host: str, path: str) -> None:
        request = Request(host=host, target=path, subprotocols=list(m.SUPPORTED_SUBPROTOCOLS))
        await self._send_bytes(self._ws.send(request))
        while True:
            for event in await self._receive_events():
                if isinstance(event, AcceptConnection):
                    return
                if isinstance(event, RejectConnection):
                    raise SessionFailed("handshake", f"rejected with {event.status_code}")

    async def aclose(self, send_close: bool = True) -> None:
        """Send a close frame (without waiting for the answer) and drop the socket."""
        try:
            if send_close and self._ws.state == wsproto.connection.ConnectionState.OPEN:
                with trio.move_on_after(1):
                    data = self._ws.send(CloseConnection(code=1000))
                    await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            await self._stream.aclose()

    # -- requests ------------------------------------------------------------------

    def next_rid(self) -> int:
        return next(self._rids)

    async def request(self, message: m.ClientMessage, timeout: float) -> Received:
        """Send a request and return its reply; pushes on the way are kept in ``pushes``."""
        with trio.move_on_after(timeout):
            await self.send(message)
            while True:
                received = await self.receive()
                if isinstance(received.message, m.Reply):
                    if received.message.rid == message.rid:
                        return received
                    continue  # a late reply to an earlier request that timed out
                self.pushes_seen += 1
                if self.keep_pushes:
                    self.pushes.append(received)
        raise SessionFailed("timeout", f"no reply to {type(message).__name__} in {timeout} s")

    async def call(self, message: m.ClientMessage, expect: type[R], timeout: float) -> R:
        """Like :meth:`request` but returns the typed reply; a server error is a failure."""
        reply = (await self.request(message, timeout)).message
        if isinstance(reply, m.Error):
            raise SessionFailed(reply.name, reply.message)
        if not isinstance(reply, expect):
            raise SessionFailed("unexpected", f"expected {expect.__name__}, got {reply!r}")
        return reply

    async def send(self, message: m.ClientMessage) -> None:
        await self._send_bytes(self._ws.send(BytesMessage(data=self._codec.encode(message))))

    async def receive(self) -> Received:
        """The next message from the server (reply or push)."""
        while not self._ready:
            for event in await self._receive_events():
                if isinstance(event, BytesMessage):
                    self._partial += event.data
                    if event.message_finished:
                        self._ready.append(bytes(self._partial))
                        self._partial.clear()
                elif isinstance(event, Ping):
                    self.pings_answered += 1
                    await self._send_bytes(self._ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    raise SessionFailed("closed", f"server closed with {event.code}")
                elif isinstance(event, TextMessage):
                    raise SessionFailed("unexpected", "text frame from the server")
        frame = self._ready.pop(0)
        return Received(self._codec.decode(frame), len(frame))

    # -- transport -----------------------------------------------------------------

    async def _send_bytes(self, data: bytes) -> None:
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise SessionFailed("closed", f"send failed: {exc}") from None

    async def _receive_events(self) -> list[wsproto.events.Event]:
        try:
            data = await self._stream.receive_some(RECEIVE_CHUNK)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise SessionFailed("closed", f"receive failed: {exc}") from None
        if not data:
            raise SessionFailed("closed", "connection closed without a close frame")
        try:
            self._ws.receive_data(data)
            return list(self._ws.events())
        except wsproto.utilities.RemoteProtocolError as exc:
            raise SessionFailed("protocol", str(exc)) from None


CLOSE_CONCURRENCY = 200
"""Sessions closed at once at the end of a run."""


async def close_all(sessions: Sequence[LeanSession | None]) -> None:
    """Close every session (``None`` entries are skipped), a bounded number at a time,
    giving up after 30 s."""
    limit = trio.Semaphore(CLOSE_CONCURRENCY)

    async def close(session: LeanSession) -> None:
        async with limit:
            await session.aclose()

    with trio.move_on_after(30):
        async with trio.open_nursery() as nursery:
            for session in sessions:
                if session is not None:
                    nursery.start_soon(close, session)
