"""The WebSocket listener: accepts TCP connections, runs the opening handshake, and
hands each accepted socket to a :class:`actors.node.connection.Connection`.

The listening socket and every connection are non-blocking sockets driven by
direct system calls on the node's loop (``accept()``, ``recv()``, ``send()``, and
trio's ``wait_readable``/``wait_writable`` only when the kernel says ``EAGAIN``).
The handshake itself is sans-I/O (``protocol.handshake``, on h11). Each session
runs in a task of its own: whatever fails in it is logged and ends that session
only. At shutdown every session is closed with "going away" after the frames
already sent.
"""

from __future__ import annotations

import errno
import itertools
import logging
import secrets
import socket
import ssl
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import trio

from actors.limits.bucket import BucketsByKey
from actors.node.connection import Connection, ConnectionContext
from actors.node.tls import (
    PLAIN_HTTP_REFUSAL,
    TlsClosed,
    TlsSession,
    TlsWebSocket,
    looks_like_plain_http,
)
from actors.node.websocket import WebSocket, close_socket
from protocol.errors import CloseCode
from protocol.forwarded import TrustedProxies
from protocol.handshake import Accepted, HandshakePolicy, ServerHandshake, too_many_connections

log = logging.getLogger(__name__)

BACKLOG = 4096
ACCEPTS_IN_A_ROW = 64
"""Connections accepted before the accept loop lets other tasks run."""
HANDSHAKE_READ_BYTES = 16384
REFUSAL_LINGER_S = 2.0
"""Longest wait for a client to close after a refusal sent as a close frame."""


@dataclass(frozen=True)
class Listening:
    """Where the gateway listens (given to whoever started it)."""

    host: str
    port: int


