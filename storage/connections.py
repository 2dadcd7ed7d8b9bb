"""Redis connections that cost two system calls per round trip instead of seven.

The blocking client behind the node's Redis executor thread (``storage.pipelined``)
and the cluster's pub/sub listener uses these. With redis-py's defaults, every
round trip took seven system calls: the pool's "is there unread data?" check (two
``ioctl`` calls to switch the socket to non-blocking and back, and a ``recv`` that
finds nothing), then a ``poll`` before the ``send`` and another before the
``recv``, because a Python socket with a timeout waits with ``poll`` first. Each
of them lets the GIL go, and every release is a hand-off to the event loop's
thread (bench/FINDINGS.md measured it when each actor had a thread).

Here the socket is in blocking mode and the kernel enforces the timeout
(``SO_RCVTIMEO``/``SO_SNDTIMEO``): a Redis server that stops answering still
fails the command after ``io_timeout`` seconds, as a ``redis.ConnectionError``
(the connection is then dropped and the command retried once on a new one, as
before). The pool's check for unread data before each command asks only the
parser (hiredis) whether it holds bytes already read, not the kernel: a
connection goes back to the pool with a reply still unread only when a command
was interrupted half-way, and redis-py disconnects it then. The pub/sub listener
drains its connections with the same check (every publication that came in one
``recv``, without a system call per publication); its waits with a timeout of
their own still ``poll``.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import redis
from redis._parsers import _HiredisParser


def _kernel_timeouts(sock: socket.socket, seconds: float) -> socket.socket:
    whole = int(seconds)
    value = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
    sock.settimeout(None)
    return sock


class _LeanIO(redis.connection.AbstractConnection):
    """Blocking socket with kernel timeouts; no readiness check before each command."""

    def __init__(self, *args: Any, io_timeout: float = 5.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.io_timeout = io_timeout

    def _connect(self) -> socket.socket:
        # super() is the concrete class's _connect, next in the MRO of the classes below.
        sock = super()._connect()  # type: ignore[safe-super,no-untyped-call]
        return _kernel_timeouts(sock, self.io_timeout)

    def can_read(self, timeout: float = 0) -> bool:
        if timeout == 0 and self._sock is not None:
            # What was read already and waits in the parser, without asking the
            # kernel (the pool asks before every command; pub/sub drains with it).
            parser = self._parser
            return isinstance(parser, _HiredisParser) and parser._reader.has_data()
        return bool(super().can_read(timeout))


class _LoadsScripts(redis.connection.AbstractConnection):
    """Loads the node's Lua scripts on every new connection, so that commands sent by
    SHA1 (``EVALSHA``) find them even right after Redis restarted and forgot them."""

    def __init__(self, *args: Any, scripts: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scripts = scripts

    def on_connect_check_health(self, check_health: bool = True) -> None:
        super().on_connect_check_health(check_health)
        if not self.scripts:
            return
        commands = [("SCRIPT", "LOAD", text) for text in self.scripts]
        self.send_packed_command(self.pack_commands(commands))  # type: ignore[no-untyped-call]
        for _ in commands:
            self.read_response()


class LeanConnection(_LoadsScripts, _LeanIO, redis.Connection):
    """TCP connection; see the module docstring."""


class LeanUnixConnection(_LoadsScripts, _LeanIO, redis.UnixDomainSocketConnection):
    """Unix-socket connection (the embedded Redis); see the module docstring."""


class ScriptLoadingSSLConnection(_LoadsScripts, redis.SSLConnection):
    """TLS connection (``rediss://``): redis-py's own I/O, with the scripts loaded."""


_OURS: dict[type[Any], type[Any]] = {
    redis.Connection: LeanConnection,
    redis.UnixDomainSocketConnection: LeanUnixConnection,
    redis.SSLConnection: ScriptLoadingSSLConnection,
}


def connection_pool(
    url: str,
    max_connections: int,
    io_timeout: float,
    retry: redis.retry.Retry,
    scripts: tuple[str, ...] = (),
) -> redis.BlockingConnectionPool:
    """A blocking pool for ``url`` whose connections are lean where the scheme allows
    (``redis://`` and ``unix://``; ``rediss://`` keeps redis-py's own I/O), and load
    ``scripts`` whenever they connect."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=io_timeout,
        socket_timeout=io_timeout,
        socket_connect_timeout=2,
        retry=retry,
        health_check_interval=30,
    )
    ours = _OURS.get(pool.connection_class)
    if ours is not None:
        pool.connection_class = ours
        pool.connection_kwargs["scripts"] = scripts
        if issubclass(ours, _LeanIO):
            pool.connection_kwargs["socket_timeout"] = None
            pool.connection_kwargs["io_timeout"] = io_timeout
    return pool
