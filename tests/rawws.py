"""A bare WebSocket client for tests of misbehaving peers.

Unlike the SDK (and trio-websocket) it does nothing on its own: it answers no
pings and reads from the socket only when asked, so a test can play a client
that has gone silent or stopped reading.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from urllib.parse import urlsplit

import trio
import wsproto
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import Extension


class Rejected(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"handshake rejected with {status}: {body!r}")
        self.status = status
        self.body = body


class RawClient:
    def __init__(self, stream: trio.SocketStream, connection: wsproto.WSConnection) -> None:
        self.stream = stream
        self.ws = connection
        self.subprotocol: str | None = None
        self.extensions: list[object] = []
        self.pings_seen = 0
        self._pending: list[Event] = []

    @classmethod
    async def open(
        cls,
        url: str,
        subprotocols: Sequence[str] = ("parley.v1",),
        timeout: float = 10,
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
        extensions: Sequence[Extension] = (),
    ) -> RawClient:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream(parts.hostname, parts.port)
            client = cls(stream, wsproto.WSConnection(wsproto.ConnectionType.CLIENT))
            request = Request(
                host=f"{parts.hostname}:{parts.port}",
                target=parts.path or "/",
                subprotocols=list(subprotocols),
                extra_headers=list(extra_headers),
                extensions=list(extensions),
            )
            await stream.send_all(client.ws.send(request))
            body = b""
            status = 0
            while True:
                events = await client._receive()
                for index, event in enumerate(events):
                    if isinstance(event, AcceptConnection):
                        client.subprotocol = event.subprotocol
                        client.extensions = list(event.extensions)
                        client._pending = events[index + 1 :]  # what came with the 101
                        return client
                    if isinstance(event, RejectConnection):
                        status = event.status_code
                        if not event.has_body:
                            raise Rejected(status, b"")
                    elif isinstance(event, RejectData):
                        body += event.data
                        if event.body_finished:
                            raise Rejected(status, body)

    async def _receive(self) -> list[Event]:
        data = await self.stream.receive_some(65536)
        self.ws.receive_data(data or None)
        return list(self.ws.events())

    async def send(self, data: bytes | str) -> None:
        message: Event = (
            TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
        )
        await self.stream.send_all(self.ws.send(message))

    async def send_frame(
        self, opcode: int, payload: bytes, fin: bool = True, masked: bool = True, rsv: int = 0
    ) -> None:
        """Write one frame as it is, whatever state the WebSocket is in: for tests of
        peers that break the protocol (data after their own close, bad fragmenting,
        unmasked frames, reserved bits)."""
        await self.stream.send_all(client_frame(opcode, payload, fin, masked, rsv))

    async def next_event(self) -> Event:
        while not self._pending:
            self._pending.extend(await self._receive())
        return self._pending.pop(0)

    async def next_message(self, timeout: float = 10) -> bytes:
        """The next binary message; pings are counted, never answered."""
        with trio.fail_after(timeout):
            while True:
                event = await self.next_event()
                if isinstance(event, Ping):
                    self.pings_seen += 1
                elif isinstance(event, BytesMessage):
                    return bytes(event.data)
                elif isinstance(event, TextMessage):
                    raise AssertionError(f"unexpected text message {event.data!r}")
                elif isinstance(event, CloseConnection):
                    raise AssertionError(f"closed with {event.code}: {event.reason}")

    async def wait_closed(self, timeout: float = 10) -> int:
        """Read until the server closes; the close code, or 1006 for a connection dropped
        without a close frame. Messages and pings on the way are skipped."""
        with trio.fail_after(timeout):
            while True:
                try:
                    event = await self.next_event()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return 1006
                except wsproto.utilities.RemoteProtocolError:
                    return 1006
                if isinstance(event, Ping):
                    self.pings_seen += 1
                elif isinstance(event, CloseConnection):
                    return int(event.code)
                if self.ws.state == wsproto.connection.ConnectionState.CLOSED:
                    return 1006

    async def aclose(self) -> None:
        await self.stream.aclose()


TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def client_frame(
    opcode: int, payload: bytes, fin: bool = True, masked: bool = True, rsv: int = 0
) -> bytes:
    """One RFC 6455 frame as a client sends it (masked, unless a test breaks the rule)."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mask_bit = 0x80 if masked else 0
    size = len(payload)
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", size)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