class Gateway:
    def __init__(
        self,
        context: ConnectionContext,
        node_id: str,
        host: str,
        port: int,
        allowed_origins: tuple[str, ...] = (),
        reuse_port: bool = False,
        trusted_proxies: tuple[str, ...] = (),
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._context = context
        self._node_id = node_id
        self._host = host
        self._port = port
        self._reuse_port = reuse_port
        self._policy = HandshakePolicy.build(allowed_origins)
        self._trusted_proxies = TrustedProxies(trusted_proxies)
        self._tls_context = tls_context
        """Set: the port speaks TLS (``wss://``) only."""
        limits = context.limits
        self._connections_by_address = BucketsByKey(
            limits.connections_per_second, limits.connection_burst
        )
        """New connections per client address (this node's count)."""
        self._ids: Iterator[int] = itertools.count(1)
        self._boot = secrets.token_hex(3)
        """Tells this run's session ids from those of an earlier run with the same node id."""
        self._connections: set[Connection] = set()
        self.accepted = 0
        self.rejected = 0
        self.close_codes: Counter[int] = Counter()
        """How many sessions this node closed, by close code."""

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def serve(
        self,
        handler_nursery: trio.Nursery,
        task_status: trio.TaskStatus[Listening] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept connections until cancelled; sessions live in ``handler_nursery``."""
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        listener = socket.create_server(
            (self._host, self._port), family=family, backlog=BACKLOG, reuse_port=self._reuse_port
        )
        listener.setblocking(False)
        try:
            task_status.started(Listening(self._host, listener.getsockname()[1]))
            while True:
                await self._accept_some(listener, handler_nursery)
        finally:
            trio.lowlevel.notify_closing(listener)
            listener.close()

    async def _accept_some(self, listener: socket.socket, nursery: trio.Nursery) -> None:
        for _ in range(ACCEPTS_IN_A_ROW):
            try:
                sock, peer = listener.accept()
            except BlockingIOError:
                await trio.lowlevel.wait_readable(listener)
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("cannot accept connections now: %s", exc)
                    await trio.sleep(0.1)
                    return
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                raise
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            nursery.start_soon(self._session, sock, str(peer[0]))
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def _session(self, sock: socket.socket, peer: str) -> None:
        connection: Connection | None = None
        address = peer
        try:
            handshake = await self._handshake(sock, peer)
            if handshake is None:
                return
            accepted, address, tls = handshake
            settings = self._context.settings
            limits = (settings.max_frame_bytes, settings.outbound_queue)
            ws = (
                WebSocket(sock, accepted.leftover, *limits)
                if tls is None
                else TlsWebSocket(sock, tls, accepted.leftover, *limits)
            )
            session_id = f"{self._node_id}:{self._boot}:{next(self._ids)}"
            connection = Connection(ws, self._context, session_id, address)
            self.accepted += 1
            self._connections.add(connection)
            await connection.run()
        except Exception:
            # A bug hit by one session must end that session only, never the node.
            log.exception("session from %s failed", address)
        finally:
            close_socket(sock)
            if connection is not None:
                self._connections.discard(connection)
                if connection.close_code is not None:
                    self.close_codes[connection.close_code] += 1

    async def _handshake(
        self, sock: socket.socket, peer: str
    ) -> tuple[Accepted, str, TlsSession | None] | None:
        """The TLS handshake (on a TLS port), then the upgrade request read and
        answered, all within ``handshake_timeout``: the accepted handshake, the client's
        address and the TLS session; or None (refused, timed out, the peer went away)."""
        tls: TlsSession | None = None
        handshake = ServerHandshake(self._policy)
        with trio.move_on_after(self._context.settings.handshake_timeout):
            if self._tls_context is not None:
                tls = await self._tls_handshake(sock, self._tls_context)
                if tls is None:
                    self.rejected += 1
                    return None
            outcome = None
            # What came with the end of the TLS handshake may be the request already.
            data: bytes | None = _already_decrypted(tls)
            while outcome is None:
                if not data:
                    data = await _receive_plain(sock, tls)
                    if data is None:
                        return None
                outcome = handshake.receive(data)
                data = None
            if not isinstance(outcome, Accepted):
                self.rejected += 1
                if not outcome.peer_closed:
                    await _send_all(sock, outcome.response, tls)
                if outcome.close_code is not None:
                    await _drain_until_closed(sock)
                log.debug("handshake refused (%d): %s", outcome.status, outcome.reason)
                return None
            address = handshake.client_address(peer, self._trusted_proxies)
            wait = self._connections_by_address.take(address, trio.current_time())
            if wait:
                self.rejected += 1
                self._context.limit_metrics.refused["connections"] += 1
                await _send_all(sock, too_many_connections(wait).response, tls)
                return None
            await _send_all(sock, outcome.response, tls)
            return outcome, address, tls
        return None  # timed out

    async def _tls_handshake(
        self, sock: socket.socket, context: ssl.SSLContext
    ) -> TlsSession | None:
        """The server side of the TLS handshake; the session, or None (not TLS, a TLS
        error, or the peer went away)."""
        tls = TlsSession(context)
        first = True
        while True:
            data = await _receive(sock)
            if not data:
                return None
            if first and looks_like_plain_http(data):
                await _send_all(sock, PLAIN_HTTP_REFUSAL)
                log.debug("plain HTTP on the TLS port refused")
                return None
            first = False
            try:
                done = tls.handshake(data)
            except TlsClosed as exc:
                await _send_all(sock, tls.outgoing())  # the alert, if any
                log.debug("TLS handshake failed: %s", exc)
                return None
            await _send_all(sock, tls.outgoing())
            if done:
                return tls

    async def close_all(self, timeout: float) -> None:
        """Close every session with "going away" and wait (bounded) for them to end."""
        for connection in list(self._connections):
            connection.close(CloseCode.GOING_AWAY, "server shutting down")
        with trio.move_on_after(timeout):
            while self._connections:
                await trio.sleep(0.01)
        if self._connections:
            log.warning("%d sessions did not close in %.1f s", len(self._connections), timeout)


async def _drain_until_closed(sock: socket.socket) -> None:
    """After a close frame sent right after the 101: end our side and read what the
    client sends until it closes (at most ``REFUSAL_LINGER_S``). Closing with unread
    frames (a page sends its sign-in as soon as the socket opens) would reset the
    connection, and the client's system could drop the close frame unread."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        return
    with trio.move_on_after(REFUSAL_LINGER_S):
        while await _receive(sock):
            pass


async def _receive(sock: socket.socket) -> bytes | None:
    """The next bytes from a handshaking peer; ``b""`` at its end, None if it is gone."""
    while True:
        try:
            return sock.recv(HANDSHAKE_READ_BYTES)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)
        except OSError:
            return None


def _already_decrypted(tls: TlsSession | None) -> bytes | None:
    """Plaintext that arrived with the end of the TLS handshake (None: none)."""
    if tls is None:
        return None
    try:
        return tls.decrypt(b"") or None
    except TlsClosed:
        return None


async def _receive_plain(sock: socket.socket, tls: TlsSession | None) -> bytes | None:
    """Like ``_receive``, decrypted on a TLS connection (never an empty part of a
    record: ``b""`` is the end); None if the peer is gone or broke TLS."""
    while True:
        data = await _receive(sock)
        if tls is None or not data:
            return data
        try:
            plain = tls.decrypt(data)
        except TlsClosed:
            return None
        if plain:
            return plain


async def _send_all(sock: socket.socket, data: bytes, tls: TlsSession | None = None) -> None:
    """Write handshake bytes (small: one ``send()`` nearly always), encrypted on a TLS
    connection."""
    if tls is not None:
        try:
            data = tls.encrypt(data)
        except TlsClosed:
            return
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)
            continue
        except OSError:
            return
        view = view[sent:]
