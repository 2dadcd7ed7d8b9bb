"""The WebSocket listener: handshake, protocol version, and session bookkeeping.

Runs in the trio thread. It accepts only the subprotocols this server speaks,
hands each accepted socket to a :class:`actors.connection.Connection`, and at
shutdown closes every session with "going away".
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections import Counter
from collections.abc import Iterator

import trio
from trio_websocket import WebSocketRequest, WebSocketServer, serve_websocket

from actors.connection import Connection, ConnectionContext
from protocol.errors import CloseCode
from protocol.messages import PROTOCOL_VERSION, SUPPORTED_SUBPROTOCOLS

log = logging.getLogger(__name__)


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
        await serve_websocket(
            self._handle,
            self._host,
            self._port,
            None,
            handler_nursery=handler_nursery,
            max_message_size=settings.max_frame_bytes,
            message_queue_size=4,
            connect_timeout=settings.handshake_timeout,
            disconnect_timeout=settings.handshake_timeout,
            task_status=task_status,
        )

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
