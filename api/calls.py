"""How the server API runs a command: in the actor that owns it, the same way a
WebSocket session does (``Supervisor.tell`` with a ``Command``), and awaits the reply.

The API is one session of its own on each node (:class:`ActorCalls`), registered in
the hub under a session id, so the reply of an actor on another node (the command
was forwarded to the owner of its entity) comes back over the cluster link like a
reply to any session. Replies are matched to calls by request id."""

from __future__ import annotations

import itertools
import secrets
from typing import TypeVar

import msgspec
import trio

from actors.node.hub import Hub
from actors.runtime.messages import Command, SessionRef
from actors.runtime.supervisor import Supervisor
from protocol import messages as m
from protocol.codec import ClientCodec
from protocol.errors import ErrorCode, ProtocolError

R = TypeVar("R", bound=m.Request)
NO_ANSWER_IN_TIME = (
    "no answer in time from the server node that handles this request; it may or may not"
    " have taken effect"
)
_replies = ClientCodec()


class _Call:
    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.reply: m.ServerMessage | None = None


class ActorCalls:
    """The API's session on this node, and its outbox (``actors.runtime.messages``).
    Every method runs on the node's event loop."""

    user_id: str | None = None
    platform: int | None = None
    token_id = ""

    def __init__(
        self,
        hub: Hub,
        supervisor: Supervisor,
        node_id: str,
        deadline_s: float,
        stopping: trio.Event,
    ) -> None:
        self._hub = hub
        self._supervisor = supervisor
        self._deadline_s = deadline_s
        self._stopping = stopping
        self.session_id = f"{node_id}:api:{secrets.token_hex(3)}"
        self._ref = SessionRef(self.session_id, "server-api", self)
        self._rids = itertools.count(1)
        self._waiting: dict[int, _Call] = {}

    def open(self) -> None:
        """Register in the hub, so that replies from other nodes reach this session."""
        self._hub.open_session(self)

    def close_entry(self) -> None:
        self._hub.close_session_entry(self)

    async def call(
        self,
        kind: str,
        entity_id: str,
        request: m.Request,
        user_id: str | None = None,
        platform: int | None = None,
    ) -> m.ServerMessage:
        """Run ``request`` (its ``rid`` is replaced) in the actor of (kind, entity_id)
        on behalf of ``user_id``; its reply, or ``ProtocolError`` with the error's code."""
        if self._stopping.is_set():
            raise ProtocolError(ErrorCode.UNAVAILABLE, "the node is shutting down")
        rid = next(self._rids)
        call = _Call()
        self._waiting[rid] = call
        try:
            request = msgspec.structs.replace(request, rid=rid)
            self._supervisor.tell(kind, entity_id, Command(self._ref, request, user_id, platform))
            with trio.move_on_after(self._deadline_s):
                await call.done.wait()
        finally:
            del self._waiting[rid]
        reply = call.reply
        if reply is None:
            raise ProtocolError(ErrorCode.UNAVAILABLE, NO_ANSWER_IN_TIME)
        if isinstance(reply, m.Error):
            try:
                code = ErrorCode(reply.code)
            except ValueError:
                code = ErrorCode.INTERNAL
            raise ProtocolError(code, reply.message)
        return reply

    # -- the outbox -------------------------------------------------------------------

    def reply(self, rid: int, frame: bytes, ends_sign_in: bool = False) -> None:
        call = self._waiting.get(rid)
        if call is not None and not call.done.is_set():
            call.reply = _replies.decode(frame)
            call.done.set()

    def push(self, frame: bytes) -> None:
        """The API session receives no pushes (it never signs in)."""

    def signed_in(self, rid: int, user_id: str, platform: int, token_id: str, frame: bytes) -> None:
        """Never sent: the API does not sign in."""

    def close(self, code: int, reason: str, last_frame: bytes | None = None) -> None:
        """The API session is not closed by commands; a last frame answers its request."""
        if last_frame is not None:
            decoded = _replies.decode(last_frame)
            if isinstance(decoded, m.Reply):
                self.reply(decoded.rid, last_frame)
