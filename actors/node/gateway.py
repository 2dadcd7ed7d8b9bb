"""The WebSocket listener: handshake, protocol version, and session bookkeeping.

Runs in the trio thread. It accepts only the subprotocols this server speaks,
hands each accepted socket to a :class:`actors.node.connection.Connection`, and at
shutdown closes every session with "going away".
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections import Counter
from collections.abc import Iterator

import trio
from trio_websocket import WebSocketRequest, WebSocketServer

from actors.node.connection import Connection, ConnectionContext
from protocol.errors import CloseCode
from protocol.messages import PROTOCOL_VERSION, SUPPORTED_SUBPROTOCOLS

log = logging.getLogger(__name__)


class _ContainedWebSocketServer(WebSocketServer):
    """trio-websocket's server with each connection's failures kept to that connection.

    trio-websocket runs a reader task per connection beside our handler and lets
    whatever it raises out into the handler nursery, which is the node's. One such
    error is reachable from any peer: after the server has sent a close frame (1003
    for a text frame, say), a message over the size limit makes the reader send a
    second close, which wsproto refuses with ``LocalProtocolError`` in state
    ``LOCAL_CLOSING`` (trio-websocket 0.12.2). Here a connection that fails for any
    reason is logged and its socket closed; the node and other sessions go on.
    """

    async def _handle_connection(self, stream: trio.abc.Stream) -> None:
        try:
            await super()._handle_connection(stream)
        except* Exception as failure:
            # The library has two ways to fail here: an error of its own or one
            # escaping our session handler (which catches its own, see _handle).
            log.warning(
                "WebSocket connection ended by a failure in the WebSocket library: %r",
                _first_leaf(failure),
            )
            await trio.aclose_forcefully(stream)


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


class Gateway:
    def __init__(self, context: ConnectionContext, node_id: str, host: str, port: int) -> None:
        self._context = context
        self._node_id = node_id
        self._host = host
        self._port = port
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
        task_status: trio.TaskStatus[WebSocketServer] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept connections until cancelled; sessions live in ``handler_nursery``."""
        settings = self._context.settings
        listeners = await trio.open_tcp_listeners(self._port, host=self._host)
        server = _ContainedWebSocketServer(
            self._handle,
            listeners,
            handler_nursery=handler_nursery,
            max_message_size=settings.max_frame_bytes,
            message_queue_size=4,
            connect_timeout=settings.handshake_timeout,
            disconnect_timeout=settings.handshake_timeout,
        )
        await server.run(task_status=task_status)

    async def _handle(self, request: WebSocketRequest) -> None:
        if PROTOCOL_VERSION not in request.proposed_subprotocols:
            self.rejected += 1
            offered = ", ".join(request.proposed_subprotocols) or "none"
            body = (
                f"unsupported protocol version (offered: {offered}); "
                f"this server speaks: {', '.join(SUPPORTED_SUBPROTOCOLS)}\n"
            ).encode()
            await request.reject(400, body=body)
            return
        ws = await request.accept(subprotocol=PROTOCOL_VERSION)
        remote = request.remote
        address = remote if isinstance(remote, str) else str(remote.address)
        session_id = f"{self._node_id}:{self._boot}:{next(self._ids)}"
        connection = Connection(ws, self._context, session_id, address)
        self.accepted += 1
        self._connections.add(connection)
        try:
            await connection.run()
        except Exception:
            # A bug hit by one session must end that session only, never the node.
            log.exception("session %s failed", session_id)
        finally:
            self._connections.discard(connection)
            if connection.close_code is not None:
                self.close_codes[connection.close_code] += 1

    async def close_all(self, timeout: float) -> None:
        """Close every session with "going away" and wait (bounded) for them to end."""
        for connection in list(self._connections):
            connection.close_soon(CloseCode.GOING_AWAY, "server shutting down")
        with trio.move_on_after(timeout):
            while self._connections:
                await trio.sleep(0.01)
        if self._connections:
            log.warning("%d sessions did not close in %.1f s", len(self._connections), timeout)
