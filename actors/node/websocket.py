"""A WebSocket's data path on a non-blocking socket, driven from the trio loop by
direct system calls.

Sending never waits: a frame is written with one ``send()`` at once; only what the
kernel does not take (its buffer is full: the peer reads slowly) is kept, in
order, and written by the session's flusher task when the socket is writable
again. Receiving calls ``recv()`` until the kernel says ``EAGAIN``, and only then
waits for readability. So a message costs its system calls, not a trip through
trio's stream wrappers and a task switch per frame: that trip was most of a
message's CPU with trio-websocket (docs/BENCHMARKS.md, issue 14).

The frames themselves are encoded and decoded by the sans-I/O codec in
``protocol.websocket``.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Awaitable, Callable, Sequence

import trio

from protocol.websocket import (
    BinaryMessage,
    Close,
    Event,
    FrameDecoder,
    Ping,
    Pong,
    ProtocolViolation,
    encode_binary,
    encode_close,
    encode_ping,
    encode_pong,
)

RECEIVE_BYTES = 65536
READS_IN_A_ROW = 16
"""``recv()`` calls that found data before the reader lets other tasks run."""

_last_framed: list[bytes] = [b"", encode_binary(b"")]
"""The last payload framed and its frame: a push to many sessions hands each the
same bytes object, so its frame is built once for all of them."""


def _framed(payload: bytes) -> bytes:
    if payload is not _last_framed[0]:
        _last_framed[0] = payload
        _last_framed[1] = encode_binary(payload)
    return _last_framed[1]


class PendingFull(Exception):
    """More frames wait for the kernel than the session may hold: the peer does not
    read fast enough."""


class Disconnected(Exception):
    """The TCP connection is gone (reset, or closed by us)."""


class WebSocket:
    """One accepted WebSocket. Every method runs on the node's event loop; ``receive``
    is called by one task, ``run_flusher`` by another, the rest by anyone."""

    __slots__ = (
        "_close_sent",
        "_decoder",
        "_flusher",
        "_gone",
        "_max_pending",
        "_pending",
        "_reads_in_a_row",
        "_sent_of_first",
        "_sock",
        "_unread",
    )

    def __init__(
        self, sock: socket.socket, leftover: bytes, max_message_bytes: int, max_pending: int
    ) -> None:
        self._sock = sock
        self._decoder = FrameDecoder(max_message_bytes=max_message_bytes)
        self._unread = leftover
        """Bytes that came with the handshake, decoded before anything is read."""
        self._pending: list[bytes] = []
        self._sent_of_first = 0
        self._max_pending = max_pending
        self._flusher: trio.lowlevel.Task | None = None
        self._close_sent = False
        self._gone = False
        self._reads_in_a_row = 0

    # -- sending ------------------------------------------------------------------

    def send_message(self, payload: bytes) -> None:
        """Send one binary message; raises ``PendingFull``. Dropped after the close."""
        if not self._close_sent:
            self._write(_framed(payload), bounded=True)

    def send_ping(self, payload: bytes = b"") -> None:
        if not self._close_sent:
            self._write(encode_ping(payload), bounded=False)

    def send_close(self, code: int | None, reason: str = "") -> None:
        """Send the close frame, after every frame sent before it; nothing after it."""
        if not self._close_sent:
            self._close_sent = True
            self._write(encode_close(code, reason), bounded=False)

    def _write(self, frame: bytes, bounded: bool) -> None:
        if self._gone:
            return
        if self._pending:
            if bounded and len(self._pending) >= self._max_pending:
                raise PendingFull()
            self._pending.append(frame)
            return
        try:
            sent = self._sock.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._gone = True
            return
        if sent < len(frame):
            self._pending.append(frame)
            self._sent_of_first = sent
            self._wake_flusher()

    def _wake_flusher(self) -> None:
        flusher = self._flusher
        if flusher is not None:
            self._flusher = None
            trio.lowlevel.reschedule(flusher)

    async def run_flusher(self) -> None:
        """Write what the kernel did not take, whenever there is any; until cancelled."""
        while True:
            if not self._pending or self._gone:
                self._flusher = trio.lowlevel.current_task()
                try:
                    await trio.lowlevel.wait_task_rescheduled(self._abort)
                finally:
                    self._flusher = None
                continue
            await self._flush_once()

    def _abort(self, _raise_cancel: object) -> trio.lowlevel.Abort:
        # Cancelled: trio reschedules the flusher itself, so no send may wake it too.
        self._flusher = None
        return trio.lowlevel.Abort.SUCCEEDED

    async def _flush_once(self) -> None:
        frame = self._pending[0]
        try:
            sent = self._sock.send(memoryview(frame)[self._sent_of_first :])
        except BlockingIOError:
            await self._wait(trio.lowlevel.wait_writable)
            return
        except OSError:
            self._gone = True
            self._pending.clear()
            return
        self._sent_of_first += sent
        if self._sent_of_first >= len(frame):
            self._pending.pop(0)
            self._sent_of_first = 0

    async def drain(self) -> None:
        """Wait until the kernel has taken every frame sent (or the peer is gone)."""
        while self._pending and not self._gone:
            await self._flush_once()

    # -- receiving ----------------------------------------------------------------

    async def receive(self) -> Sequence[Event]:
        """The next events from the peer (at least one); pings are answered here and
        still returned. Raises ``Disconnected`` at the end of the stream, and the
        codec's ``ProtocolViolation`` for a frame that breaks RFC 6455 or the limits."""
        while True:
            data = self._unread
            if data:
                self._unread = b""
            else:
                data = await self._recv()
            events = self._decoder.feed(data)
            for event in events:
                if isinstance(event, Ping):
                    self._write(encode_pong(event.payload), bounded=False)
            if events:
                return events

    async def _recv(self) -> bytes:
        while True:
            if self._gone:
                raise Disconnected()
            try:
                data = self._sock.recv(RECEIVE_BYTES)
            except BlockingIOError:
                self._reads_in_a_row = 0
                await self._wait(trio.lowlevel.wait_readable)
                continue
            except OSError as exc:
                self._gone = True
                raise Disconnected() from exc
            if not data:
                self._gone = True
                raise Disconnected()
            self._reads_in_a_row += 1
            if self._reads_in_a_row >= READS_IN_A_ROW:
                self._reads_in_a_row = 0
                await trio.lowlevel.cancel_shielded_checkpoint()
            return data

    async def _wait(self, until: Callable[[socket.socket], Awaitable[None]]) -> None:
        """Wait for the kernel; a socket closed meanwhile (``close_socket``) ends the
        stream for every waiter."""
        try:
            await until(self._sock)
        except trio.ClosedResourceError:
            self._gone = True

    # -- the end ------------------------------------------------------------------

    def close_socket(self) -> None:
        """Close the TCP connection now (tasks waiting on it are woken first)."""
        self._gone = True
        self._pending.clear()
        close_socket(self._sock)


def close_socket(sock: socket.socket) -> None:
    """Close a socket the loop may be waiting on; a no-op if it is closed already."""
    if sock.fileno() == -1:
        return
    trio.lowlevel.notify_closing(sock)
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError as exc:
        if exc.errno not in (errno.ENOTCONN, errno.EBADF):
            raise
    sock.close()


__all__ = [
    "BinaryMessage",
    "Close",
    "Disconnected",
    "Event",
    "PendingFull",
    "Ping",
    "Pong",
    "ProtocolViolation",
    "WebSocket",
]
