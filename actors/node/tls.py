"""TLS on the client port (``wss://``), without giving up the direct socket calls.

OpenSSL runs sans-I/O here: an ``ssl.SSLObject`` between two ``MemoryBIO``s
(:class:`TlsSession`). The node still reads and writes the socket itself with
non-blocking ``recv()``/``send()`` (``actors.node.websocket``); the session only
turns the bytes received into plaintext and the plaintext to send into records.
:class:`TlsWebSocket` is the WebSocket with that step added on both sides, so a
plain ``ws://`` connection runs the same code as before, with no check per frame.

The TLS handshake runs in the gateway before the HTTP upgrade, within the same
``session.handshake_timeout``. A peer that does not speak TLS gets, if it sent
something that looks like HTTP, a plain ``400`` saying to use ``wss://``, and
otherwise the connection is just closed; either way it costs its own task only.
"""

from __future__ import annotations

import contextlib
import socket
import ssl

from actors.node.websocket import Disconnected, PendingFull, WebSocket

TLS_HANDSHAKE_RECORD = 0x16
"""First byte of a TLS ClientHello (a handshake record)."""
_READ_BYTES = 65536
_PLAIN_BODY = b"this port speaks TLS: connect with wss://\n"
PLAIN_HTTP_REFUSAL = (
    b"HTTP/1.1 400 Bad Request\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: " + str(len(_PLAIN_BODY)).encode() + b"\r\n"
    b"Connection: close\r\n\r\n" + _PLAIN_BODY
)
"""The answer to a plain-text HTTP request sent to a TLS port."""


class TlsSetupError(Exception):
    """The certificate or key in the settings cannot be used."""


class TlsClosed(Exception):
    """The peer ended the TLS session, or broke it (the connection must close)."""


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context for the certificate chain and key (PEM files), TLS 1.2 or later."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsSetupError(
            f"server.tls_cert {cert_file!r} / server.tls_key {key_file!r}: cannot load: {exc}"
        ) from None
    return context


def looks_like_plain_http(data: bytes) -> bool:
    """The first bytes of a connection are not a TLS record but ASCII letters (``GET``)."""
    return bool(data) and data[0] != TLS_HANDSHAKE_RECORD and data[:3].isalpha()


class TlsSession:
    """One connection's TLS, server side, free of I/O: feed it what was received,
    send what :meth:`outgoing` gives."""

    __slots__ = ("_incoming", "_outgoing", "_ssl")

    def __init__(self, context: ssl.SSLContext) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=True)

    def handshake(self, data: bytes) -> bool:
        """Feed handshake bytes; True once the handshake is complete (bytes that came
        after it stay buffered for :meth:`decrypt`). Raises ``TlsClosed``."""
        self._incoming.write(data)
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except (ssl.SSLError, ValueError) as exc:
            raise TlsClosed(str(exc)) from exc
        return True

    def outgoing(self) -> bytes:
        """The records to send now (handshake messages, alerts, encrypted data)."""
        return self._outgoing.read()

    def decrypt(self, data: bytes) -> bytes:
        """The plaintext that ``data`` (and what was buffered) completes; may be empty.
        Raises ``TlsClosed`` at the peer's close_notify or a TLS error."""
        if data:
            self._incoming.write(data)
        chunks = []
        while True:
            try:
                chunk = self._ssl.read(_READ_BYTES)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLError, ValueError) as exc:
                # SSLZeroReturnError (close_notify) included: the stream ends here.
                raise TlsClosed(str(exc)) from exc
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def encrypt(self, data: bytes) -> bytes:
        """``data`` as TLS records, with whatever else was waiting to be sent before it."""
        try:
            self._ssl.write(data)
        except (ssl.SSLError, ValueError) as exc:
            raise TlsClosed(str(exc)) from exc
        return self._outgoing.read()

    def end(self) -> bytes:
        """Our close_notify, to send before closing the connection (best effort)."""
        with contextlib.suppress(ssl.SSLError, ValueError):
            self._ssl.unwrap()
        return self._outgoing.read()


class TlsWebSocket(WebSocket):
    """A WebSocket over TLS: frames are encrypted on their way to the socket, and
    what ``recv()`` returns is decrypted before the frame decoder sees it."""

    __slots__ = ("_tls",)

    def __init__(
        self,
        sock: socket.socket,
        tls: TlsSession,
        leftover: bytes,
        max_message_bytes: int,
        max_pending: int,
    ) -> None:
        super().__init__(sock, leftover, max_message_bytes, max_pending)
        self._tls = tls

    def _write(self, frame: bytes, bounded: bool) -> None:
        if self._gone:
            return
        if bounded and self._pending and len(self._pending) >= self._max_pending:
            raise PendingFull()
        try:
            records = self._tls.encrypt(frame)
        except TlsClosed:
            self._gone = True
            return
        super()._write(records, bounded=False)

    async def _recv(self) -> bytes:
        while True:
            data = await super()._recv()
            try:
                plain = self._tls.decrypt(data)
            except TlsClosed as exc:
                self._gone = True
                raise Disconnected() from exc
            reply = self._tls.outgoing()  # e.g. a key update answered
            if reply:
                super()._write(reply, bounded=False)
            if plain:
                return plain

    def close_socket(self) -> None:
        if not self._gone:
            notify = self._tls.end()
            if notify:
                super()._write(notify, bounded=False)
        super().close_socket()


__all__ = [
    "PLAIN_HTTP_REFUSAL",
    "TlsClosed",
    "TlsSession",
    "TlsSetupError",
    "TlsWebSocket",
    "looks_like_plain_http",
    "server_context",
]
